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
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from mmlatent.checkpoint import (
    load_json,
    load_training_checkpoint,
    save_json,
    save_tensors,
    save_training_checkpoint,
)
from mmlatent.data import ModalityBatches, batch_indices, collate_items
from mmlatent.history import TrainingHistory
from mmlatent.latents import LatentStats, encode_dataset, load_latents, save_latents
from mmlatent.modality import Modality
from mmlatent.recipe import Recipe, RecipeError, load_recipe
from mmlatent.rundir import RunDir

__all__ = ["TrainingDiverged", "Trainer", "main"]

log = logging.getLogger("mmlatent.train")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class RunDirectoryExists(RuntimeError):
    pass


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


def build_modalities(recipe: Recipe) -> dict[str, Modality]:
    """Instantiate every modality of the recipe through the plugin registry (recipe order)."""
    from mmlatent.plugins import get_registry

    registry = get_registry()
    return {name: registry.modality(cfg.kind).build(name, cfg.options, cfg.latent_dim)
            for name, cfg in recipe.modalities.items()}


def build_dataset(recipe: Recipe, split: str):
    """The recipe's dataset for ``split`` (raw item dicts)."""
    from mmlatent.plugins import get_registry

    spec = get_registry().dataset(recipe.data.dataset)
    if split not in spec.splits:
        raise ValueError(f"dataset {spec.name!r} has no split {split!r} (splits: {', '.join(spec.splits)})")
    return spec.build(spec.validate_options(recipe.data.options), split)


def plugin_versions(recipe: Recipe) -> dict[str, Any]:
    """Which distribution (name, version) provides each kind and the dataset of the recipe."""
    from mmlatent.plugins import get_registry

    registry = get_registry()
    providers: dict[str, Any] = {"modalities": {}, "dataset": None}
    for name, cfg in recipe.modalities.items():
        plugin = registry.provider_of_modality(cfg.kind)
        providers["modalities"][name] = {"kind": cfg.kind, "plugin": plugin.name, "version": plugin.version}
    plugin = registry.provider_of_dataset(recipe.data.dataset)
    providers["dataset"] = {"name": recipe.data.dataset, "plugin": plugin.name, "version": plugin.version}
    import mmlatent

    providers["mmlatent"] = mmlatent.__version__
    providers["torch"] = torch.__version__
    return providers


class Trainer:
    """Runs the stages of one recipe into one run directory."""

    def __init__(self, recipe: Recipe, run_dir: str | Path, accelerator=None, resume: bool = False,
                 progress: bool = True, evaluate: bool | None = None) -> None:
        from accelerate import Accelerator

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

    def _mark_done(self, step: str) -> None:
        self.done.append(step)
        if self.is_main:
            save_json(self.run.state, {"completed": self.done})
            self.history.save(self.run.history)
            self.history.plot(self.run.curves)
        self.accelerator.wait_for_everyone()

    def _setup_logging(self) -> None:
        if not self.is_main:
            return
        handler = logging.FileHandler(self.run.log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        self._log_handler = handler

    def _prepare_directory(self) -> None:
        """Write the resolved recipe (or check it against the stored one on --resume)."""
        if self.is_main:
            self.run.root.mkdir(parents=True, exist_ok=True)
            resolved = self.recipe.to_yaml()
            if self.resume and self.run.recipe.is_file():
                stored = self.run.recipe.read_text(encoding="utf-8")
                if stored != resolved:
                    raise RecipeError(str(self.run.recipe), [(
                        "", "the recipe differs from the one this run was started with; "
                            "resume with the same recipe and --set overrides, or start a new run")])
            else:
                from mmlatent.checkpoint import atomic_write_text

                atomic_write_text(self.run.recipe, resolved)
                save_json(self.run.plugins, plugin_versions(self.recipe))
        self.accelerator.wait_for_everyone()
        self._setup_logging()
        if self.resume and self.run.state.is_file():
            self.done = list(load_json(self.run.state, "run state").get("completed", []))
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

    def _run_stages(self) -> dict[str, Any]:
        start = time.time()
        self._prepare_directory()
        self.modalities = build_modalities(self.recipe)
        self.train_set = build_dataset(self.recipe, "train")
        self._fit_preprocessing()
        for name in self.names:
            self._train_autoencoder(name)
        self._cache_latents()
        self._train_score_net()
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
                self._mark_done(step)
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
            self._mark_done(stage)
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
        self._mark_done(stage)

    # ----------------------------------------------------------------------------- latent cache
    def _cache_latents(self) -> None:
        if "latents" in self.done:
            return
        if self.is_main:
            from mmlatent.checkpoint import load_tensors
            from mmlatent.plugins import get_registry

            autoencoders = {}
            for name, modality in self.modalities.items():
                autoencoder = modality.build_autoencoder()
                autoencoder.load_state_dict(load_tensors(self.run.autoencoder(name), f"{name} autoencoder"))
                autoencoders[name] = autoencoder.eval().to(self.accelerator.device)
            spec = get_registry().dataset(self.recipe.data.dataset)
            for split in spec.splits:
                dataset = self.train_set if split == "train" else build_dataset(self.recipe, split)
                latents = encode_dataset(dataset, self.modalities, self.fields, autoencoders,
                                         batch_size=max(256, self.recipe.data.batch_size),
                                         num_workers=self.recipe.data.num_workers, device=self.accelerator.device,
                                         progress=self.progress, desc=f"encode {split}")
                save_latents(self.run.latents(split), latents)
                if split == "train":
                    LatentStats.fit({n: latents[n] for n in self.names}).save(self.run.latent_stats)
                log.info("encoded %s: %d items", split, len(latents[self.names[0]]))
        self._mark_done("latents")

    # ---------------------------------------------------------------------------------- stage 2
    def build_score_net(self):
        from mmlatent.diffusion import ScoreNet

        cfg = self.recipe.diffusion.score_net
        dims = [self.recipe.modalities[n].latent_dim for n in self.names]
        return ScoreNet(latent_dim=sum(dims), num_modalities=len(dims), width=cfg.width,
                        blocks=cfg.blocks, time_embed=cfg.time_embed)

    def _train_score_net(self) -> None:
        from mmlatent.diffusion import EMA, VPSDE, LatentLayout, masked_multitime_loss

        stage = "score_net"
        if stage in self.done:
            return
        cfg = self.recipe.diffusion.train
        stats = LatentStats.load(self.run.latent_stats)
        cached = load_latents(self.run.latents("train"))
        z = stats.concat(cached, self.names).to(self.accelerator.device)
        layout = LatentLayout([self.recipe.modalities[n].latent_dim for n in self.names], self.names)
        sde = VPSDE(**self.recipe.diffusion.sde.model_dump())
        torch.manual_seed(stage_seed(self.recipe.seed, stage))
        net = self.build_score_net()
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
        for step in range(start, total):
            if cfg.warmup_steps:
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
            idx = batch_indices(step, n, batch, data_seed, self.rank, self.world)
            noise.manual_seed(stage_seed(data_seed + step, f"noise:{self.rank}"))
            with self.accelerator.autocast():
                loss = masked_multitime_loss(model, z[idx], sde, layout, d=self.recipe.diffusion.d,
                                             eps=cfg.eps, generator=noise, per_batch=per_batch,
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
            import json

            save_tensors(self.run.score_net, ema.module.state_dict(), {"config": json.dumps(config)})
            log.info("stage 2: %d steps", total)
        self._mark_done(stage)

    # ------------------------------------------------------------------------------ step helpers
    def _maybe_resume(self, stage: str, modules: dict, optimizers: dict) -> int:
        path = self.run.checkpoint(stage)
        if not (self.resume and path.is_file()):
            return 0
        state = load_training_checkpoint(path, modules, optimizers)
        self.history.truncate(stage, state["step"] - 1)
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
        if done % every == 0 and done < total:
            if self.is_main:
                save_training_checkpoint(self.run.checkpoint(stage),
                                         {k: self.accelerator.unwrap_model(m) if isinstance(m, torch.nn.Module) else m
                                          for k, m in modules.items()},
                                         optimizers, {"step": done, "stage": stage})
                self.history.save(self.run.history)
            self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------------------------ finish
    def _finish(self) -> dict[str, Any]:
        """Sample grids, then the evaluation and report when the dataset has labels (main process)."""
        from mmlatent.pipeline import MLDPipeline

        summary: dict[str, Any] = {}
        pipe = MLDPipeline.load(self.run.root, device=self.accelerator.device)
        if "samples" not in self.done:
            n = self.recipe.evaluation.samples
            outputs = pipe.generate(n=n, seed=self.recipe.seed)
            pipe.render(outputs, self.run.samples, prefix="joint_")
            self.done.append("samples")
            save_json(self.run.state, {"completed": self.done})
        cached = load_latents(self.run.latents("test")) if self.run.latents("test").is_file() else {}
        if self.evaluate and "label" in cached and "evaluation" not in self.done:
            from mmlatent.evaluation.command import evaluate_run

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
    group.add_argument("--overwrite", action="store_true", help="delete an existing run directory first")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.overrides)
    except RecipeError as error:
        print(error.render(), file=sys.stderr)
        return 2
    run_dir = Path(args.output or Path("runs") / recipe.name)
    from accelerate import Accelerator

    # Without CUDA, Accelerate only detects a torchrun/accelerate multi-process launch when told
    # to run on the CPU (then it uses gloo); with one process this changes nothing.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    occupied = run_dir.exists() and any(run_dir.iterdir())
    accelerator.wait_for_everyone()  # every process looks before any process writes
    if occupied and not (args.resume or args.overwrite):
        if accelerator.is_main_process:
            print(f"run directory {run_dir} already exists: pass --resume to continue it "
                  "or --overwrite to start again", file=sys.stderr)
        return 2
    if args.overwrite and accelerator.is_main_process and run_dir.exists():
        shutil.rmtree(run_dir)
    accelerator.wait_for_everyone()
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING,
                        format="%(message)s", stream=sys.stderr)
    trainer = Trainer(recipe, run_dir, accelerator, resume=args.resume, progress=not args.no_progress,
                      evaluate=False if args.no_eval else None)
    try:
        trainer.run_all()
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except RecipeError as error:
        print(error.render(), file=sys.stderr)
        return 2
    if accelerator.is_main_process:
        print(f"run written to {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
