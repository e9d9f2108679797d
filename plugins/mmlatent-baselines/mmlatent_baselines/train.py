"""Training a VAE family: one stage, the whole model end to end, under mmlatent's run bookkeeping.

``mmlatent train RECIPE`` with ``model.family`` one of ``mvae``, ``mmvae``, ``mopoe``, ``nexus``,
``mvtcae`` calls :func:`train_vae`, which runs a :class:`VAETrainer`
(:class:`mmlatent.training.StagedTrainer`: run directory, fitted preprocessing, checkpoints,
``--resume``, signals, NaN stop, sample grids and evaluation). Its one stage, named after the
family, is a plain loop over MultiVae's objective with HuggingFace Accelerate:

- batch ``step`` of the global batch sequence is the same for any number of processes
  (:class:`mmlatent.training.StepBatches`), each process taking its share;
- the torch and NumPy generators MultiVae samples with are reseeded at every step from
  ``(seed, step, rank)``, so a resumed run trains exactly like an uninterrupted one;
- MultiVae's annealing gets ``epoch`` (1-based) and ``batch_ratio`` from the step;
- the optimised loss is the per-item mean of the negative objective, except for MMVAE, whose
  MultiVae loss is the batch *sum*: it is optimised as ``mean * global batch`` (the same gradient
  as MultiVae's sum on one process); the recorded loss is always the per-item mean.

The weights end in ``RUN/model/<family>.safetensors`` (:func:`~mmlatent_baselines.model.save_weights`).
"""

from __future__ import annotations

import logging
import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmlatent.data import ModalityBatches, collate_items
from mmlatent.errors import UserError
from mmlatent.progress import progress_bar
from mmlatent.training import StagedTrainer, StepBatches, stage_seed
from pythae.data.datasets import DatasetOutput
from torch import Tensor, nn
from torch.utils.data import DataLoader

from mmlatent_baselines.families import build_model, check_options
from mmlatent_baselines.model import save_weights
from mmlatent_baselines.options import FAMILY_OPTIONS, BaselineOptions

__all__ = ["VAEObjective", "VAETrainer", "train_vae"]

log = logging.getLogger("mmlatent.train")


class VAEObjective(nn.Module):
    """MultiVae model -> its training loss per item: ``forward(data {name: (B, *item_shape)},
    epoch, batch_ratio, masks)`` -> scalar (the module Accelerate prepares: DDP sees plain tensors).
    ``masks``: ``{name: (B,) bool}``, which items have each modality (incomplete data: MultiVae
    leaves the missing ones out of each family's loss)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, data: dict[str, Tensor], epoch: int, batch_ratio: float,
                masks: dict[str, Tensor] | None = None) -> Tensor:
        inputs = DatasetOutput(data=data) if masks is None else DatasetOutput(data=data, masks=masks)
        out = self.model(inputs, epoch=epoch, batch_ratio=batch_ratio)
        return out.loss_sum / next(iter(data.values())).shape[0]


def family_options(recipe: Any) -> BaselineOptions:
    """The recipe's ``model.options`` as its family's options model."""
    return FAMILY_OPTIONS[recipe.model.family].model_validate(recipe.model.options)


class VAETrainer(StagedTrainer):
    """Trains the recipe's VAE family (``recipe.model.family``) in one resumable stage."""

    def __init__(self, recipe: Any, run_dir: str | Path, accelerator: Any = None, **context: Any) -> None:
        super().__init__(recipe, run_dir, accelerator, **context)
        self.family = recipe.model.family
        self.options = family_options(recipe)
        self._template: dict[str, Tensor] = {}

    def outputs_of(self, step: str) -> list[Path]:
        if step == self.family:
            return [self.run.model_weights(self.family)]
        return super().outputs_of(step)

    def train_stages(self) -> None:
        self.between_stages()
        self._train_vae()

    def _reseed(self, seed: int, step: int) -> None:
        """The generators MultiVae samples with, for training step ``step`` of this process."""
        step_seed = stage_seed(seed + step, f"{self.family}:rank{self.rank}")
        torch.manual_seed(step_seed)
        np.random.seed(step_seed)

    def _inputs(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
        """A collated batch -> MultiVae's ``data`` and ``masks`` (None when every item is complete)
        on the device. A modality missing from every item of the batch gets zeros shaped like an
        earlier batch's (its mask is False throughout, so they are never read)."""
        device = self.accelerator.device
        size = len(batch["present"]) if "present" in batch else len(batch[self.names[0]])
        data = {}
        for name in self.names:
            if name in batch:
                data[name] = batch[name].to(device)
                self._template[name] = batch[name][:1]
            elif name in self._template:
                data[name] = self._template[name].new_zeros((size, *self._template[name].shape[1:])).to(device)
            else:
                raise UserError(f"the first training batch has no item with modality {name!r}: "
                                "lower its missing rate or raise model.options.batch_size")
        if "present" not in batch:
            return data, None
        present = batch["present"].to(device)
        return data, {name: present[:, column] for column, name in enumerate(self.names)}

    def _train_vae(self) -> None:
        stage, options = self.family, self.options
        if stage in self.done:
            return
        seed = stage_seed(self.recipe.seed, stage)
        torch.manual_seed(seed)
        try:
            built = build_model(self.family, self.recipe, options, self.modalities)
        except ValueError as error:  # options or modalities that do not fit a VAE (the message says which)
            raise UserError(str(error)) from None
        vae = built.model
        n = len(self.train_set)
        if options.batch_size % self.world:
            raise UserError(f"model.options.batch_size {options.batch_size} is not divisible by {self.world} processes")
        per_epoch = math.ceil(n / options.batch_size)
        total = options.steps or options.epochs * per_epoch
        scale = float(options.batch_size) if self.family == "mmvae" else 1.0  # MultiVae's MMVAE loss is a sum
        optimizer = torch.optim.Adam([p for p in vae.parameters() if p.requires_grad], lr=options.lr)
        start = self.resume_step(stage, {"model": vae}, {"optimizer": optimizer})
        objective, optimizer = self.accelerator.prepare(VAEObjective(vae), optimizer)
        vae.device = self.accelerator.device
        loader = DataLoader(ModalityBatches(self.train_set, self.modalities, self.fields),
                            num_workers=self.recipe.data.num_workers,
                            batch_sampler=StepBatches(n, options.batch_size, stage_seed(seed, "data"), self.rank,
                                                      self.world, start, total),
                            collate_fn=partial(collate_items, modalities=self.modalities))
        bar = progress_bar(total=total, initial=start, desc=f"{self.family}", disable=not self.progress)
        objective.train()
        with self.stop.deferred():
            for step, batch in enumerate(loader, start=start):
                data, masks = self._inputs(batch)
                epoch, within = divmod(step, per_epoch)
                self._reseed(seed, step)
                with self.accelerator.autocast():
                    try:
                        loss = objective(data, epoch=epoch + 1, batch_ratio=within / per_epoch, masks=masks)
                    except ValueError as error:  # torch.distributions refuses the NaN parameters of a diverged model
                        if "Expected parameter" not in str(error):
                            raise
                        loss = torch.tensor(float("nan"), device=self.accelerator.device)
                value = self.check_finite(loss, stage, step)
                self.accelerator.backward(loss * scale)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                self.after_step(stage, step, total, value, bar, options.checkpoint_every,
                                {"model": vae}, {"optimizer": optimizer}, log_every=options.log_every)
        bar.close()
        weights = self.run.model_weights(self.family)
        if self.is_main:
            save_weights(weights, self.family, options, built)
            records = self.history.records.get(stage) or [(total, float("nan"))]
            log.info("%s: %d steps, last loss %.4g", stage, total, records[-1][1])
        self.mark_done(stage, [weights])


def train_vae(recipe: Any, run_dir: Path, accelerator: Any, **context: Any) -> None:
    """The ``train`` of every family here: ``recipe`` into ``run_dir`` (see :class:`VAETrainer`)."""
    try:
        check_options(recipe.model.family, recipe, family_options(recipe))
    except ValueError as error:  # before anything is written
        raise UserError(str(error)) from None
    VAETrainer(recipe, run_dir, accelerator, **context).run_all()
