"""The model interface: what evaluation, ``mmlatent sample``, reports and benchmarks need of a
trained multi-modal generative model, whatever its family.

:class:`~mmlatent.pipeline.MLDPipeline` implements it for MLD; other model families (e.g. the
multimodal VAE baselines) implement the same protocol, so that everything built on it works
for them unchanged. Batches are data-space tensors ``(N, *item_shape)`` keyed by modality name.

:class:`RecipeModel` is the part every family built from a recipe shares (data, input checks,
rendering); :func:`load_model` loads any run directory with its family's ``load``
(:mod:`mmlatent.families`); :func:`load_run_recipe` and :func:`load_run_modalities` are the
checked first steps of every family's ``load``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from mmlatent.build import build_dataset, build_modalities
from mmlatent.checkpoint import CheckpointError, load_json
from mmlatent.data import ModalityBatches, collate_items
from mmlatent.diffusion.plan import SamplingPlan
from mmlatent.hub import PretrainedModel
from mmlatent.manifest import verify_files
from mmlatent.modality import Modality
from mmlatent.plugins import get_registry
from mmlatent.recipe import Recipe, RecipeError, load_recipe
from mmlatent.rundir import RunDir

__all__ = ["GenerativeModel", "RecipeModel", "load_model", "load_run_modalities", "load_run_recipe"]


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
        others (conditioned on ``given``; joint when empty). ``n``: N when nothing is given.
        ``settings`` a family must accept: ``progress`` (bool: a progress bar on long sampling);
        it may take more (MLD: sampler settings instead of ``plan``, ``batch_size``)."""
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


class RecipeModel(PretrainedModel):
    """What every model built from a recipe shares: modality names (recipe order), the fitted
    modality objects, the recipe's dataset, input checks and rendering. Families subclass it
    and add ``plan`` and ``generate``; every family shares ``save_pretrained``, ``from_pretrained``
    and ``push_to_hub`` (:class:`~mmlatent.hub.PretrainedModel`).

    ``recipe``: the run's :class:`~mmlatent.recipe.Recipe`; ``modalities``: ``{name: Modality}``
    with their fitted preprocessing loaded; ``run_dir``: where the run lives (None when built in
    memory); ``device``: where the networks compute.
    """

    def __init__(self, recipe: Recipe, modalities: Mapping[str, Modality], run_dir: str | Path | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.recipe = recipe
        self.names = list(recipe.modalities)
        self.modalities = dict(modalities)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.device = torch.device(device)
        self.last_nfe: int | None = None

    def dataset(self, split: str) -> Any:
        """The recipe's dataset split (raw item dicts)."""
        return build_dataset(self.recipe, split)

    def collate(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        """Raw item dicts -> ``{name: data-space batch, "label": (B,)}``."""
        view = ModalityBatches(list(items), self.modalities, {n: self.recipe.field_of(n) for n in self.names})
        return collate_items([view[i] for i in range(len(view))], self.modalities)

    def check_inputs(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Check and convert data-space inputs ``{name: (N, *item_shape)}``.

        Unknown names are errors; each batch goes through its modality's
        :meth:`~mmlatent.modality.Modality.prepare_batch` (shape, dtype and values, e.g. uint8
        images -> float in [0, 1]); all batches must hold the same N. Returns
        ``{name: prepared batch}`` (the batches themselves when nothing needs converting).
        """
        if not isinstance(batch, Mapping):
            raise ValueError(f"expected a mapping {{modality name: data-space batch}}, got {type(batch).__name__} "
                             f"(modalities: {', '.join(self.names)})")
        prepared = {}
        for name, x in batch.items():
            if name not in self.modalities:
                raise ValueError(f"unknown modality {name!r} (modalities: {', '.join(self.names)})")
            prepared[name] = self.modalities[name].prepare_batch(x)
        sizes = {name: x.shape[0] for name, x in prepared.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"given modalities have different batch sizes: {sizes}")
        return prepared

    def check_request(self, n: int | None, given: Mapping[str, Any] | None, seed: Any,
                      **counts: int | None) -> tuple[dict[str, Tensor], int]:
        """Check the arguments of a ``generate`` call; returns ``(given, n)``.

        ``n`` and every ``counts`` value (e.g. ``steps``, ``batch_size``) must be None or a positive
        integer and ``seed`` an integer; ``given`` goes through :meth:`check_inputs`, may not hold
        every modality, and fixes N (``n``, when given too, must equal it); without ``given``, ``n``
        is required.
        """
        for what, value in (("n", n), *counts.items()):
            if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{what} must be a positive integer, got {value!r}")
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        given = self.check_inputs({} if given is None else given)
        if given:
            count = next(iter(given.values())).shape[0]
            if n is not None and n != count:
                raise ValueError(f"n={n} but the given modalities hold {count} items")
            n = count
            if len(given) == len(self.names):
                raise ValueError("every modality is given: nothing to generate")
        if n is None or n <= 0:
            raise ValueError("n must be a positive number of samples")
        return given, int(n)

    def render(self, outputs: Mapping[str, Tensor], out_dir: str | Path, prefix: str = "") -> list[Path]:
        """Write each modality's batch with its plugin's renderer; returns the written files."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for name, batch in outputs.items():
            written += self.modalities[name].render(batch.detach().cpu(), out_dir / f"{prefix}{name}")
        return written


def load_run_recipe(run_dir: str | Path) -> tuple[RunDir, Recipe]:
    """The run directory and its recipe, checked against the manifest (``FileNotFoundError`` when
    there is no directory, :class:`~mmlatent.checkpoint.CheckpointError` when the recipe is
    missing, changed or no longer validates)."""
    run = RunDir(run_dir)
    if not run.root.is_dir():
        raise FileNotFoundError(f"no run directory at {run.root}")
    if not run.recipe.is_file():
        raise CheckpointError(f"missing recipe: {run.recipe} (is {run.root} a run directory?)")
    verify_files(run.root, [run.recipe])
    try:
        recipe = load_recipe(run.recipe)
    except RecipeError as error:
        raise CheckpointError(f"the run's recipe {run.recipe} no longer validates:\n{error.render()}") from None
    return run, recipe


def load_run_modalities(run: RunDir, recipe: Recipe) -> dict[str, Modality]:
    """The recipe's modalities with the fitted preprocessing the run stored (checked first)."""
    modalities = build_modalities(recipe)
    fitted = {name: run.modality_state(name) for name, modality in modalities.items() if modality.needs_fit}
    verify_files(run.root, list(fitted.values()))
    for name, path in fitted.items():
        modalities[name].load_state_dict(load_json(path, f"{name} preprocessing state"))
    return modalities


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> GenerativeModel:
    """Any trained run directory as its model family's :class:`GenerativeModel` (the family
    named by the run's recipe, ``model.family``: an :class:`~mmlatent.pipeline.MLDPipeline` for MLD)."""
    _, recipe = load_run_recipe(run_dir)
    return get_registry().model(recipe.model.family).load(Path(run_dir), device)
