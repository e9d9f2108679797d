"""Entry point of the ``mmlatent-baselines`` plugin: registers the model families ``mvae``,
``mmvae``, ``mopoe``, ``nexus`` and ``mvtcae``.

Registering imports only the options (pydantic): MultiVae (seconds to import, and torchvision)
and the trainer are imported when a family trains or loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mmlatent

from mmlatent_baselines.options import (
    MMVAEOptions,
    MoPoEOptions,
    MVAEOptions,
    MVTCAEOptions,
    NexusOptions,
)

__all__ = ["FAMILIES", "load", "train"]


def train(recipe: Any, run_dir: Path, accelerator: Any, **context: Any) -> None:
    """Train the recipe's VAE family into ``run_dir`` (:func:`mmlatent_baselines.train.train_vae`)."""
    from mmlatent_baselines.train import train_vae

    train_vae(recipe, run_dir, accelerator, **context)


def load(run_dir: str | Path, device: Any = "cpu") -> Any:
    """A trained run as a :class:`~mmlatent_baselines.model.VAEModel`."""
    from mmlatent_baselines.model import load_vae

    return load_vae(run_dir, device)


def check(recipe: Any, options: Any) -> None:
    """``ModelSpec.check``: options that name modalities must name the recipe's
    (:func:`mmlatent_baselines.families.check_options`)."""
    from mmlatent_baselines.families import check_options

    check_options(recipe.model.family, recipe, options)


FAMILIES = (
    mmlatent.ModelSpec(name="mvae", options=MVAEOptions, train=train, load=load, check=check,
                       description="MVAE (Wu & Goodman 2018): product of experts, on MultiVae"),
    mmlatent.ModelSpec(name="mmvae", options=MMVAEOptions, train=train, load=load, check=check,
                       description="MMVAE (Shi et al. 2019): mixture of experts, DReG, on MultiVae"),
    mmlatent.ModelSpec(name="mopoe", options=MoPoEOptions, train=train, load=load, check=check,
                       description="MoPoE-VAE (Sutter et al. 2021): mixture of products of experts, on MultiVae"),
    mmlatent.ModelSpec(name="nexus", options=NexusOptions, train=train, load=load, check=check,
                       description="Nexus (Vasco et al. 2022): hierarchical, modality and joint latents, on MultiVae"),
    mmlatent.ModelSpec(name="mvtcae", options=MVTCAEOptions, train=train, load=load, check=check,
                       description="MVTCAE (Hwang et al. 2021): total correlation objective, on MultiVae"),
)


@mmlatent.hookimpl
def register_models(register):
    for spec in FAMILIES:
        register(spec)
