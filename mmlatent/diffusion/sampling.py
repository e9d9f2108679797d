"""Samplers for joint and conditional generation of concatenated latents (Algorithm 2).

Every sampler is a plain function (k-diffusion style)::

    sampler(model: MaskedEpsModel, x (n, D), ts (N+1,), *, generator=None, callback=None,
            progress=False, **options) -> x (n, D)

over a decreasing time grid ``ts`` (``ts[0] = T`` down to ``ts[-1]``) and a
:class:`MaskedEpsModel`, the one place where the score network is evaluated: it builds the
multi-time vector tau (0 for the conditioning modalities), calls ``eps_model``, counts the
evaluations (NFE) and re-imposes the known dims. Unknown dims start from N(0, I); known dims are
the clean conditioning latents with time 0 throughout and are reset after every update, so they
come back bit-identical. Joint generation is the same with nothing known.

Samplers (``SAMPLERS``; defaults in ``fn.defaults``):

=================  ====================================================  =============  ==========
name               method                                                default steps  NFE
=================  ====================================================  =============  ==========
euler_maruyama     reverse SDE, Euler-Maruyama (the paper's Algorithm 2)  250            N
repaint            Euler-Maruyama with RePaint resampling (paper default) 250, j=10 r=10 2,410
euler              probability-flow ODE, Euler (in x/alpha, sigma/alpha)  50             N
heun               probability-flow ODE, Heun (2nd order)                 25             2N
ddim               DDIM, ``eta`` in [0, 1] (0: deterministic)             50             N
dpm_solver++       DPM-Solver++(2M), data prediction, multistep           25             N
=================  ====================================================  =============  ==========

:func:`generate_latents` is the entry point; :func:`register_sampler` adds a sampler to the table.
Time grids and the RePaint walk are in :mod:`mmlatent.diffusion.schedules`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .masking import LatentLayout, multitime_vector
from .schedules import repaint_schedule, time_grid
from .sde import VPSDE

__all__ = [
    "SAMPLERS",
    "MaskedEpsModel",
    "SampleResult",
    "SamplerDefaults",
    "generate_latents",
    "register_sampler",
    "repaint_schedule",
    "time_grid",
]

EpsModel = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[dict[str, Any]], None]


# ----------------------------------------------------------------------------- model wrapper
class MaskedEpsModel:
    """The score network seen by a sampler, for one batch with fixed conditioning.

    Args:
        eps_model: ``eps_model(x (n, D), tau (n, M)) -> eps (n, D)``.
        sde: the forward process.
        layout: the modality layout.
        given: bool ``(n, M)``, True for conditioning modalities.
        known: ``(n, D)`` clean conditioning latents (only the dims of given modalities are read),
            or None when nothing is given.

    Attributes:
        nfe: number of network evaluations so far (each evaluates the whole batch, so this is the
            NFE per sample).
        known_dims: bool ``(n, D)``, the dims that are reset after every update.
    """

    def __init__(
        self,
        eps_model: EpsModel,
        sde: VPSDE,
        layout: LatentLayout,
        given: Tensor,
        known: Tensor | None,
    ):
        self.eps_model = eps_model
        self.sde = sde
        self.layout = layout
        self.given = given
        self.known_dims = layout.modality_mask(given)
        self.has_known = bool(self.known_dims.any())
        self.known = known
        self.nfe = 0

    def tau(self, t: float, like: Tensor) -> Tensor:
        """Multi-time vector ``(n, M)`` at time ``t``: t for unknown modalities, 0 for known ones."""
        t_tensor = torch.tensor(t, dtype=like.dtype, device=like.device)
        return multitime_vector(t_tensor, self.given)

    def impose(self, x: Tensor) -> Tensor:
        """``x (n, D)`` with the known dims replaced by the clean conditioning values (exact copy)."""
        if not self.has_known:
            return x
        return torch.where(self.known_dims, self.known, x)

    def eps(self, x: Tensor, t: float) -> Tensor:
        """One network evaluation at time ``t``: ``eps (n, D)``; counts one NFE."""
        self.nfe += 1
        return self.eps_model(x, self.tau(t, x))

    def denoised(self, x: Tensor, t: float, eps: Tensor | None = None) -> Tensor:
        """Tweedie estimate of the clean latent ``(n, D)`` at time ``t > 0``, known dims imposed."""
        if eps is None:
            eps = self.eps(x, t)
        alpha, sigma = _coefficients(self.sde, t)
        return self.impose((x - sigma * eps) / alpha)


def _coefficients(sde: VPSDE, t: float) -> tuple[float, float]:
    """alpha(t), sigma(t) as Python floats, computed in float64."""
    tt = torch.tensor(t, dtype=torch.float64)
    return float(sde.alpha(tt)), float(sde.sigma(tt))


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn on the generator's device."""
    device = generator.device if generator is not None else x.device
    z = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return z.to(x.device)


def _steps(n: int, progress: bool, desc: str):
    return tqdm(range(n), disable=not progress, desc=desc, leave=False)


# ----------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class SamplerDefaults:
    """Default settings of a sampler: number of steps, time grid kind, last grid time."""

    steps: int
    grid: str
    t_min: float


SAMPLERS: dict[str, Callable[..., Tensor]] = {}


def register_sampler(name: str, steps: int, grid: str = "uniform", t_min: float = 1e-3):
    """Decorator adding a sampler function to :data:`SAMPLERS` with its defaults (``fn.defaults``).

    The function must have the signature
    ``fn(model: MaskedEpsModel, x (n, D), ts (N+1,), *, generator, callback, progress, **options)``
    and return the final ``x (n, D)``; it must call ``model.impose`` after every update and
    evaluate the network only through ``model.eps`` / ``model.denoised`` (which count NFE).
    """

    def decorate(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        if name in SAMPLERS:
            raise ValueError(f"a sampler named {name!r} is already registered")
        fn.defaults = SamplerDefaults(steps=steps, grid=grid, t_min=t_min)  # type: ignore[attr-defined]
        fn.sampler_name = name  # type: ignore[attr-defined]
        SAMPLERS[name] = fn
        return fn

    return decorate


def _report(callback: Callback | None, i: int, t: float, x: Tensor, denoised: Tensor | None) -> None:
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "denoised": denoised})


# ----------------------------------------------------------------------------- SDE samplers
def _reverse_em_step(
    model: MaskedEpsModel,
    x: Tensor,
    t: float,
    h: float,
    add_noise: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """One Euler-Maruyama step of the reverse SDE from ``t`` to ``t - h``; returns (x, eps)."""
    eps = model.eps(x, t)
    _, sigma = _coefficients(model.sde, t)
    beta = float(model.sde.beta(torch.tensor(t, dtype=torch.float64)))
    # reverse drift: -(f - g^2 score) = 1/2 beta x + beta score, with score = -eps / sigma
    x = x + h * (0.5 * beta * x - (beta / sigma) * eps)
    if add_noise:
        x = x + math.sqrt(beta * h) * _noise(x, generator)
    return model.impose(x), eps


@register_sampler("euler_maruyama", steps=250, grid="uniform", t_min=0.0)
def sample_euler_maruyama(
    model: MaskedEpsModel,
    x: Tensor,
    ts: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = False,
) -> Tensor:
    """Euler-Maruyama on the reverse SDE (Algorithm 2). NFE = N = len(ts) - 1.

    The network is evaluated at ``ts[0..N-1]``; the last step adds no noise (it returns the mean),
    so with the default grid (T to 0 in 250 equal steps) the last evaluation is at t = 1/250.
    """
    n_steps = len(ts) - 1
    for i in _steps(n_steps, progress, "euler_maruyama"):
        t, t_next = float(ts[i]), float(ts[i + 1])
        x, eps = _reverse_em_step(model, x, t, t - t_next, i < n_steps - 1, generator)
        _report(callback, i, t_next, x, None)
    return x


@register_sampler("repaint", steps=250, grid="uniform", t_min=0.0)
def sample_repaint(
    model: MaskedEpsModel,
    x: Tensor,
    ts: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    jump_length: int = 10,
    resamplings: int = 10,
    renoise: str = "euler_maruyama",
) -> Tensor:
    """Euler-Maruyama with RePaint resampling (the paper's default sampler).

    Walks :func:`repaint_schedule` over the grid ``ts`` (N = len(ts) - 1 steps; index k is grid
    time ``ts[N - 1 - k]``, index -1 is ``ts[N]``). A reverse step is one Euler-Maruyama step of
    the reverse SDE (noise-free only for the very last step, at ``ts[N-1]``); a forward step
    re-noises the unknown dims back to the previous grid time:

    - ``renoise="euler_maruyama"`` (default, as the reference code): one Euler-Maruyama step of the
      forward SDE, ``x + f(x, s) h + g(s) sqrt(h) z`` with s the current time and h the step;
    - ``renoise="exact"``: the exact VP transition kernel from s to s + h,
      ``a x + sqrt(1 - a^2) z`` with a = alpha(s + h) / alpha(s).

    NFE = the number of reverse steps: 2,410 for 250 steps, ``jump_length=10``, ``resamplings=10``.
    """
    if renoise not in ("euler_maruyama", "exact"):
        raise ValueError(f"renoise must be 'euler_maruyama' or 'exact', got {renoise!r}")
    n_steps = len(ts) - 1
    walk = repaint_schedule(n_steps, jump_length, resamplings)
    sde = model.sde
    for i in _steps(len(walk) - 1, progress, "repaint"):
        k, k_next = walk[i], walk[i + 1]
        p = n_steps - 1 - k  # grid position of the current state
        if k_next < k:  # reverse step from ts[p] to ts[p + 1]
            t, t_next = float(ts[p]), float(ts[p + 1])
            x, _ = _reverse_em_step(model, x, t, t - t_next, k_next > -1, generator)
        else:  # forward re-noising from ts[p] up to ts[p - 1]
            s, t_next = float(ts[p]), float(ts[p - 1])
            if renoise == "exact":
                a, std = (float(v) for v in sde.transition(torch.tensor(s, dtype=torch.float64), t_next))
                x = a * x + std * _noise(x, generator)
            else:
                h = t_next - s
                beta = float(sde.beta(torch.tensor(s, dtype=torch.float64)))
                x = x - 0.5 * beta * h * x + math.sqrt(beta * h) * _noise(x, generator)
            x = model.impose(x)
        _report(callback, i, t_next, x, None)
    return x


# ----------------------------------------------------------------------------- ODE samplers
@register_sampler("euler", steps=50, grid="uniform", t_min=1e-3)
def sample_euler(
    model: MaskedEpsModel,
    x: Tensor,
    ts: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = False,
) -> Tensor:
    """Euler on the probability-flow ODE. NFE = N.

    The ODE is integrated in the scaled variables y = x / alpha, s = sigma / alpha, where it reads
    dy/ds = eps(x, t) (Karras et al.; k-diffusion's view of a VP model), so this Euler step
    coincides with DDIM at eta = 0 on the same grid.
    """
    sde = model.sde
    for i in _steps(len(ts) - 1, progress, "euler"):
        t, t_next = float(ts[i]), float(ts[i + 1])
        (alpha, sigma), (alpha_next, sigma_next) = _coefficients(sde, t), _coefficients(sde, t_next)
        eps = model.eps(x, t)
        x = model.impose(alpha_next * (x / alpha + (sigma_next / alpha_next - sigma / alpha) * eps))
        _report(callback, i, t_next, x, None)
    return x


@register_sampler("heun", steps=25, grid="uniform", t_min=1e-3)
def sample_heun(
    model: MaskedEpsModel,
    x: Tensor,
    ts: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = False,
) -> Tensor:
    """Heun (trapezoidal predictor-corrector) on the probability-flow ODE in y = x/alpha,
    s = sigma/alpha (see :func:`sample_euler`). NFE = 2N, or 2N - 1 when the grid ends at t = 0
    (the last step is then an Euler step, as in Karras et al.)."""
    sde = model.sde
    for i in _steps(len(ts) - 1, progress, "heun"):
        t, t_next = float(ts[i]), float(ts[i + 1])
        (alpha, sigma), (alpha_next, sigma_next) = _coefficients(sde, t), _coefficients(sde, t_next)
        ds = sigma_next / alpha_next - sigma / alpha
        y = x / alpha
        eps = model.eps(x, t)
        x_next = model.impose(alpha_next * (y + ds * eps))
        if t_next > 0:
            eps_next = model.eps(x_next, t_next)
            x_next = model.impose(alpha_next * (y + ds * 0.5 * (eps + eps_next)))
        x = x_next
        _report(callback, i, t_next, x, None)
    return x


@register_sampler("ddim", steps=50, grid="uniform", t_min=1e-3)
def sample_ddim(
    model: MaskedEpsModel,
    x: Tensor,
    ts: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    eta: float = 0.0,
) -> Tensor:
    """DDIM (Song et al. 2021) on the VP process. NFE = N.

    From t to t' < t with x0 = (x - sigma eps) / alpha:
    ``x' = alpha' x0 + sqrt(sigma'^2 - c^2) eps + c z``, c = eta sigma'/sigma sqrt(1 - alpha^2/alpha'^2).
    ``eta=0`` is deterministic (the probability-flow ODE's Euler step in x/alpha); ``eta=1`` is
    the ancestral sampler of DDPM.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    sde = model.sde
    for i in _steps(len(ts) - 1, progress, "ddim"):
        t, t_next = float(ts[i]), float(ts[i + 1])
        (alpha, sigma), (alpha_next, sigma_next) = _coefficients(sde, t), _coefficients(sde, t_next)
        eps = model.eps(x, t)
        x0 = (x - sigma * eps) / alpha
        c = eta * (sigma_next / sigma) * math.sqrt(max(0.0, 1.0 - (alpha / alpha_next) ** 2))
        c = min(c, sigma_next)
        x = alpha_next * x0 + math.sqrt(max(0.0, sigma_next**2 - c**2)) * eps
        if c > 0:
            x = x + c * _noise(x, generator)
        x = model.impose(x)
        _report(callback, i, t_next, x, model.impose(x0))
    return x


@register_sampler("dpm_solver++", steps=25, grid="logsnr", t_min=1e-3)
def sample_dpm_solver_pp(
    model: MaskedEpsModel,
    x: Tensor,
    ts: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    lower_order_final: bool = True,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022), multistep, data prediction. NFE = N.

    With lambda = log(alpha / sigma), h = lambda' - lambda and the data prediction D = x0(x, t):
    ``x' = (sigma'/sigma) x - alpha' (exp(-h) - 1) D_hat``, where D_hat = D for the first step and
    ``(1 + 1/(2r)) D - 1/(2r) D_prev`` (r = h_prev / h) afterwards. With ``lower_order_final`` the
    last step is first order when N < 15 (more stable at few steps). The grid must end at t > 0.
    """
    sde = model.sde
    n_steps = len(ts) - 1
    if float(ts[-1]) <= 0:
        raise ValueError("dpm_solver++ needs a grid that ends at t > 0")
    d_prev, h_prev = None, None
    for i in _steps(n_steps, progress, "dpm_solver++"):
        t, t_next = float(ts[i]), float(ts[i + 1])
        (alpha, sigma), (alpha_next, sigma_next) = _coefficients(sde, t), _coefficients(sde, t_next)
        h = math.log(alpha_next / sigma_next) - math.log(alpha / sigma)
        d = model.denoised(x, t)
        first_order = d_prev is None or (lower_order_final and n_steps < 15 and i == n_steps - 1)
        if first_order:
            d_hat = d
        else:
            r = h_prev / h
            d_hat = (1.0 + 0.5 / r) * d - (0.5 / r) * d_prev
        x = model.impose((sigma_next / sigma) * x - alpha_next * math.expm1(-h) * d_hat)
        d_prev, h_prev = d, h
        _report(callback, i, t_next, x, d)
    return x


# ----------------------------------------------------------------------------- entry point
@dataclass
class SampleResult:
    """What :func:`generate_latents` returns.

    Attributes:
        latents: ``(n, D)`` generated latents; the known dims are bit-identical to ``known``.
        nfe: network evaluations per sample (final denoising included).
        sampler: the sampler's name.
        steps: the number of grid steps N.
        given: bool ``(n, M)``, the conditioning mask used.
    """

    latents: Tensor
    nfe: int
    sampler: str
    steps: int
    given: Tensor


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
        grid, t_min: override the sampler's time grid kind and last time (see :func:`time_grid`).
        callback: called after every update with ``{"i", "t", "x", "denoised"}``.
        device, dtype: where to sample (default device: ``known``'s, else the model's, else CPU).
        **options: sampler options (``eta`` for ddim; ``jump_length``, ``resamplings``, ``renoise``
            for repaint; ``lower_order_final`` for dpm_solver++).

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
    known = _resolve_known(known, given, n, layout, device, dtype)
    ts = time_grid(
        sde,
        steps,
        kind=defaults.grid if grid is None else grid,
        t_min=defaults.t_min if t_min is None else float(t_min),
    )
    model = MaskedEpsModel(eps_model, sde, layout, given, known)
    with torch.no_grad():
        # the prior N(0, I), drawn on the generator's device
        x = model.impose(_noise(torch.empty(n, layout.total_dim, device=device, dtype=dtype), generator))
        x = fn(model, x, ts, generator=generator, callback=callback, progress=progress, **options)
        if denoise_final and float(ts[-1]) > 0:
            x = model.denoised(x, float(ts[-1]))
        x = model.impose(x)
    return SampleResult(latents=x, nfe=model.nfe, sampler=sampler, steps=steps, given=given)
