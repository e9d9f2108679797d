"""``MLDPipeline``: a trained run as a Python object (encode, generate, decode), and ``mmlatent sample``.

::

    pipe = MLDPipeline.load("runs/quickstart")
    out = pipe.generate(n=16)                                # joint generation
    out = pipe.generate(given={"gray": gray_batch})          # every other modality from gray
    out["color"]                                             # (16, 3, 16, 16) in data space
    pipe.last_nfe                                            # score-network evaluations per sample
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mmlatent.build import (
    build_layout,
    build_score_net,
    build_sde,
    default_plan,
)
from mmlatent.checkpoint import CheckpointError, load_tensors
from mmlatent.diffusion import (
    SamplingPlan,
    check_sampler_options,
    generate_latents,
    resolve_plan,
)
from mmlatent.latents import LatentStats
from mmlatent.manifest import verify_files
from mmlatent.modality import Autoencoder, Modality
from mmlatent.model import RecipeModel, load_run_modalities, load_run_recipe
from mmlatent.students import STUDENT_PREFIX, student_sampler

__all__ = ["MLDPipeline"]


class MLDPipeline(RecipeModel):
    """A trained MLD model: modalities, autoencoders, latent statistics and the EMA score network."""

    def __init__(self, recipe, modalities: dict[str, Modality], autoencoders: dict[str, Autoencoder],
                 stats: LatentStats, score_net: torch.nn.Module, run_dir: Path | None = None,
                 device: str | torch.device = "cpu") -> None:
        super().__init__(recipe, modalities, run_dir, device)
        self.autoencoders = autoencoders
        self.stats = stats
        self.score_net = score_net
        self.sde = build_sde(recipe)
        self.layout = build_layout(recipe)
        self.default_plan = default_plan(recipe)
        self.last_plan: SamplingPlan | None = None

    # ------------------------------------------------------------------------------------ load
    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu") -> MLDPipeline:
        """Load a run directory written by ``mmlatent train`` (safetensors only).

        Every file is checked against the run's manifest first: a changed or truncated file
        raises :class:`mmlatent.manifest.ManifestMismatch` (a ``CheckpointError``) naming it.
        """
        run, recipe = load_run_recipe(run_dir)
        modalities = load_run_modalities(run, recipe)
        verify_files(run.root, [*(run.autoencoder(n) for n in modalities), run.latent_stats, run.score_net])
        autoencoders = {}
        for name, modality in modalities.items():
            autoencoder = modality.build_autoencoder()
            _load_into(autoencoder, run.autoencoder(name), f"{name} autoencoder")
            autoencoders[name] = autoencoder.eval().to(device)
        stats = LatentStats.load(run.latent_stats)
        score_net = build_score_net(recipe)
        _load_into(score_net, run.score_net, "score network")
        score_net.eval().to(device)
        for module in [score_net, *autoencoders.values()]:
            module.requires_grad_(False)
        return cls(recipe, modalities, autoencoders, stats, score_net, run.root, device)

    # ---------------------------------------------------------------------------- encode/decode
    @torch.no_grad()
    def encode(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{name: data-space batch (B, *item_shape)}`` -> ``{name: standardised latents (B, d_i)}``
        (the batches are checked and converted by :meth:`check_inputs` first)."""
        return self._encode(self.check_inputs(batch))

    def _encode(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """:meth:`encode` of batches that :meth:`check_inputs` returned."""
        return {name: self.stats.normalise(name, self.autoencoders[name].encode(x.to(self.device)).float())
                for name, x in batch.items()}

    @torch.no_grad()
    def decode(self, latents: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{name: standardised latents (B, d_i)}`` -> ``{name: data-space batch}``."""
        out = {}
        for name, z in latents.items():
            if name not in self.modalities:
                raise ValueError(f"unknown modality {name!r} (modalities: {', '.join(self.names)})")
            d = self.recipe.modalities[name].latent_dim
            if z.ndim != 2 or z.shape[1] != d:
                raise ValueError(f"modality {name!r}: expected latents of shape (N, {d}), got {tuple(z.shape)}")
            autoencoder = self.autoencoders[name]
            out[name] = autoencoder.to_data(autoencoder.decode(self.stats.denormalise(name, z.to(self.device))))
        return out

    # -------------------------------------------------------------------------------- generate
    def plan(self, sampler: str | None = None, steps: int | None = None,
             guidance: Mapping[str, float] | None = None, recipe_defaults: bool = True,
             **options: Any) -> SamplingPlan:
        """The checked :class:`SamplingPlan` of these settings and the recipe's ``sampling`` section
        (:func:`~mmlatent.diffusion.plan.resolve_plan`: the recipe's settings belong to its sampler)."""
        if guidance is not None and not isinstance(guidance, Mapping):
            raise ValueError(f"guidance must map modality names to weights, got {guidance!r}")
        name = sampler or self.default_plan.sampler
        if not name.startswith(STUDENT_PREFIX):
            check_sampler_options(name, options)  # the recipe's own options were checked with the recipe
        plan = resolve_plan(self.default_plan, sampler, steps, options, guidance, use_defaults=recipe_defaults)
        for name, weight in plan.guidance.items():
            if name not in self.modalities:
                raise ValueError(f"guidance for unknown modality {name!r} (modalities: {', '.join(self.names)})")
            if not isinstance(weight, numbers.Real) or isinstance(weight, bool) or not math.isfinite(weight):
                raise ValueError(f"guidance weight of modality {name!r}: expected a finite number, got {weight!r}")
        return plan

    @torch.no_grad()
    def generate(self, n: int | None = None, given: Mapping[str, Tensor] | None = None,
                 sampler: str | None = None, steps: int | None = None, seed: int = 0,
                 guidance: Mapping[str, float] | None = None, batch_size: int = 2048,
                 progress: bool = False, recipe_defaults: bool = True, plan: SamplingPlan | None = None,
                 **options: Any) -> dict[str, Tensor]:
        """Generate every modality not in ``given``; returns ``{name: data-space batch}`` for all.

        ``given`` maps modality names to data-space batches ``(N, *item_shape)``, checked and
        converted by :meth:`check_inputs` and returned as converted (unchanged when already in
        data space; uint8 images come back as float in [0, 1]); ``n`` is the number of samples
        (must equal N when ``given`` is not empty). ``sampler``
        defaults to the recipe's ``sampling.sampler``; the rest of the recipe's ``sampling`` section
        (steps, options, guidance weights, denoise_final) belongs to that sampler and fills in what
        the call leaves unset whenever that sampler runs, unless ``recipe_defaults=False`` (then
        only the arguments of the call count). ``**options`` are sampler options (``eta``,
        ``grid``, ``combine_guidance``, ``joint_guidance``, ...: ``sampler_options(sampler)``).
        ``sampler="student:<name>"`` runs the few-step student ``RUN/students/<name>`` made by
        ``mmlatent distill`` on its own grid. ``plan``: a :class:`SamplingPlan` from :meth:`plan`
        instead of the sampler settings. Sets ``self.last_nfe`` and ``self.last_plan``.
        """
        given, n = self.check_request(n, given, seed, steps=steps, batch_size=batch_size)
        if plan is None:
            plan = self.plan(sampler, steps, guidance, recipe_defaults, **options)
        elif sampler is not None or steps is not None or guidance or options or not recipe_defaults:
            raise ValueError("give either a plan or sampler settings (sampler, steps, guidance, options), not both")
        sampler_options = dict(plan.options)
        if plan.guidance:
            # weights of modalities that are not given are inactive (MaskedEpsModel)
            sampler_options["guidance"] = {self.names.index(k): float(w) for k, w in plan.guidance.items() if w}
        if plan.denoise_final:
            sampler_options["denoise_final"] = True
        steps = plan.steps
        if plan.sampler.startswith(STUDENT_PREFIX):  # a distilled few-step student, RUN/students/<name>
            run_sampler, steps = student_sampler(self, plan.sampler, steps)
        else:
            run_sampler = partial(generate_latents, self.score_net)
        known_latents = self._encode(given) if given else {}
        mask = torch.tensor([name in given for name in self.names], device=self.device)
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        chunks: list[Tensor] = []
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            known = None
            if given:
                known = torch.zeros(stop - start, self.layout.total_dim, device=self.device)
                for i, name in enumerate(self.names):
                    if name in given:
                        known[:, self.layout.slices[i]] = known_latents[name][start:stop]
            result = run_sampler(self.sde, self.layout, stop - start, known=known,
                                 given=mask if given else None, sampler=plan.sampler, steps=steps,
                                 generator=generator, progress=progress, **sampler_options)
            chunks.append(result.latents)
            self.last_nfe = int(result.nfe)
        self.last_plan = plan
        latents = torch.cat(chunks)
        wanted = {name: latents[:, self.layout.slices[i]] for i, name in enumerate(self.names) if name not in given}
        decoded = self.decode(wanted)
        return {name: given[name] if name in given else decoded[name] for name in self.names}


def _load_into(module: torch.nn.Module, path: Path, what: str) -> None:
    tensors = load_tensors(path, what)
    try:
        module.load_state_dict(tensors)
    except RuntimeError as error:
        raise CheckpointError(f"{what} at {path} does not match the recipe's architecture: "
                              f"{str(error).splitlines()[0]}") from None
