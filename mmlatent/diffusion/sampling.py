"""Joint and conditional generation of concatenated latents (Algorithm 2): :func:`generate_latents`.

The engine, bottom up (notation: :mod:`mmlatent.diffusion`):

- :mod:`.denoiser`: :class:`~.denoiser.Denoiser`, the network for one batch (multi-time vector,
  given dims, NFE counted in one place);
- :mod:`.guidance`: :class:`~.guidance.Guided` and :class:`~.guidance.Clipped`, wrappers around it;
- :mod:`.steps`: the probability-flow, ancestral, Euler-Maruyama, re-noising and Langevin steps;
- :mod:`.samplers`: the samplers (plain functions over a denoiser, ``x`` and a time grid) and
  their table :data:`SAMPLERS` (:func:`register_sampler`);
- :mod:`.options`: the options each sampler accepts (:func:`sampler_options`,
  :func:`check_sampler_options`);
- this module: :func:`generate_latents`, which checks the conditioning, builds the time grid
  (:mod:`.schedules`), stacks the denoiser and its wrappers, draws the prior and runs the sampler.

Unknown dims start from N(0, I); given dims are the clean conditioning latents with time 0
throughout and are reset after every update, so they come back bit-identical. Joint generation is
the same with nothing given.

NFE convention: the number of network evaluations per sample, every guidance branch counted
(a guided evaluation with k branches counts 1 + k, although it is one batched forward pass).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .denoiser import EpsModel
from .guidance import DEFAULT_CLIP_DENOISED, MaskedEpsModel
from .masking import LatentLayout
from .options import (
    COMMON_OPTIONS,
    OPTION_CHECKS,
    check_sampler_options,
    sampler_options,
)
from .samplers import SAMPLERS, SamplerDefaults, register_sampler
from .schedules import repaint_schedule, time_grid
from .sde import VPSDE

__all__ = [
    "COMMON_OPTIONS",
    "DEFAULT_CLIP_DENOISED",
    "OPTION_CHECKS",
    "SAMPLERS",
    "MaskedEpsModel",
    "SampleResult",
    "SamplerDefaults",
    "check_sampler_options",
    "generate_latents",
    "register_sampler",
    "repaint_schedule",
    "sampler_options",
    "time_grid",
]

Callback = Callable[[dict[str, Any]], None]


@dataclass
class SampleResult:
    """What :func:`generate_latents` returns.

    Attributes:
        latents: ``(n, D)`` generated latents; the known dims are bit-identical to ``known``.
        nfe: network evaluations per sample (final denoising included).
        sampler: the sampler's name.
        steps: the number of grid steps N.
        given: bool ``(n, M)``, the conditioning mask used.
        calls: forward passes of the network (one per evaluation, guided or not).
        clipped: (sample, dim) entries whose predicted clean latent was clamped (summed over
            evaluations; see ``clip_denoised``).
    """

    latents: Tensor
    nfe: int
    sampler: str
    steps: int
    given: Tensor
    calls: int = 0
    clipped: int = 0


def _resolve_given(given: Tensor | None, n: int, layout: LatentLayout, device: torch.device) -> Tensor:
    m = layout.num_modalities
    if given is None:
        return torch.zeros(n, m, dtype=torch.bool, device=device)
    given = torch.as_tensor(given, device=device)
    if given.dtype != torch.bool:
        raise ValueError(f"given must be a bool tensor (M,) or (n, M), got dtype {given.dtype}")
    if given.shape == (m,):
        given = given.expand(n, m)
    if given.shape != (n, m):
        raise ValueError(
            f"given must have shape ({m},) or ({n}, {m}) (modalities {list(layout.names)}), "
            f"got {tuple(given.shape)}"
        )
    return given


def _resolve_known(
    known: Tensor | None, given: Tensor, n: int, layout: LatentLayout, device, dtype
) -> Tensor | None:
    if not bool(given.any()):
        return None
    missing = [layout.names[i] for i in range(layout.num_modalities) if bool(given[:, i].any())]
    if known is None:
        raise ValueError(f"known latents (n, {layout.total_dim}) are needed for the given modalities {missing}")
    d = layout.total_dim
    if known.shape == (d,) or known.shape == (1, d):
        known = known.reshape(1, d).expand(n, d)
    if known.shape != (n, d):
        raise ValueError(
            f"known latents must have shape ({n}, {d}) (dims {dict(zip(layout.names, layout.dims))}), "
            f"got {tuple(known.shape)}"
        )
    known = known.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(known[layout.modality_mask(given)]).all()):
        raise ValueError(f"known latents of the given modalities {missing} contain NaN or inf")
    return known


def _default_device(eps_model: EpsModel, known: Tensor | None) -> torch.device:
    if known is not None:
        return known.device
    if isinstance(eps_model, nn.Module):
        for p in eps_model.parameters():
            return p.device
    return torch.device("cpu")


def generate_latents(
    eps_model: EpsModel,
    sde: VPSDE,
    layout: LatentLayout,
    n: int,
    known: Tensor | None = None,
    given: Tensor | None = None,
    sampler: str = "heun",
    steps: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    denoise_final: bool = False,
    *,
    grid: str | None = None,
    t_min: float | None = None,
    rho: float = 7.0,
    guidance: Mapping[int | str, float] | None = None,
    combine_guidance: bool = False,
    joint_guidance: Mapping[int | str, float] | None = None,
    guidance_interval: tuple[float, float] | None = None,
    joint_steps: int | None = None,
    clip_denoised: float | None = DEFAULT_CLIP_DENOISED,
    callback: Callback | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    **options: Any,
) -> SampleResult:
    """Generate ``n`` concatenated latents, jointly or conditionally on known modalities.

    Args:
        eps_model: ``eps_model(x (n, D), tau (n, M)) -> eps (n, D)`` (e.g. the EMA ScoreNet in
            eval mode); called under ``torch.no_grad()``.
        sde: the forward process the model was trained with.
        layout: the modality layout.
        n: number of samples.
        known: ``(n, D)`` (or ``(D,)``, broadcast) clean conditioning latents; only the dims of
            the given modalities are read. Needed when anything is given.
        given: bool ``(M,)`` or ``(n, M)``, True for conditioning modalities; None = joint.
        sampler: a name in :data:`SAMPLERS`.
        steps: grid steps N (default: the sampler's).
        generator: torch generator for the prior and the sampler noise.
        progress: show a tqdm progress bar.
        denoise_final: finish with one Tweedie denoising step x0 = (x - sigma eps) / alpha at the
            last grid time (one more NFE; skipped when the grid ends at t = 0).
        grid, t_min: override the sampler's time grid kind (``"uniform"``, ``"logsnr"``,
            ``"karras"``) and last time (see :func:`time_grid`); ``rho`` of the karras grid.
        guidance: ``{modality index or name: weight}``, guidance per conditioning modality (see
            :class:`~.guidance.Guided`); each active branch adds one NFE per evaluation, all branches
            share one batched forward pass. None or ``{}``: no guidance.
        combine_guidance: one unconditional branch with every guided conditioning modality absent
            at once (2 NFE per evaluation whatever the number of given modalities), see
            :class:`~.guidance.Guided`.
        joint_guidance: ``{modality: weight}``, guidance of joint generation by a co-generated
            modality (see :class:`~.guidance.Guided`); one more NFE per weighted modality.
        guidance_interval: ``[t_low, t_high]``, the times at which guidance is applied (see
            :class:`~.guidance.Guided`); None: all.
        joint_steps: steps when no row conditions on anything (plain joint generation, which has
            no guidance branch and so can afford more steps for the same NFE); default ``steps``.
        clip_denoised: bound on the predicted clean latent in whitened units (see
            :class:`~.guidance.Clipped`); None: no clipping. The default 5.0 suits latents
            standardised per dimension, as the pipeline's are.
        callback: called after every update with ``{"i", "t", "x", "denoised"}``.
        device, dtype: where to sample (default device: ``known``'s, else the model's, else CPU).
        **options: sampler options (``eta`` for ddim; ``jump_length``, ``resamplings``, ``renoise``,
            ``reverse_step`` for repaint; ``lower_order_final`` for dpm_solver++; ``variance`` for
            ddpm; ``predictor``, ``corrector_steps``, ``snr`` for pc; ``s_churn``, ``s_noise``,
            ``s_tmin``, ``s_tmax``, ``order`` for churn). :func:`sampler_options` lists them.

    Returns:
        :class:`SampleResult` with ``latents (n, D)`` (known dims bit-identical to ``known``) and
        the NFE per sample.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; available: {sorted(SAMPLERS)}")
    fn = SAMPLERS[sampler]
    defaults: SamplerDefaults = fn.defaults  # type: ignore[attr-defined]
    steps = defaults.steps if steps is None else int(steps)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    device = torch.device(device) if device is not None else _default_device(eps_model, known)
    given = _resolve_given(given, n, layout, device)
    if joint_steps is not None and not bool(given.any()):
        steps = int(joint_steps)
    known = _resolve_known(known, given, n, layout, device, dtype)
    ts = time_grid(
        sde,
        steps,
        kind=defaults.grid if grid is None else grid,
        t_min=defaults.t_min if t_min is None else float(t_min),
        rho=rho,
    )
    denoiser = MaskedEpsModel(
        eps_model, sde, layout, given, known, guidance=guidance, clip_denoised=clip_denoised, generator=generator,
        combine_guidance=combine_guidance, joint_guidance=joint_guidance, guidance_interval=guidance_interval,
    )
    with torch.no_grad():
        # the prior N(0, I), drawn on the generator's device
        draw_device = generator.device if generator is not None else device
        prior = sde.prior_sampling((n, layout.total_dim), generator=generator, device=draw_device, dtype=dtype)
        x = denoiser.impose(prior.to(device))
        x = fn(denoiser, x, ts, generator=generator, callback=callback, progress=progress, **options)
        if denoise_final and float(ts[-1]) > 0:
            x = denoiser.denoised(x, float(ts[-1]))
        x = denoiser.impose(x)
    return SampleResult(
        latents=x, nfe=denoiser.nfe, sampler=sampler, steps=steps, given=given, calls=denoiser.calls,
        clipped=getattr(denoiser, "clipped", 0),
    )

