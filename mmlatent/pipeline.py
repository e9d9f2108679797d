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
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mmlatent.build import (
    build_dataset,
    build_layout,
    build_modalities,
    build_score_net,
    build_sde,
    default_plan,
)
from mmlatent.checkpoint import CheckpointError, load_json, load_tensors
from mmlatent.data import ModalityBatches, collate_items
from mmlatent.diffusion import (
    SamplingPlan,
    check_sampler_options,
    generate_latents,
    resolve_plan,
)
from mmlatent.errors import UserError
from mmlatent.latents import LatentStats
from mmlatent.manifest import verify_files
from mmlatent.modality import Autoencoder, Modality
from mmlatent.recipe import RecipeError, load_recipe
from mmlatent.rundir import RunDir
from mmlatent.students import STUDENT_PREFIX, student_sampler

__all__ = ["MAX_CLI_SAMPLES", "MLDPipeline", "sample_command"]

#: Most samples one ``mmlatent sample`` makes (more: ``MLDPipeline.generate`` in batches).
MAX_CLI_SAMPLES = 10_000


class MLDPipeline:
    """A trained MLD model: modalities, autoencoders, latent statistics and the EMA score network."""

    def __init__(self, recipe, modalities: dict[str, Modality], autoencoders: dict[str, Autoencoder],
                 stats: LatentStats, score_net: torch.nn.Module, run_dir: Path | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.recipe = recipe
        self.names = list(recipe.modalities)
        self.modalities = modalities
        self.autoencoders = autoencoders
        self.stats = stats
        self.score_net = score_net
        self.run_dir = run_dir
        self.device = torch.device(device)
        self.sde = build_sde(recipe)
        self.layout = build_layout(recipe)
        self.default_plan = default_plan(recipe)
        self.last_nfe: int | None = None
        self.last_plan: SamplingPlan | None = None

    # ------------------------------------------------------------------------------------ load
    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu") -> MLDPipeline:
        """Load a run directory written by ``mmlatent train`` (safetensors only).

        Every file is checked against the run's manifest first: a changed or truncated file
        raises :class:`mmlatent.manifest.ManifestMismatch` (a ``CheckpointError``) naming it.
        """
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
        modalities = build_modalities(recipe)
        verify_files(run.root, [*(run.modality_state(n) for n, m in modalities.items() if m.needs_fit),
                                *(run.autoencoder(n) for n in modalities), run.latent_stats, run.score_net])
        for name, modality in modalities.items():
            if modality.needs_fit:
                modality.load_state_dict(load_json(run.modality_state(name), f"{name} preprocessing state"))
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

    # ------------------------------------------------------------------------------------ data
    def dataset(self, split: str):
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
        for what, value in (("n", n), ("steps", steps), ("batch_size", batch_size)):
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

    # ---------------------------------------------------------------------------------- people
    def render(self, outputs: Mapping[str, Tensor], out_dir: str | Path, prefix: str = "") -> list[Path]:
        """Write each modality's batch with its plugin's renderer; returns the written files."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for name, batch in outputs.items():
            written += self.modalities[name].render(batch.detach().cpu(), out_dir / f"{prefix}{name}")
        return written


def _load_into(module: torch.nn.Module, path: Path, what: str) -> None:
    tensors = load_tensors(path, what)
    try:
        module.load_state_dict(tensors)
    except RuntimeError as error:
        raise CheckpointError(f"{what} at {path} does not match the recipe's architecture: "
                              f"{str(error).splitlines()[0]}") from None


def sample_command(args) -> int:
    """``mmlatent sample RUN [--n N] [--given NAME=FILE ...] [--sampler S] [--steps K] --out DIR``.

    ``args`` as :func:`mmlatent.cli.build_parser` makes it, with ``--guidance`` and ``--option``
    already parsed (``args.guidance``: ``{name: weight}``, ``args.options``: ``{key: value}``).
    """
    try:
        if not args.given and not 0 < args.n <= MAX_CLI_SAMPLES:
            raise ValueError(f"--n {args.n}: give 1 to {MAX_CLI_SAMPLES} samples (for more, call "
                             "MLDPipeline.generate in batches from Python)")
        pipe = MLDPipeline.load(args.run)
        given = {}
        for name, path in args.given:
            if name not in pipe.modalities:
                raise ValueError(f"unknown modality {name!r} in --given (modalities: {', '.join(pipe.names)})")
            if not Path(path).is_file():
                raise ValueError(f"--given {name}={path}: no such file")
            given[name] = pipe.modalities[name].read_file(Path(path))
            if len(given[name]) > MAX_CLI_SAMPLES:
                raise ValueError(f"--given {name}={path} holds {len(given[name])} items; at most "
                                 f"{MAX_CLI_SAMPLES} from the command line")
        outputs = pipe.generate(n=None if given else args.n, given=given, sampler=args.sampler,
                                steps=args.steps, seed=args.seed, guidance=args.guidance or None, progress=True,
                                recipe_defaults=args.recipe_defaults, **args.options)
        written = pipe.render(outputs, args.out)
    except (ValueError, FileNotFoundError, KeyError) as error:  # a mistake in the arguments or files
        raise UserError(str(error)) from error
    print(f"{len(next(iter(outputs.values())))} samples with {pipe.last_plan.sampler} "
          f"({pipe.last_nfe} NFE per sample):")
    for path in written:
        print(f"  {path}")
    return 0
