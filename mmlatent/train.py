"""``python -m mmlatent.train RECIPE`` (= ``mmlatent train`` = ``accelerate launch -m mmlatent.train``).

The two stages of MLD, with HuggingFace Accelerate throughout:

1. fit each modality's preprocessing that needs it (e.g. a vocabulary) on the training split;
2. stage 1: each modality's autoencoder trained on its own (skipped when it has no parameters);
3. every split encoded ONCE into the latent cache, statistics over the whole training split;
4. stage 2: the score network trained on the cached latents only (masked multi-time loss, EMA);
5. sample grids, and the evaluation when the dataset has labels.

Only the main process writes files; every process trains on its own share of each global batch.
Each step of the list is recorded in ``state.json`` when done, and long stages write atomic
checkpoints, so ``--resume`` continues any interrupted run (``kill -9`` included).

Before anything is written, the command checks the run directory (:func:`mmlatent.rundir.check_run_path`),
loads every split of the dataset and the evaluation's weight files, then holds the run's lock
(:mod:`mmlatent.runlock`) until it ends. Every file that a later stage reads is recorded in the
run's manifest (:mod:`mmlatent.manifest`) and checked on ``--resume``. SIGINT/SIGTERM stop at the
next step boundary with a checkpoint (:mod:`mmlatent.stopping`). A run that fails before it
trained anything removes the directory it created.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from mmlatent.build import (
    build_dataset,
    build_layout,
    build_modalities,
    build_score_net,
    build_sde,
    dataset_splits,
    plugin_versions,
)
from mmlatent.checkpoint import (
    CheckpointError,
    atomic_write_text,
    load_json,
    load_tensors,
    load_training_checkpoint,
    save_json,
    save_tensors,
    save_training_checkpoint,
)
from mmlatent.data import ModalityBatches, batch_indices, collate_items
from mmlatent.diffusion import EMA, masked_multitime_loss
from mmlatent.errors import UserError, run_command
from mmlatent.evaluation.command import evaluate_run
from mmlatent.evaluation.fid import load_inception
from mmlatent.history import TrainingHistory
from mmlatent.latents import LatentStats, encode_dataset, load_latents, save_latents
from mmlatent.manifest import record_files, start_manifest, verify_files
from mmlatent.pipeline import MLDPipeline
from mmlatent.recipe import Recipe, RecipeError, load_recipe
from mmlatent.rundir import RunDir, check_run_path, clear_run_directory
from mmlatent.runlock import RunLock
from mmlatent.stopping import StopSignals, TrainingStopped

__all__ = ["TrainingDiverged", "Trainer", "main"]

log = logging.getLogger("mmlatent.train")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1  # mmlatent.errors: a message, no traceback


def stage_seed(seed: int, stage: str) -> int:
    """A reproducible seed for one stage of a run."""
    return (seed * 7919 + zlib.crc32(stage.encode())) % (2**31)


class _StepBatches(Sampler[list[int]]):
    """Yields this process's index list for each training step in ``range(start, stop)``."""

    def __init__(self, n: int, global_batch: int, seed: int, rank: int, world: int, start: int, stop: int):
        self.args = (n, global_batch, seed, rank, world)
        self.start, self.stop = start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        n, global_batch, seed, rank, world = self.args
        for step in range(self.start, self.stop):
            yield batch_indices(step, n, global_batch, seed, rank, world).tolist()


class Trainer:
    """Runs the stages of one recipe into one run directory."""

    def __init__(self, recipe: Recipe, run_dir: str | Path, accelerator=None, resume: bool = False,
                 progress: bool = True, evaluate: bool | None = None, stop: StopSignals | None = None,
                 datasets: dict[str, Any] | None = None) -> None:
        """``stop``: the installed signal handlers (a stop is then a checkpoint at the next step
        boundary); ``datasets``: already loaded splits by name (the command loads them before
        it creates the run directory)."""
        self.stop = stop or StopSignals()
        self.datasets = dict(datasets or {})
        self.recipe = recipe
        self.run = RunDir(run_dir)
        self.accelerator = accelerator or Accelerator()
        self.resume = resume
        self.is_main = self.accelerator.is_main_process
        self.progress = progress and self.accelerator.is_local_main_process
        self.evaluate = recipe.evaluation.enabled if evaluate is None else evaluate
        self.names = list(recipe.modalities)
        self.fields = {name: recipe.field_of(name) for name in self.names}
        self.done: list[str] = []
        self.history = TrainingHistory()

    # ------------------------------------------------------------------------------ bookkeeping
    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    def _mark_done(self, step: str, written: Sequence[Path] = ()) -> None:
        """Record ``written`` (files later stages read) in the manifest, then ``step`` as done."""
        self.done.append(step)
        if self.is_main:
            if written:
                record_files(self.run.root, written)
            self.history.save(self.run.history)
            self.history.plot(self.run.curves)
            save_json(self.run.state, {"completed": self.done})
        self.accelerator.wait_for_everyone()

    def _outputs_of(self, step: str) -> list[Path]:
        """The files a completed ``step`` wrote that later stages read (checked on --resume)."""
        kind, _, name = step.partition(":")
        if kind == "fit":
            return [self.run.modality_state(name)]
        if kind == "autoencoder":
            return [self.run.autoencoder(name)]
        if kind == "latents":
            return [self.run.latent_stats, *sorted(self.run.latents("train").parent.glob("*.safetensors"))]
        if kind == "score_net":
            return [self.run.score_net]
        return []

    def _stop_requested(self) -> bool:
        """Whether any process got SIGINT/SIGTERM (every process gets the same answer)."""
        flag = self.stop.requested is not None
        if self.world > 1:
            flag = bool(self.accelerator.reduce(torch.tensor(float(flag), device=self.accelerator.device),
                                                "sum") > 0)
        return flag

    def _stop_signal(self) -> int:
        return self.stop.requested or signal.SIGTERM

    def _setup_logging(self) -> None:
        if not self.is_main:
            return
        handler = logging.FileHandler(self.run.log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        self._log_handler = handler

    def _prepare_directory(self) -> None:
        """Write the manifest and the resolved recipe, or on --resume check the stored run."""
        if self.is_main:
            self.run.root.mkdir(parents=True, exist_ok=True)
            resolved = self.recipe.to_yaml()
            if self.resume and self.run.recipe.is_file():
                verify_files(self.run.root, [self.run.recipe])
                stored = self.run.recipe.read_text(encoding="utf-8")
                if stored != resolved:
                    raise RecipeError(str(self.run.recipe), [(
                        "", "the recipe differs from the one this run was started with; "
                            "resume with the same recipe and --set overrides, or start a new run")])
            else:
                start_manifest(self.run.root)
                atomic_write_text(self.run.recipe, resolved)
                record_files(self.run.root, [self.run.recipe])
                save_json(self.run.plugins, plugin_versions(self.recipe))
        self.accelerator.wait_for_everyone()
        self._setup_logging()
        if self.resume and self.run.state.is_file():
            state = load_json(self.run.state, "run state")
            completed = state.get("completed") if isinstance(state, dict) else None
            if not isinstance(completed, list) or not all(isinstance(step, str) for step in completed):
                raise CheckpointError(f"corrupt run state: {self.run.state} (expected {{\"completed\": [...]}})")
            self.done = list(completed)
            if self.is_main:
                verify_files(self.run.root, [p for step in self.done for p in self._outputs_of(step)])
            self.history = TrainingHistory.load(self.run.history)
            if self.is_main:
                log.info("resuming %s: completed %s", self.run.root, ", ".join(self.done) or "nothing")

    # ------------------------------------------------------------------------------------- run
    def run_all(self) -> dict[str, Any]:
        try:
            return self._run_stages()
        finally:  # a later run in the same process must not write into this run's train.log
            handler = getattr(self, "_log_handler", None)
            if handler is not None:
                log.removeHandler(handler)
                handler.close()

    def _dataset(self, split: str):
        if split not in self.datasets:
            self.datasets[split] = build_dataset(self.recipe, split)
        return self.datasets[split]

    def _between_stages(self) -> None:
        """Stop here (everything done so far is recorded) when a signal asked to."""
        if self._stop_requested():
            raise TrainingStopped(self._stop_signal(), f"after {self.done[-1] if self.done else 'setup'} "
                                                       "(every completed stage is kept)")

    def _run_stages(self) -> dict[str, Any]:
        start = time.time()
        self._prepare_directory()
        self.modalities = build_modalities(self.recipe)
        self.train_set = self._dataset("train")
        self._fit_preprocessing()
        for name in self.names:
            self._between_stages()
            self._train_autoencoder(name)
        self._between_stages()
        self._cache_latents()
        self._between_stages()
        self._train_score_net()
        self._between_stages()
        summary: dict[str, Any] = {"run_dir": str(self.run.root), "seconds_training": time.time() - start}
        if self.is_main:
            summary |= self._finish()
            log.info("done in %.1f s: %s", time.time() - start, self.run.root)
        self.accelerator.wait_for_everyone()
        return summary

    # ------------------------------------------------------------------------- fitted modalities
    def _fit_preprocessing(self) -> None:
        for name, modality in self.modalities.items():
            if not modality.needs_fit:
                continue
            step = f"fit:{name}"
            if step not in self.done:
                if self.is_main:
                    field = self.fields[name]
                    values = (self.train_set[i][field] for i in range(len(self.train_set)))
                    modality.fit(values)
                    save_json(self.run.modality_state(name), modality.state_dict())
                    log.info("fitted %s preprocessing", name)
                self._mark_done(step, [self.run.modality_state(name)])
            modality.load_state_dict(load_json(self.run.modality_state(name), f"{name} preprocessing state"))

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
            self._mark_done(stage, [self.run.autoencoder(name)])
            return
        n = len(self.train_set)
        batch = cfg.batch_size or self.recipe.data.batch_size
        total = cfg.steps or cfg.epochs * math.ceil(n / batch)
        optimizer = torch.optim.Adam(autoencoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        start = self._maybe_resume(stage, {"model": autoencoder}, {"optimizer": optimizer})
        model, optimizer = self.accelerator.prepare(autoencoder, optimizer)
        view = ModalityBatches(self.train_set, {name: modality}, {name: self.fields[name]})
        loader = DataLoader(view, num_workers=self.recipe.data.num_workers,
                            batch_sampler=_StepBatches(n, batch, stage_seed(self.recipe.seed, stage),
                                                       self.rank, self.world, start, total),
                            collate_fn=lambda items: collate_items(items, {name: modality}))
        every = self.recipe.diffusion.train.checkpoint_every
        bar = tqdm(total=total, initial=start, desc=f"stage 1 {name}", disable=not self.progress)
        model.train()
        with self.stop.deferred():
            for step, batch_items in enumerate(loader, start=start):
                x = modality.augment(batch_items[name].to(self.accelerator.device))
                with self.accelerator.autocast():
                    loss = autoencoder.reconstruction_loss(x, model(x))
                value = self._check_finite(loss, stage, step)
                self.accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                self._after_step(stage, step, total, value, bar, every,
                                 {"model": autoencoder}, {"optimizer": optimizer})
        bar.close()
        if self.is_main:
            save_tensors(self.run.autoencoder(name), self.accelerator.unwrap_model(model).state_dict())
            log.info("stage 1 %s: %d steps, last loss %.4g", name, total, self.history.records[stage][-1][1]
                     if self.history.records[stage] else float("nan"))
        self._mark_done(stage, [self.run.autoencoder(name)])

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
                dataset = self._dataset(split)
                latents = encode_dataset(dataset, self.modalities, self.fields, autoencoders,
                                         batch_size=max(256, self.recipe.data.batch_size),
                                         num_workers=self.recipe.data.num_workers, device=self.accelerator.device,
                                         progress=self.progress, desc=f"encode {split}")
                save_latents(self.run.latents(split), latents)
                if split == "train":
                    LatentStats.fit({n: latents[n] for n in self.names}).save(self.run.latent_stats)
                log.info("encoded %s: %d items", split, len(latents[self.names[0]]))
        self._mark_done("latents", self._outputs_of("latents"))

    # ---------------------------------------------------------------------------------- stage 2
    def _train_score_net(self) -> None:
        stage = "score_net"
        if stage in self.done:
            return
        cfg = self.recipe.diffusion.train
        stats = LatentStats.load(self.run.latent_stats)
        cached = load_latents(self.run.latents("train"))
        z = stats.concat(cached, self.names).to(self.accelerator.device)
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
        total = cfg.steps or cfg.epochs * math.ceil(n / batch)
        start = self._maybe_resume(stage, {"net": net, "ema": ema}, {"optimizer": optimizer})
        model, optimizer = self.accelerator.prepare(net, optimizer)
        data_seed = stage_seed(self.recipe.seed, stage + ":data")
        noise = torch.Generator(device=z.device)
        bar = tqdm(total=total, initial=start, desc="stage 2 score net", disable=not self.progress)
        model.train()
        per_batch = self.recipe.diffusion.subset_sampling == "per_batch"
        with self.stop.deferred():
            for step in range(start, total):
                if cfg.warmup_steps:
                    for group in optimizer.param_groups:
                        group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
                idx = batch_indices(step, n, batch, data_seed, self.rank, self.world)
                noise.manual_seed(stage_seed(data_seed + step, f"noise:{self.rank}"))
                with self.accelerator.autocast():
                    loss = masked_multitime_loss(model, z[idx], sde, layout, d=self.recipe.diffusion.d,
                                                 t_eps=cfg.eps, generator=noise, per_batch=per_batch,
                                                 absent_prob=self.recipe.diffusion.absent_prob,
                                                 t_sampling=cfg.t_sampling, weighting=cfg.loss_weighting)
                value = self._check_finite(loss, stage, step)
                self.accelerator.backward(loss)
                if cfg.grad_clip is not None:
                    self.accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                ema.update()
                self._after_step(stage, step, total, value, bar, cfg.checkpoint_every,
                                 {"net": net, "ema": ema}, {"optimizer": optimizer})
        bar.close()
        if self.is_main:
            config = {"latent_dim": layout.total_dim, "num_modalities": layout.num_modalities,
                      **self.recipe.diffusion.score_net.model_dump()}
            save_tensors(self.run.score_net, ema.module.state_dict(), {"config": json.dumps(config)})
            log.info("stage 2: %d steps", total)
        self._mark_done(stage, [self.run.score_net])

    # ------------------------------------------------------------------------------ step helpers
    def _maybe_resume(self, stage: str, modules: dict, optimizers: dict) -> int:
        path = self.run.checkpoint(stage)
        if not (self.resume and path.is_file()):
            return 0
        state = load_training_checkpoint(path, modules, optimizers)
        if not isinstance(state.get("step"), int) or state["step"] < 0:
            raise CheckpointError(f"corrupt checkpoint: {path} (no step in its state)")
        self.history.truncate(stage, state["step"])  # the record at the checkpoint's step is kept
        if self.is_main:
            log.info("%s: resumed from step %d (%s)", stage, state["step"], path)
        return int(state["step"])

    def _check_finite(self, loss: torch.Tensor, stage: str, step: int) -> float:
        value = loss.detach().float()
        if self.world > 1:
            value = self.accelerator.reduce(value, "mean")
        value = float(value)
        if not math.isfinite(value):
            kept = self.run.checkpoint(stage)
            where = f"the last good checkpoint is kept: {kept}" if kept.is_file() else "no checkpoint was written yet"
            raise TrainingDiverged(f"{stage}: the loss is {value} at step {step}; training stopped ({where}). "
                                   "Lower the learning rate or check the data.")
        return value

    def _after_step(self, stage: str, step: int, total: int, value: float, bar, every: int,
                    modules: dict, optimizers: dict) -> None:
        done = step + 1
        log_every = self.recipe.diffusion.train.log_every
        if done % log_every == 0 or done == total:
            self.history.log(stage, done, value)
        bar.update(1)
        if done % max(1, log_every) == 0:
            bar.set_postfix(loss=f"{value:.4g}")
        stop = self._stop_requested()
        if (done % every == 0 or stop) and done < total:
            if self.is_main:
                save_training_checkpoint(self.run.checkpoint(stage),
                                         {k: self.accelerator.unwrap_model(m) if isinstance(m, torch.nn.Module) else m
                                          for k, m in modules.items()},
                                         optimizers, {"step": done, "stage": stage})
                self.history.save(self.run.history)
            self.accelerator.wait_for_everyone()
            if stop:
                bar.close()
                if self.is_main:
                    self.history.plot(self.run.curves)
                    log.info("%s: stopped by a signal at step %d of %d (checkpoint saved)", stage, done, total)
                raise TrainingStopped(self._stop_signal(), f"{stage} at step {done} of {total}; checkpoint "
                                                           f"saved to {self.run.checkpoint(stage)}")

    # ------------------------------------------------------------------------------------ finish
    def _finish(self) -> dict[str, Any]:
        """Sample grids, then the evaluation and report when the dataset has labels (main process)."""
        summary: dict[str, Any] = {}
        self.history.plot(self.run.curves)  # complete even when a kill came between state and plots
        pipe = MLDPipeline.load(self.run.root, device=self.accelerator.device)
        if "samples" not in self.done:
            n = self.recipe.evaluation.samples
            outputs = pipe.generate(n=n, seed=self.recipe.seed)
            pipe.render(outputs, self.run.samples, prefix="joint_")
            self.done.append("samples")
            save_json(self.run.state, {"completed": self.done})
        cached = load_latents(self.run.latents("test")) if self.run.latents("test").is_file() else {}
        if self.evaluate and "label" in cached and "evaluation" not in self.done:
            summary["metrics"] = evaluate_run(self.run.root, limit=self.recipe.evaluation.limit,
                                              seed=self.recipe.seed)
            self.done.append("evaluation")
            save_json(self.run.state, {"completed": self.done})
        return summary


# ------------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmlatent train", description="Train an MLD recipe (both stages).")
    parser.add_argument("recipe", help="recipe YAML file")
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


def check_evaluation_files(recipe: Recipe) -> None:
    """Load the evaluation's local weight files now, not after the whole training."""
    section = recipe.evaluation
    if not section.enabled:
        return
    if section.inception_weights is not None:
        load_inception(section.inception_weights)  # EvaluationError names the file
    if section.clip_model is not None:
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


def _nothing_trained(run: RunDir, trainer: Trainer | None) -> bool:
    if trainer is not None and trainer.done:
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
    datasets = load_datasets(recipe)
    if not args.no_eval:
        check_evaluation_files(recipe)
    # Without CUDA, Accelerate only detects a torchrun/accelerate multi-process launch when told
    # to run on the CPU (then it uses gloo); with one process this changes nothing.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
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
    trainer = None
    try:
        with StopSignals(announce=accelerator.is_main_process) as stop:
            trainer = Trainer(recipe, run_dir, accelerator, resume=args.resume, progress=not args.no_progress,
                              evaluate=False if args.no_eval else None, stop=stop, datasets=datasets)
            trainer.run_all()
    except BaseException as error:
        if accelerator.is_main_process and lock.created and _nothing_trained(RunDir(run_dir), trainer):
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
