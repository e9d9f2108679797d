"""``python -m mmlatent.train RECIPE`` (= ``mmlatent train`` = ``accelerate launch -m mmlatent.train``).

The command trains the recipe's model family (``model.family``, default ``mld``) with its
registered ``train`` (:mod:`mmlatent.families`). For MLD, :class:`MLDTrainer` runs, with
HuggingFace Accelerate throughout:

1. fit each modality's preprocessing that needs it (e.g. a vocabulary) on the training split;
2. stage 1: each modality's autoencoder trained on its own (skipped when it has no parameters),
   on the items that have its modality;
3. every split encoded ONCE into the latent cache, statistics over the whole training split
   (present items only), with the presence mask when items lack modalities (:mod:`mmlatent.missing`);
4. stage 2: the score network trained on the cached latents only (masked multi-time loss, EMA;
   a missing modality is absent: pure noise at time T, no loss);
5. sample grids, and the evaluation when the dataset has labels.

Only the main process writes files; every process trains on its own share of each global batch.
Each step of the list is recorded in ``state.json`` when done, and long stages write atomic
checkpoints, so ``--resume`` continues any interrupted run (``kill -9`` included); the
bookkeeping is :class:`mmlatent.training.StagedTrainer`'s, shared by every family.

Before anything is written, the command checks the run directory (:func:`mmlatent.rundir.check_run_path`),
loads every split of the dataset, preprocesses a sample of each (:func:`check_dataset_values`: a value
a modality cannot take is one message) and loads the evaluation's weight files, then holds the run's lock
(:mod:`mmlatent.runlock`) until it ends. Every file that a later stage reads is recorded in the
run's manifest (:mod:`mmlatent.manifest`) and checked on ``--resume``. SIGINT/SIGTERM stop at the
next step boundary with a checkpoint (:mod:`mmlatent.stopping`). A run that fails before it
trained anything (fitted preprocessing aside) removes the directory it created.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from torch.utils.data import DataLoader, Subset

from mmlatent.build import (
    build_dataset,
    build_layout,
    build_modalities,
    build_score_net,
    build_sde,
    dataset_splits,
)
from mmlatent.checkpoint import CheckpointError, load_json, load_tensors, save_tensors
from mmlatent.data import ModalityBatches, batch_indices, check_dataset_items, collate_items
from mmlatent.diffusion import EMA, masked_multitime_loss
from mmlatent.errors import UserError, run_command
from mmlatent.evaluation.fid import load_inception
from mmlatent.extras import require_extra
from mmlatent.latents import LatentStats, encode_dataset, load_latents, save_latents
from mmlatent.plugins import get_registry
from mmlatent.progress import progress_bar
from mmlatent.recipe import Recipe, load_recipe
from mmlatent.rundir import RunDir, check_run_path, clear_run_directory
from mmlatent.runlock import RunLock
from mmlatent.stopping import StopSignals, TrainingStopped
from mmlatent.tracking import accelerator_options
from mmlatent.training import StagedTrainer, StepBatches, TrainingDiverged, stage_seed

__all__ = ["MLDTrainer", "Trainer", "TrainingDiverged", "main"]

log = logging.getLogger("mmlatent.train")


class MLDTrainer(StagedTrainer):
    """The stages of MLD: each autoencoder (stage 1), the latent cache, the score network (stage 2)."""

    def train_stages(self) -> None:
        for name in self.names:
            self.between_stages()
            self._train_autoencoder(name)
        self.between_stages()
        self._cache_latents()
        self.between_stages()
        self._train_score_net()

    def outputs_of(self, step: str) -> list[Path]:
        kind, _, name = step.partition(":")
        if kind == "autoencoder":
            return [self.run.autoencoder(name)]
        if kind == "latents":
            return [self.run.latent_stats, *sorted(self.run.latents("train").parent.glob("*.safetensors"))]
        if kind == "score_net":
            return [self.run.score_net]
        return super().outputs_of(step)

    # ---------------------------------------------------------------------------------- stage 1
    def _train_autoencoder(self, name: str) -> None:
        stage = f"autoencoder:{name}"
        if stage in self.done:
            return
        cfg = self.recipe.modalities[name].train
        modality = self.modalities[name]
        torch.manual_seed(stage_seed(self.recipe.seed, stage))
        autoencoder = modality.build_autoencoder()
        if not autoencoder.has_parameters:
            if self.is_main:
                save_tensors(self.run.autoencoder(name), autoencoder.state_dict())
            self.mark_done(stage, [self.run.autoencoder(name)])
            return
        indices = self.items_with(name)  # an autoencoder learns from the items that have its modality
        items = self.train_set if indices is None else Subset(self.train_set, indices)
        n = len(items)
        batch = cfg.batch_size or self.recipe.data.batch_size
        total = cfg.steps or cfg.epochs * math.ceil(n / batch)
        optimizer = torch.optim.Adam(autoencoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        start = self.resume_step(stage, {"model": autoencoder}, {"optimizer": optimizer})
        model, optimizer = self.accelerator.prepare(autoencoder, optimizer)
        kinds = {name: self.recipe.modalities[name].kind}
        view = ModalityBatches(items, {name: modality}, {name: self.fields[name]}, kinds,
                               source=f"dataset {self.recipe.data.dataset!r} (split 'train')")
        loader = DataLoader(view, num_workers=self.recipe.data.num_workers,
                            batch_sampler=StepBatches(n, batch, stage_seed(self.recipe.seed, stage),
                                                       self.rank, self.world, start, total),
                            collate_fn=lambda items: collate_items(items, {name: modality}, kinds))
        every = self.recipe.diffusion.train.checkpoint_every
        bar = progress_bar(total=total, initial=start, desc=f"stage 1 {name}", disable=not self.progress)
        model.train()
        with self.stop.deferred():
            for step, batch_items in enumerate(loader, start=start):
                x = modality.augment(batch_items[name].to(self.accelerator.device))
                with self.accelerator.autocast():
                    loss = autoencoder.reconstruction_loss(x, model(x))
                value = self.check_finite(loss, stage, step)
                self.accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                self.after_step(stage, step, total, value, bar, every,
                                 {"model": autoencoder}, {"optimizer": optimizer})
        bar.close()
        if self.is_main:
            save_tensors(self.run.autoencoder(name), self.accelerator.unwrap_model(model).state_dict())
            log.info("stage 1 %s: %d steps on %d items, last loss %.4g", name, total, n, self.history.records[stage][-1][1]
                     if self.history.records[stage] else float("nan"))
        self.mark_done(stage, [self.run.autoencoder(name)])

    # ----------------------------------------------------------------------------- latent cache
    def _cache_latents(self) -> None:
        if "latents" in self.done:
            return
        if self.is_main:
            autoencoders = {}
            for name, modality in self.modalities.items():
                autoencoder = modality.build_autoencoder()
                autoencoder.load_state_dict(load_tensors(self.run.autoencoder(name), f"{name} autoencoder"))
                autoencoders[name] = autoencoder.eval().to(self.accelerator.device)
            for split in dataset_splits(self.recipe):
                dataset = self.dataset(split)
                latents = encode_dataset(dataset, self.modalities, self.fields, autoencoders,
                                         batch_size=max(256, self.recipe.data.batch_size),
                                         num_workers=self.recipe.data.num_workers, device=self.accelerator.device,
                                         progress=self.progress, desc=f"encode {split}",
                                         kinds={n: cfg.kind for n, cfg in self.recipe.modalities.items()},
                                         source=f"dataset {self.recipe.data.dataset!r} (split {split!r})")
                save_latents(self.run.latents(split), latents)
                if split == "train":
                    present = latents.get("present")
                    by_name = {n: present[:, i] for i, n in enumerate(self.names)} if present is not None else None
                    LatentStats.fit({n: latents[n] for n in self.names}, present=by_name).save(self.run.latent_stats)
                missing = "" if "present" not in latents else \
                    f" ({int((~latents['present']).sum())} missing values)"
                log.info("encoded %s: %d items%s", split, len(latents[self.names[0]]), missing)
        self.mark_done("latents", self.outputs_of("latents"))

    # ---------------------------------------------------------------------------------- stage 2
    def _train_score_net(self) -> None:
        stage = "score_net"
        if stage in self.done:
            return
        cfg = self.recipe.diffusion.train
        stats = LatentStats.load(self.run.latent_stats)
        cached = load_latents(self.run.latents("train"))
        z = stats.concat(cached, self.names).to(self.accelerator.device)
        # missing modalities are absent in every step (pure noise at time T, no loss)
        absent = ~cached["present"].to(self.accelerator.device) if "present" in cached else None
        layout = build_layout(self.recipe)
        sde = build_sde(self.recipe)
        torch.manual_seed(stage_seed(self.recipe.seed, stage))
        net = build_score_net(self.recipe)
        ema = EMA(net, decay=cfg.ema)
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        n = z.shape[0]
        batch = cfg.batch_size or self.recipe.data.batch_size
        if batch % self.world:
            raise ValueError(f"diffusion batch size {batch} is not divisible by {self.world} processes")
        complete_rows, complete_batch = None, 0
        if absent is not None and cfg.complete_fraction:
            complete_rows = cached["present"].all(1).nonzero().squeeze(1)
            if complete_rows.numel() == 0:
                raise UserError("diffusion.train.complete_fraction: no training item has every modality")
            complete_batch = self.world * round(cfg.complete_fraction * batch / self.world)
        total = cfg.steps or cfg.epochs * math.ceil(n / batch)
        start = self.resume_step(stage, {"net": net, "ema": ema}, {"optimizer": optimizer})
        model, optimizer = self.accelerator.prepare(net, optimizer)
        data_seed = stage_seed(self.recipe.seed, stage + ":data")
        noise = torch.Generator(device=z.device)
        bar = progress_bar(total=total, initial=start, desc="stage 2 score net", disable=not self.progress)
        model.train()
        per_batch = self.recipe.diffusion.subset_sampling == "per_batch"
        with self.stop.deferred():
            for step in range(start, total):
                if cfg.warmup_steps:
                    for group in optimizer.param_groups:
                        group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
                idx = step_indices(step, n, batch, data_seed, self.rank, self.world, complete_rows, complete_batch)
                noise.manual_seed(stage_seed(data_seed + step, f"noise:{self.rank}"))
                with self.accelerator.autocast():
                    loss = masked_multitime_loss(model, z[idx], sde, layout, d=self.recipe.diffusion.d,
                                                 t_eps=cfg.eps, generator=noise, per_batch=per_batch,
                                                 absent_prob=self.recipe.diffusion.absent_prob,
                                                 absent=None if absent is None else absent[idx],
                                                 t_sampling=cfg.t_sampling, weighting=cfg.loss_weighting)
                value = self.check_finite(loss, stage, step)
                self.accelerator.backward(loss)
                if cfg.grad_clip is not None:
                    self.accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                ema.update()
                self.after_step(stage, step, total, value, bar, cfg.checkpoint_every,
                                 {"net": net, "ema": ema}, {"optimizer": optimizer})
        bar.close()
        if self.is_main:
            config = {"latent_dim": layout.total_dim, "num_modalities": layout.num_modalities,
                      **self.recipe.diffusion.score_net.model_dump()}
            save_tensors(self.run.score_net, ema.module.state_dict(), {"config": json.dumps(config)})
            log.info("stage 2: %d steps", total)
        self.mark_done(stage, [self.run.score_net])


def step_indices(step: int, n: int, batch: int, seed: int, rank: int, world: int,
                 complete_rows: torch.Tensor | None = None, complete_batch: int = 0) -> torch.Tensor:
    """Rows of stage-2 batch ``step`` for process ``rank``: :func:`~mmlatent.data.batch_indices`, or
    with ``complete_rows`` (``diffusion.train.complete_fraction``) ``complete_batch`` rows of the
    global batch drawn from them (their own seeded stream) and the rest from every row."""
    if complete_rows is None:
        return batch_indices(step, n, batch, seed, rank, world)
    parts = [complete_rows[batch_indices(step, complete_rows.numel(), complete_batch, seed + 1, rank, world)]]
    if complete_batch < batch:
        parts.append(batch_indices(step, n, batch - complete_batch, seed, rank, world))
    return torch.cat(parts)


#: The name this class had before model families (kept for scripts that import it).
Trainer = MLDTrainer


# ------------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmlatent train", description="Train an MLD recipe (both stages).")
    parser.add_argument("recipe", help="recipe YAML file, or the name of a shipped recipe (mmlatent recipes)")
    parser.add_argument("--output", "-o", help="run directory (default runs/<recipe name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set diffusion.train.steps=2000")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    group.add_argument("--overwrite", action="store_true",
                       help="delete an existing run directory first (only a run of mmlatent is ever deleted)")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def load_datasets(recipe: Recipe) -> dict[str, Any]:
    """Every split of the recipe's dataset, loaded before a run directory is made.

    Missing or unreadable data is a :class:`UserError` naming the dataset and the split (the
    plugin's own message says which file or folder).
    """
    datasets = {}
    for split in dataset_splits(recipe):
        try:
            datasets[split] = build_dataset(recipe, split)
        except (OSError, ValueError, ImportError, KeyError) as error:
            detail = error.strerror + f": {error.filename}" if isinstance(error, OSError) and error.filename else error
            raise UserError(f"cannot load the {split} split of dataset {recipe.data.dataset!r}: {detail}\n"
                            f"(check data.options in the recipe; the dataset plugin's README says where the "
                            f"data goes)") from None
    return datasets


def check_dataset_values(recipe: Recipe, datasets: dict[str, Any]) -> None:
    """A sample of every split through the modalities' preprocessing (:func:`~mmlatent.data.check_dataset_items`):
    values a modality cannot take are a :class:`~mmlatent.data.DatasetItemError` before anything is written."""
    check_dataset_items(datasets, build_modalities(recipe), {name: recipe.field_of(name) for name in recipe.modalities},
                        recipe.data.dataset, kinds={name: cfg.kind for name, cfg in recipe.modalities.items()})


def check_evaluation_files(recipe: Recipe) -> None:
    """Load the evaluation's local weight files now, not after the whole training."""
    section = recipe.evaluation
    if not section.enabled:
        return
    if section.inception_weights is not None:
        load_inception(section.inception_weights)  # EvaluationError names the file
    if section.embeddings:  # build each embedding network now (EvaluationError names a bad file)
        from mmlatent.build import build_modalities
        from mmlatent.evaluation.command import load_embeddings

        load_embeddings(build_modalities(recipe), dict(section.embeddings))
    if section.clip_model is not None:
        require_extra("clip")
        path = Path(section.clip_model).expanduser()
        if not (path / "config.json").is_file():
            raise UserError(f"evaluation.clip_model: {path} is not a local CLIP model folder (no config.json); "
                            "fix the path or set it to null")


def _claim(run_dir: Path, lock: RunLock, resume: bool, overwrite: bool) -> None:
    """Main process: refuse an occupied run without --resume/--overwrite, take the lock, clear on --overwrite."""
    occupied = run_dir.is_dir() and any(p.name != ".lock" and not p.name.endswith(".tmp") for p in run_dir.iterdir())
    if occupied and not (resume or overwrite):
        raise UserError(f"run directory {run_dir} already exists: pass --resume to continue it "
                        "or --overwrite to start again")
    lock.acquire()
    if overwrite and occupied:
        clear_run_directory(run_dir)


def _broadcast_error(accelerator, error: BaseException | None) -> str | None:
    """The main process's error message, on every process (None when there was none)."""
    message = [None if error is None else str(error)]
    if accelerator.num_processes > 1:
        broadcast_object_list(message)
    return message[0]


def _nothing_trained(run: RunDir) -> bool:
    """No step completed but the preprocessing fits (``state.json``, steps ``fit:<name>``: cheap to
    redo) and no checkpoint written: the directory holds nothing to keep."""
    if run.state.is_file():
        try:
            state = load_json(run.state, "run state")
        except CheckpointError:
            return False  # unreadable: keep it for a person to look at
        completed = state.get("completed") if isinstance(state, dict) else None
        if not isinstance(completed, list) or any(not str(step).startswith("fit:") for step in completed):
            return False
    return not (run.checkpoints.is_dir() and any(run.checkpoints.iterdir()))


def _resume_command(args: argparse.Namespace, run_dir: Path) -> str:
    parts = ["mmlatent", "train", args.recipe, "--output", str(run_dir), "--resume"]
    parts += [f"--set={override}" for override in args.overrides]
    return " ".join(shlex.quote(part) for part in parts)


def train_command(args: argparse.Namespace) -> int:
    """``mmlatent train`` with parsed arguments; errors propagate to :func:`mmlatent.errors.run_command`."""
    recipe = load_recipe(args.recipe, args.overrides)
    if args.output:
        run_dir = check_run_path(args.output)
    else:
        run_dir = check_run_path(Path("runs") / recipe.name, default_parent="runs")
    tracking = accelerator_options(recipe.train.log_with, run_dir)  # a tracker not installed: UserError
    datasets = load_datasets(recipe)
    check_dataset_values(recipe, datasets)
    if not args.no_eval:
        check_evaluation_files(recipe)
    # Without CUDA, Accelerate only detects a torchrun/accelerate multi-process launch when told
    # to run on the CPU (then it uses gloo); with one process this changes nothing.
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), **tracking)
    lock = RunLock(run_dir, "train --resume" if args.resume else "train")
    refused: Exception | None = None
    if accelerator.is_main_process:
        try:
            _claim(run_dir, lock, args.resume, args.overwrite)
        except Exception as error:  # noqa: BLE001 - shared with the other processes, then raised
            refused = error
    if _broadcast_error(accelerator, refused) is not None:
        if refused is not None:
            raise refused
        return 2  # the main process says why
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    family = get_registry().model(recipe.model.family)
    try:
        with StopSignals(announce=accelerator.is_main_process) as stop:
            family.train(recipe, run_dir, accelerator, resume=args.resume, progress=not args.no_progress,
                         evaluate=False if args.no_eval else None, stop=stop, datasets=datasets)
    except BaseException as error:
        if accelerator.is_main_process and lock.created and _nothing_trained(RunDir(run_dir)):
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing trained: leave nothing behind
        elif isinstance(error, TrainingStopped):
            error.where = (f"{error.where}\n" if error.where else "") + \
                f"continue with: {_resume_command(args, run_dir)}"
        raise
    finally:
        lock.release()
    if accelerator.is_main_process:
        print(f"run written to {run_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # with several processes (torchrun / accelerate launch set RANK) only the main one speaks
    code = run_command(lambda: train_command(args), debug=args.debug, quiet=os.environ.get("RANK", "0") != "0")
    if code != 0:
        _end_process_group()
    return code


def _end_process_group() -> None:
    """After a failed run with several processes, leave the process group cleanly (no NCCL/gloo warning)."""
    try:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass


if __name__ == "__main__":
    raise SystemExit(main())
