"""The run bookkeeping every model family's training shares: :class:`StagedTrainer`.

A family's trainer (MLD's :class:`mmlatent.train.MLDTrainer`, the VAE baselines' trainer, ...)
subclasses it and implements :meth:`StagedTrainer.train_stages` with the helpers below; the base
class owns what must be the same for every family:

- the run directory: manifest and resolved recipe on a new run, the same recipe on ``--resume``,
  ``state.json`` (the completed steps), ``history.json`` and loss curves, ``train.log``;
- the modalities' fitted preprocessing (e.g. a text vocabulary), fitted once on the train split;
- resumable steps: checkpoints every N steps and at a SIGINT/SIGTERM (:mod:`mmlatent.stopping`),
  resume from the last one, a NaN/inf loss stops with :class:`TrainingDiverged`;
- the end of a run: sample grids and the evaluation, through the family's own ``load``;
- experiment tracking (``train.log_with``, :mod:`mmlatent.tracking`): each recorded loss and the
  learning rate, then the sample grids, go to the accelerator's trackers.

Only the main process writes files; with several Accelerate processes every process trains on
its own share of each global batch (:func:`batch_sampler`).
"""

from __future__ import annotations

import logging
import math
import signal
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import Sampler

from mmlatent.build import build_dataset, build_modalities, plugin_versions
from mmlatent.checkpoint import (
    CheckpointError,
    atomic_write_text,
    load_json,
    load_training_checkpoint,
    save_json,
    save_training_checkpoint,
)
from mmlatent.data import batch_indices
from mmlatent.history import TrainingHistory
from mmlatent.manifest import record_files, start_manifest, verify_files
from mmlatent.missing import field_presence
from mmlatent.recipe import Recipe, RecipeError
from mmlatent.rundir import RunDir
from mmlatent.stopping import StopSignals, TrainingStopped
from mmlatent.tracking import accelerator_options, end_tracking, log_images, log_losses, run_step, start_tracking

__all__ = ["StagedTrainer", "StepBatches", "TrainingDiverged", "stage_seed"]

log = logging.getLogger("mmlatent.train")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1  # mmlatent.errors: a message, no traceback


def stage_seed(seed: int, stage: str) -> int:
    """A reproducible seed for one stage of a run."""
    return (seed * 7919 + zlib.crc32(stage.encode())) % (2**31)


class StepBatches(Sampler[list[int]]):
    """A DataLoader ``batch_sampler``: this process's index list for each training step in
    ``range(start, stop)`` (the global batch of a step is the same for any number of processes)."""

    def __init__(self, n: int, global_batch: int, seed: int, rank: int, world: int, start: int, stop: int):
        self.args = (n, global_batch, seed, rank, world)
        self.start, self.stop = start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        n, global_batch, seed, rank, world = self.args
        for step in range(self.start, self.stop):
            yield batch_indices(step, n, global_batch, seed, rank, world).tolist()


class StagedTrainer:
    """Trains one recipe into one run directory as a list of named, resumable steps.

    Subclasses implement :meth:`train_stages` (and :meth:`outputs_of` for the files their steps
    write). ``stop``: the installed signal handlers (a stop is then a checkpoint at the next step
    boundary); ``datasets``: already loaded splits by name (``mmlatent train`` loads them before
    it creates the run directory); ``evaluate``: evaluate at the end (None: the recipe's
    ``evaluation.enabled``). Without ``accelerator`` one is made with the recipe's trackers
    (``train.log_with``).
    """

    def __init__(self, recipe: Recipe, run_dir: str | Path, accelerator=None, resume: bool = False,
                 progress: bool = True, evaluate: bool | None = None, stop: StopSignals | None = None,
                 datasets: dict[str, Any] | None = None) -> None:
        self.stop = stop or StopSignals()
        self.datasets = dict(datasets or {})
        self.recipe = recipe
        self.run = RunDir(run_dir)
        self.accelerator = accelerator or Accelerator(**accelerator_options(recipe.train.log_with, run_dir))
        self.resume = resume
        self.is_main = self.accelerator.is_main_process
        self.progress = progress and self.accelerator.is_local_main_process
        self.evaluate = recipe.evaluation.enabled if evaluate is None else evaluate
        self.names = list(recipe.modalities)
        self.fields = {name: recipe.field_of(name) for name in self.names}
        self.done: list[str] = []
        self.history = TrainingHistory()
        self.modalities: dict[str, Any] = {}
        self._presence: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------------- for subclasses
    def train_stages(self) -> None:
        """The family's training steps (called by :meth:`run_all` after the preprocessing)."""
        raise NotImplementedError

    def outputs_of(self, step: str) -> list[Path]:
        """The files a completed ``step`` wrote that later steps read (checked on ``--resume``)."""
        kind, _, name = step.partition(":")
        if kind == "fit":
            return [self.run.modality_state(name)]
        return []

    # ------------------------------------------------------------------------------ bookkeeping
    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    def mark_done(self, step: str, written: Sequence[Path] = ()) -> None:
        """Record ``written`` (files later steps read) in the manifest, then ``step`` as done."""
        self.done.append(step)
        if self.is_main:
            if written:
                record_files(self.run.root, written)
            self.history.save(self.run.history)
            self.history.plot(self.run.curves)
            save_json(self.run.state, {"completed": self.done})
        self.accelerator.wait_for_everyone()

    def stop_requested(self) -> bool:
        """Whether any process got SIGINT/SIGTERM (every process gets the same answer)."""
        flag = self.stop.requested is not None
        if self.world > 1:
            flag = bool(self.accelerator.reduce(torch.tensor(float(flag), device=self.accelerator.device),
                                                "sum") > 0)
        return flag

    def _stop_signal(self) -> int:
        return self.stop.requested or signal.SIGTERM

    def between_stages(self) -> None:
        """Stop here (everything done so far is recorded) when a signal asked to."""
        if self.stop_requested():
            raise TrainingStopped(self._stop_signal(), f"after {self.done[-1] if self.done else 'setup'} "
                                                       "(every completed stage is kept)")

    def dataset(self, split: str):
        """The recipe's dataset split (loaded once)."""
        if split not in self.datasets:
            self.datasets[split] = build_dataset(self.recipe, split)
        return self.datasets[split]

    def presence(self, split: str) -> torch.Tensor:
        """Which modalities each item of ``split`` has: bool ``(N, M)`` in recipe order (read once,
        see :mod:`mmlatent.missing`). A modality no item has is an error naming its field."""
        if split not in self._presence:
            present = field_presence(self.dataset(split), [self.fields[name] for name in self.names])
            if split == "train":
                for column, name in enumerate(self.names):
                    if len(present) and not bool(present[:, column].any()):
                        raise RecipeError(self.recipe.name, [(f"modalities.{name}", (
                            f"no item of the train split has a value for field {self.fields[name]!r}"))])
            self._presence[split] = present
        return self._presence[split]

    def items_with(self, name: str) -> list[int] | None:
        """Indices of the training items that have modality ``name`` (None: every item has it)."""
        present = self.presence("train")[:, self.names.index(name)]
        return None if bool(present.all()) else present.nonzero().squeeze(1).tolist()

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
                verify_files(self.run.root, [p for step in self.done for p in self.outputs_of(step)])
            self.history = TrainingHistory.load(self.run.history)
            if self.is_main:
                log.info("resuming %s: completed %s", self.run.root, ", ".join(self.done) or "nothing")

    # ------------------------------------------------------------------------------------- run
    def run_all(self) -> dict[str, Any]:
        """Prepare the directory, fit the preprocessing, train every stage, then sample and evaluate."""
        try:
            start = time.time()
            self._prepare_directory()
            start_tracking(self.accelerator, self.recipe.name)
            self.modalities = build_modalities(self.recipe)
            self.train_set = self.dataset("train")
            self.fit_preprocessing()
            self.train_stages()
            self.between_stages()
            summary: dict[str, Any] = {"run_dir": str(self.run.root), "seconds_training": time.time() - start}
            if self.is_main:
                summary |= self._finish()
                log.info("done in %.1f s: %s", time.time() - start, self.run.root)
            self.accelerator.wait_for_everyone()
            return summary
        finally:  # a later run in the same process must not write into this run's train.log or trackers
            end_tracking(self.accelerator)
            handler = getattr(self, "_log_handler", None)
            if handler is not None:
                log.removeHandler(handler)
                handler.close()

    def fit_preprocessing(self) -> None:
        """Fit each modality's preprocessing that needs it on the train split (once), then load it."""
        for name, modality in self.modalities.items():
            if not modality.needs_fit:
                continue
            step = f"fit:{name}"
            if step not in self.done:
                if self.is_main:
                    field = self.fields[name]
                    values = (value for i in range(len(self.train_set))
                              if (value := self.train_set[i].get(field)) is not None)
                    modality.fit(values)
                    save_json(self.run.modality_state(name), modality.state_dict())
                    log.info("fitted %s preprocessing", name)
                self.mark_done(step, [self.run.modality_state(name)])
            modality.load_state_dict(load_json(self.run.modality_state(name), f"{name} preprocessing state"))

    # ------------------------------------------------------------------------------ step helpers
    def resume_step(self, stage: str, modules: dict, optimizers: dict) -> int:
        """On ``--resume`` with a checkpoint of ``stage``: load it into ``modules`` and
        ``optimizers`` and return its step; else 0."""
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

    def check_finite(self, loss: torch.Tensor, stage: str, step: int) -> float:
        """The loss as a float (mean over processes); :class:`TrainingDiverged` when NaN/inf."""
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

    def after_step(self, stage: str, step: int, total: int, value: float, bar, every: int,
                   modules: dict, optimizers: dict, log_every: int | None = None) -> None:
        """After optimiser step ``step`` (0-based) of ``total``: record the loss every ``log_every``
        steps (default ``diffusion.train.log_every``; also to the trackers, with the learning rate),
        move the bar, checkpoint ``modules`` and ``optimizers`` every ``every`` steps, and stop with a
        checkpoint when a signal came."""
        done = step + 1
        log_every = log_every or self.recipe.diffusion.train.log_every
        if done % log_every == 0 or done == total:
            self.history.log(stage, done, value)
            log_losses(self.accelerator, stage, value, optimizers, run_step(self.history.records, stage, done))
        bar.update(1)
        if done % max(1, log_every) == 0:
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)  # shown at the bar's next update
        stop = self.stop_requested()
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
        """Sample grids, then the evaluation and report when the test split has labels (main process)."""
        from mmlatent.evaluation.command import evaluate_run
        from mmlatent.model import load_model

        summary: dict[str, Any] = {}
        self.history.plot(self.run.curves)  # complete even when a kill came between state and plots
        model = load_model(self.run.root, device=self.accelerator.device)
        if "samples" not in self.done:
            outputs = model.generate(n=self.recipe.evaluation.samples, seed=self.recipe.seed)
            grids = model.render(outputs, self.run.samples, prefix="joint_")
            log_images(self.accelerator, grids, run_step(self.history.records))
            self.done.append("samples")
            save_json(self.run.state, {"completed": self.done})
        if self.evaluate and self._test_has_labels() and "evaluation" not in self.done:
            summary["metrics"] = evaluate_run(self.run.root, limit=self.recipe.evaluation.limit,
                                              seed=self.recipe.seed, pipeline=model)
            self.done.append("evaluation")
            save_json(self.run.state, {"completed": self.done})
        return summary

    def _test_has_labels(self) -> bool:
        """Whether the test split's items carry a label (what the evaluation needs)."""
        try:
            test = self.dataset("test")
            return len(test) > 0 and "label" in test[0]
        except (ValueError, KeyError, OSError):
            return False
