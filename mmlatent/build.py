"""Recipe -> objects: the one place that turns a validated :class:`~mmlatent.recipe.Recipe` into
modalities, datasets, the SDE, the latent layout, a score network and the record of plugin versions.

Training (:mod:`mmlatent.train`), the pipeline (:mod:`mmlatent.pipeline`), distillation and the
evaluation all build through these functions, so that a run is always rebuilt the way it was
trained. This module sits low: it imports the recipe, the plugin registry and the diffusion
engine, and nothing that trains, samples or evaluates.
"""

from __future__ import annotations

from typing import Any

import torch

from mmlatent.diffusion import VPSDE, LatentLayout, SamplingPlan, ScoreNet
from mmlatent.missing import IncompleteDataset
from mmlatent.modality import Modality
from mmlatent.plugins import get_registry
from mmlatent.recipe import Recipe
from mmlatent.version import __version__

__all__ = ["build_dataset", "build_layout", "build_modalities", "build_score_net", "build_sde", "dataset_splits",
           "default_plan", "plugin_versions"]


def build_modalities(recipe: Recipe) -> dict[str, Modality]:
    """Instantiate every modality of the recipe through the plugin registry (recipe order)."""
    registry = get_registry()
    return {name: registry.modality(cfg.kind).build(name, cfg.options, cfg.latent_dim)
            for name, cfg in recipe.modalities.items()}


def build_dataset(recipe: Recipe, split: str) -> Any:
    """The recipe's dataset for ``split``: a torch Dataset of raw item dicts ``{field: value, "label": int}``.

    With ``data.missing`` the splits it names come back as an :class:`~mmlatent.missing.IncompleteDataset`
    (missing fields are ``None``)."""
    spec = get_registry().dataset(recipe.data.dataset)
    options = spec.validate_options(recipe.data.options)
    splits = spec.available_splits(options)
    if split not in splits:
        raise ValueError(f"dataset {spec.name!r} has no split {split!r} (splits: {', '.join(splits)})")
    dataset = spec.build(options, split)
    missing = recipe.data.missing
    if missing is not None and split in missing.splits:
        names = list(recipe.modalities)
        dataset = IncompleteDataset.from_rates(dataset, names, [recipe.field_of(name) for name in names],
                                               missing.rate, missing.by_label,
                                               seed=missing.seed * 1_000_003 + splits.index(split))
        if missing.complete_only:
            dataset = dataset.complete_items()
    return dataset


def dataset_splits(recipe: Recipe) -> tuple[str, ...]:
    """The split names the recipe's dataset offers with the recipe's options (e.g. ``("train", "val", "test")``)."""
    spec = get_registry().dataset(recipe.data.dataset)
    return spec.available_splits(spec.validate_options(recipe.data.options))


def build_sde(recipe: Recipe) -> VPSDE:
    """The VP-SDE of ``diffusion.sde``."""
    return VPSDE(**recipe.diffusion.sde.model_dump())


def build_layout(recipe: Recipe) -> LatentLayout:
    """Where each modality's latent sits in the concatenated latent (recipe order)."""
    return LatentLayout([cfg.latent_dim for cfg in recipe.modalities.values()], list(recipe.modalities))


def build_score_net(recipe: Recipe) -> ScoreNet:
    """A freshly initialised score network of ``diffusion.score_net`` over the concatenated latent
    ``(B, D)`` with the multi-time vector ``(B, M)`` (seed torch first for a reproducible one)."""
    cfg = recipe.diffusion.score_net
    layout = build_layout(recipe)
    return ScoreNet(latent_dim=layout.total_dim, num_modalities=layout.num_modalities, width=cfg.width,
                    blocks=cfg.blocks, time_embed=cfg.time_embed, prediction=cfg.prediction,
                    modality_dims=layout.dims, sde=recipe.diffusion.sde.model_dump())


def default_plan(recipe: Recipe) -> SamplingPlan:
    """The recipe's ``sampling`` section as the default :class:`SamplingPlan` of its runs."""
    cfg = recipe.sampling
    return SamplingPlan(sampler=cfg.sampler, steps=cfg.steps, options=cfg.options, guidance=cfg.guidance,
                        denoise_final=cfg.denoise_final)


def plugin_versions(recipe: Recipe) -> dict[str, Any]:
    """Which distribution (name, version) provides each kind and the dataset of the recipe, with the
    versions of mmlatent and torch (written to ``RUN/plugins.json``)."""
    registry = get_registry()
    providers: dict[str, Any] = {"modalities": {}, "dataset": None}
    for name, cfg in recipe.modalities.items():
        plugin = registry.provider_of_modality(cfg.kind)
        providers["modalities"][name] = {"kind": cfg.kind, "plugin": plugin.name, "version": plugin.version}
    plugin = registry.provider_of_dataset(recipe.data.dataset)
    providers["dataset"] = {"name": recipe.data.dataset, "plugin": plugin.name, "version": plugin.version}
    providers["mmlatent"] = __version__
    providers["torch"] = torch.__version__
    return providers
