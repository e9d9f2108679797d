"""The model interface: what evaluation, ``mmlatent sample``, reports and benchmarks need of a
trained multi-modal generative model, whatever its family.

:class:`~mmlatent.pipeline.MLDPipeline` implements it for MLD; other model families (e.g. the
multimodal VAE baselines) implement the same protocol, so that everything built on it works
for them unchanged. Batches are data-space tensors ``(N, *item_shape)`` keyed by modality name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from mmlatent.diffusion.plan import SamplingPlan
from mmlatent.modality import Modality

__all__ = ["GenerativeModel"]


@runtime_checkable
class GenerativeModel(Protocol):
    """A trained model over the modalities ``names`` (in order).

    ``modalities``: the :class:`~mmlatent.modality.Modality` objects (preprocessing, classifier
    architecture, rendering); ``device``: where it computes; ``last_nfe``: network evaluations
    per sample of the last :meth:`generate` call (None before the first).
    """

    names: list[str]
    modalities: Mapping[str, Modality]
    device: torch.device
    last_nfe: int | None

    def plan(self, sampler: str | None = None, steps: int | None = None,
             guidance: Mapping[str, float] | None = None, recipe_defaults: bool = True,
             **options: Any) -> SamplingPlan:
        """The checked sampling plan of these settings and the model's own defaults."""
        ...

    def generate(self, n: int | None = None, given: Mapping[str, Tensor] | None = None, seed: int = 0,
                 plan: SamplingPlan | None = None, **settings: Any) -> dict[str, Tensor]:
        """``{name: (N, *item_shape)}`` for every modality: the ``given`` ones, and samples of the
        others (conditioned on ``given``; joint when empty). ``n``: N when nothing is given."""
        ...

    def render(self, outputs: Mapping[str, Tensor], out_dir: str | Path, prefix: str = "") -> list[Path]:
        """Write each modality's batch for people (image grids, caption lists, ...)."""
        ...

    def dataset(self, split: str) -> Any:
        """The model's dataset split: a torch Dataset of raw item dicts."""
        ...

    def collate(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        """Raw item dicts -> ``{name: data-space batch, "label": (B,)}``."""
        ...
