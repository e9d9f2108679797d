"""Model family ``mld`` (the default): Multi-modal Latent Diffusion as the rest of the core builds it.

Registered by the ``mmlatent`` distribution's own entry point (``mld = "mmlatent.builtin.mld"`` in the
``mmlatent`` group), loaded like any plugin: the registry never imports the trainer it serves, so
there is no import circle. Its settings are the recipe's ``modalities.<name>.train``, ``diffusion`` and ``sampling`` sections,
so ``model.options`` is empty. Training and loading are imported when called: registering the
family must not pull the diffusion engine into ``mmlatent plugins``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmlatent.families import DEFAULT_FAMILY, ModelSpec
from mmlatent.hookspecs import hookimpl

__all__ = ["MLD"]


def train_mld(recipe: Any, run_dir: Path, accelerator: Any, **context: Any) -> None:
    """Both stages of MLD into ``run_dir`` (:class:`mmlatent.train.MLDTrainer`)."""
    from mmlatent.train import MLDTrainer

    MLDTrainer(recipe, run_dir, accelerator, **context).run_all()


def load_mld(run_dir: str | Path, device: Any = "cpu") -> Any:
    """The trained run as an :class:`~mmlatent.pipeline.MLDPipeline`."""
    from mmlatent.pipeline import MLDPipeline

    return MLDPipeline.load(run_dir, device=device)


MLD = ModelSpec(name=DEFAULT_FAMILY, train=train_mld, load=load_mld,
                description="Multi-modal Latent Diffusion: deterministic autoencoders + masked multi-time "
                            "diffusion over their latents (the recipe's diffusion and sampling sections)")


@hookimpl
def register_models(register):
    register(MLD)
