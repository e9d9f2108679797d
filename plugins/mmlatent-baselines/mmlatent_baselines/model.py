"""``VAEModel``: a trained VAE baseline behind mmlatent's model interface, and its weights file.

::

    model = mmlatent.model.load_model("runs/digits_mopoe")     # -> VAEModel (family from the recipe)
    out = model.generate(n=16, seed=0)                          # joint: z ~ prior, decode every modality
    out = model.generate(given={"gray": gray_batch})            # z ~ q(z | gray), decode the others
    out["color"]                                                # (N, 3, 16, 16) in data space

Generation is one encoder/decoder pass (``last_nfe == 1``); the only "sampler" is the family
itself, so :meth:`VAEModel.plan` refuses steps, guidance and sampler options. MultiVae samples
with the global torch and NumPy generators; :meth:`VAEModel.generate` seeds both inside a fork
of their states, so a call with the same seed gives the same samples and leaves the caller's
random streams as they were.

Weights: ``RUN/model/<family>.safetensors`` holds the MultiVae model's ``state_dict`` with the
family, its resolved options and the likelihoods in the metadata; :func:`load_vae` rebuilds the
networks from the run's recipe and checks the file against it (never MultiVae's own pickles).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmlatent.checkpoint import CheckpointError, load_metadata, load_tensors, save_tensors
from mmlatent.diffusion.plan import SamplingPlan
from mmlatent.manifest import verify_files
from mmlatent.model import RecipeModel, load_run_modalities, load_run_recipe
from pythae.data.datasets import DatasetOutput
from pythae.models.base.base_utils import ModelOutput
from torch import Tensor

from mmlatent_baselines.families import BuiltModel, build_model
from mmlatent_baselines.options import FAMILY_OPTIONS, BaselineOptions

__all__ = ["WEIGHTS_FORMAT", "VAEModel", "load_vae", "read_weights", "save_weights", "seeded"]

#: ``format`` entry of the weights file's metadata.
WEIGHTS_FORMAT = "mmlatent-baselines/vae/1"


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch (CPU and ``device``) and NumPy's global generator; restore their states after."""
    state = np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(state)


class VAEModel(RecipeModel):
    """A trained multimodal VAE (MultiVae model ``vae``) over the recipe's modalities.

    ``family``: ``mvae``, ``mmvae``, ``mopoe``, ``nexus`` or ``mvtcae``; ``built``: the model from
    :func:`~mmlatent_baselines.families.build_model` with its weights loaded.
    """

    def __init__(self, recipe: Any, modalities: Mapping[str, Any], family: str, built: BuiltModel,
                 run_dir: str | Path | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__(recipe, modalities, run_dir, device)
        self.family = family
        self.likelihoods = dict(built.likelihoods)
        self.vae = built.model.to(self.device).eval().requires_grad_(False)
        self.vae.device = self.device  # MultiVae moves its prior samples there
        #: one data-space item of each modality (its shape and dtype) to fill in absent modalities
        self._blank = {name: torch.zeros_like(nets.data[:1]).to(self.device) for name, nets in built.networks.items()}

    # --------------------------------------------------------------------------------- sampling
    def plan(self, sampler: str | None = None, steps: int | None = None,
             guidance: Mapping[str, float] | None = None, recipe_defaults: bool = True,
             **options: Any) -> SamplingPlan:
        """``SamplingPlan(sampler=<family>)``: a VAE samples in one pass, so any other sampler,
        steps, guidance weights or sampler options are a ``ValueError``."""
        if sampler is not None and sampler != self.family:
            raise ValueError(f"the {self.family} model samples in one pass (its only sampler is {self.family!r}); "
                             f"got sampler {sampler!r}")
        if steps is not None:
            raise ValueError(f"the {self.family} model samples in one pass and takes no steps (got steps={steps})")
        if guidance:
            raise ValueError(f"the {self.family} model takes no guidance weights (got {dict(guidance)})")
        if options:
            raise ValueError(f"the {self.family} model takes no sampler options (got {', '.join(sorted(options))})")
        return SamplingPlan(sampler=self.family)

    @torch.no_grad()
    def generate(self, n: int | None = None, given: Mapping[str, Tensor] | None = None, seed: int = 0,
                 plan: SamplingPlan | None = None, batch_size: int = 2048, progress: bool = False,
                 **settings: Any) -> dict[str, Tensor]:
        """``{name: (N, *item_shape)}`` in data space for every modality.

        Nothing given: ``n`` joint samples (z from the prior, every decoder). ``given``
        ``{name: (N, *item_shape)}`` (checked by each modality's ``prepare_batch``, returned as
        converted): z from the family's posterior given those modalities, the others decoded.
        ``plan``: None or :meth:`plan`'s; ``batch_size``: items per pass; ``progress`` is accepted
        for the model interface (one pass: no bar). Other settings are a ``ValueError``.
        """
        if settings:
            raise ValueError(f"the {self.family} model takes n, given, seed, plan and batch_size; got "
                             f"{', '.join(sorted(settings))}")
        if plan is not None:
            self.plan(None if plan.sampler == self.family else plan.sampler, plan.steps, plan.guidance,
                      **dict(plan.options))
        given, n = self.check_request(n, given, seed, batch_size=batch_size)
        wanted = [name for name in self.names if name not in given]
        chunks: dict[str, list[Tensor]] = {name: [] for name in wanted}
        with seeded(int(seed), self.device):
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                part = {name: x[start:stop].to(self.device) for name, x in given.items()}
                decoded = self._conditional(part, wanted) if given else self._joint(stop - start)
                for name in wanted:
                    chunks[name].append(self.vae.decoders[name].to_data(decoded[name]))
        self.last_nfe = 1
        return {name: given[name] if name in given else torch.cat(chunks[name]) for name in self.names}

    def _joint(self, n: int) -> Mapping[str, Tensor]:
        """Decoder outputs ``{name: (n, ...)}`` of n prior samples."""
        z = self.vae.generate_from_prior(n).z.reshape(n, -1)  # MultiVae drops the batch axis when n == 1
        return self.vae.decode(ModelOutput(z=z, one_latent_space=True))

    def _conditional(self, given: Mapping[str, Tensor], wanted: list[str]) -> Mapping[str, Tensor]:
        """Decoder outputs ``{name: (B, ...)}`` of the ``wanted`` modalities, z ~ q(z | given)."""
        data = dict(given)
        if self.family == "mopoe":  # MoPoE runs every encoder; only the given subset's experts are used
            size = next(iter(given.values())).shape[0]
            data |= {name: blank.expand(size, *blank.shape[1:]) for name, blank in self._blank.items()
                     if name not in given}
        return self.vae.predict(DatasetOutput(data=data), cond_mod=list(given), gen_mod=wanted, N=1)


# ---------------------------------------------------------------------------------------- files
def save_weights(path: str | Path, family: str, options: BaselineOptions, built: BuiltModel,
                 state_dict: Mapping[str, Tensor] | None = None) -> None:
    """Write the model's ``state_dict`` (or ``state_dict``) atomically as safetensors, with the
    family, its resolved options and the likelihoods in the metadata."""
    metadata = {"format": WEIGHTS_FORMAT, "family": family, "options": options.model_dump_json(),
                "likelihoods": json.dumps(built.likelihoods)}
    save_tensors(path, built.model.state_dict() if state_dict is None else state_dict, metadata)


def read_weights(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata of a weights file (:class:`CheckpointError` when missing or corrupt)."""
    return load_tensors(path, "VAE weights"), load_metadata(path, "VAE weights")


def load_vae(run_dir: str | Path, device: str | torch.device = "cpu") -> VAEModel:
    """A trained run of a VAE family as a :class:`VAEModel` (the ``load`` of every family here).

    The recipe, fitted preprocessing and weights are checked against the run's manifest; a
    weights file of another family or other options, or one that does not fit the networks the
    recipe builds, is a :class:`CheckpointError` naming it.
    """
    run, recipe = load_run_recipe(run_dir)
    family = recipe.model.family
    if family not in FAMILY_OPTIONS:
        raise CheckpointError(f"{run.recipe}: model family {family!r} is not one of mmlatent-baselines' "
                              f"({', '.join(FAMILY_OPTIONS)})")
    options = FAMILY_OPTIONS[family].model_validate(recipe.model.options)
    modalities = load_run_modalities(run, recipe)
    path = run.model_weights(family)
    verify_files(run.root, [path])
    tensors, metadata = read_weights(path)
    if metadata.get("format") != WEIGHTS_FORMAT or metadata.get("family") != family:
        raise CheckpointError(f"{path} is not the weights of a {family} model "
                              f"(format {metadata.get('format')!r}, family {metadata.get('family')!r})")
    if json.loads(metadata.get("options", "null")) != json.loads(options.model_dump_json()):
        raise CheckpointError(f"{path} was trained with other model options than the run's recipe says")
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the caller's stream alone
        built = build_model(family, recipe, options, modalities)
    try:
        built.model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not match the networks of the run's recipe: "
                              f"{str(error).splitlines()[0]}") from None
    if json.loads(metadata.get("likelihoods", "null")) != built.likelihoods:
        raise CheckpointError(f"{path}: the likelihoods it was trained with differ from the recipe's")
    return VAEModel(recipe, modalities, family, built, run.root, device)
