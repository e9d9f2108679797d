"""Experiment tracking through HuggingFace Accelerate's trackers (recipe key ``train.log_with``).

``train: {log_with: [tensorboard]}`` makes a run log, from the main process only:

- every ``log_every`` steps of every training stage (MLD's autoencoders and score network, a VAE
  family's one stage): ``<stage>/loss`` and ``<stage>/lr``, the same values as ``history.json``
  (stage names with ``/`` for ``:``: ``autoencoder/gray/loss``, ``score_net/loss``, ``mvae/lr``);
- at the end, the sample grids the run renders (its PNG files) as images ``samples/<file name>``.

Steps count the run's optimiser steps across its stages: a stage's step ``s`` is logged at ``s``
plus the steps of the stages before it, so the step only grows (what wandb requires) and a
resumed run continues where its checkpoint was. TensorBoard writes under ``RUN/logs/<recipe
name>/``: ``tensorboard --logdir RUN/logs``. wandb and mlflow use their own configuration
(``WANDB_*``, ``MLFLOW_TRACKING_URI``, ...); the project name is the recipe's ``name``.

A tracker whose package is missing is a :class:`~mmlatent.extras.MissingDependencyError` naming
what to ``pip install`` (exit code 2), raised before the run directory is made. Accelerate is
imported only when a run starts (the recipe reads :data:`TRACKERS` without it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmlatent.extras import EXTRAS, require, require_extra

__all__ = ["TRACKERS", "accelerator_options", "end_tracking", "log_images", "log_losses", "require_trackers",
           "run_step", "start_tracking"]

#: The trackers a recipe may name (Accelerate's names; each is also the package that provides it).
TRACKERS = ("tensorboard", "wandb", "mlflow")
#: Folder of the trackers' local files inside a run directory.
LOGS_FOLDER = "logs"


def require_trackers(log_with: Iterable[str]) -> None:
    """Raise :class:`~mmlatent.extras.MissingDependencyError` for the first tracker of ``log_with``
    whose package is not installed: ``pip install 'mmlatent[tensorboard]'`` (an extra of mmlatent),
    ``pip install wandb``."""
    for tracker in log_with:
        if tracker in EXTRAS:
            require_extra(tracker)
        else:
            require(tracker, feature=f"logging with {tracker} (train.log_with)", install=f"pip install {tracker}")


def accelerator_options(log_with: Sequence[str], run_dir: str | Path) -> dict[str, Any]:
    """``Accelerator(**options)`` for logging with the trackers ``log_with`` into ``run_dir``
    (empty without trackers); first :func:`require_trackers` (nothing is written)."""
    require_trackers(log_with)
    if not log_with:
        return {}
    return {"log_with": list(dict.fromkeys(log_with)), "project_dir": str(Path(run_dir) / LOGS_FOLDER)}


def start_tracking(accelerator: Any, project: str) -> None:
    """Start the trackers the accelerator was made with (``Accelerator.init_trackers``; a no-op without)."""
    if getattr(accelerator, "log_with", None) and not accelerator.trackers:
        accelerator.init_trackers(project)


def end_tracking(accelerator: Any) -> None:
    """Close the trackers (what ``Accelerator.end_training`` does for them, without ending the
    process group, which belongs to the command) so that a later run starts its own."""
    trackers = getattr(accelerator, "trackers", None)
    if not trackers:
        return
    try:
        for tracker in trackers:
            tracker.finish()
    finally:
        trackers.clear()


def run_step(records: Mapping[str, Sequence[Sequence[float]]], stage: str | None = None, step: int = 0) -> int:
    """Step ``step`` of ``stage`` counted across the run: plus the last recorded step of every
    other stage in ``records`` (``TrainingHistory.records``: the stages before it, in order).
    ``stage=None``: the run's steps so far."""
    return int(step) + sum(int(rows[-1][0]) for name, rows in records.items() if name != stage and rows)


def log_losses(accelerator: Any, stage: str, loss: float, optimizers: Mapping[str, Any], step: int) -> None:
    """Log ``<stage>/loss`` and the learning rate of each optimizer (``<stage>/lr``, or
    ``<stage>/lr_<name>`` beside the first) at run step ``step``."""
    if not getattr(accelerator, "trackers", None):
        return
    tag = stage.replace(":", "/")
    values = {f"{tag}/loss": float(loss)}
    for index, (name, optimizer) in enumerate(optimizers.items()):
        values[f"{tag}/lr" if index == 0 else f"{tag}/lr_{name}"] = float(optimizer.param_groups[0]["lr"])
    accelerator.log(values, step=step)


def _read_rgb(path: Path):
    """A PNG file as a ``(H, W, 3)`` uint8 array."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def log_images(accelerator: Any, paths: Iterable[str | Path], step: int) -> None:
    """Log the PNG files among ``paths`` as images ``samples/<file stem>`` at run step ``step``:
    to TensorBoard and wandb as images, to mlflow as artifacts (other trackers: not at all)."""
    trackers = getattr(accelerator, "trackers", None)
    pngs = [Path(path) for path in paths if Path(path).suffix.lower() == ".png"]
    if not trackers or not pngs or not accelerator.is_main_process:
        return
    images = {f"samples/{path.stem}": _read_rgb(path) for path in pngs}
    for tracker in trackers:
        if tracker.name == "tensorboard":  # one image per tag: a batch of one, (1, H, W, 3)
            tracker.log_images({tag: image[None] for tag, image in images.items()}, step=step, dataformats="NHWC")
        elif tracker.name == "wandb":
            tracker.log_images({tag: [image] for tag, image in images.items()}, step=step)
        elif tracker.name == "mlflow":
            for path in pngs:
                tracker.log_artifact(str(path), "samples")
