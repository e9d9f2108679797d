"""The steps the samplers are made of, each written once (notation: :mod:`mmlatent.diffusion`).

- :func:`pf_step`: the probability-flow ODE step in the scaled variables ``y = x / alpha``,
  ``s = sigma / alpha``, where the ODE reads ``dy/ds = eps_hat`` (Karras et al.; k-diffusion's view
  of a VP model): ``x' = alpha' (y + (s' - s) slope)`` (Euler: slope = eps_hat; Heun: the mean of
  two slopes). Used by euler, heun, churn and distillation.
- :func:`ancestral_step`: one DDPM-ancestral step, a draw from the Gaussian posterior
  q(x_t' | x_t, x0_hat). Used by ddpm, pc and RePaint's reverse step.
- :func:`reverse_em_step`: one Euler-Maruyama step of the reverse SDE. Used by euler_maruyama, pc
  and RePaint.
- :func:`renoise`: forward re-noising of the generated dims from ``t`` up to ``t_up > t`` (exact VP
  kernel or one Euler-Maruyama step of the forward SDE). Used by RePaint and churn.
- :func:`langevin_step`: one Langevin corrector step. Used by pc.

Each takes a denoiser (:mod:`mmlatent.diffusion.denoiser`) and scalar times, and returns the new
state with the given dims re-imposed (except :func:`pf_step` and :func:`renoise`, which are pure
arithmetic on the state).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from mmlatent.progress import progress_bar

from .denoiser import draw_noise
from .sde import VPSDE

__all__ = ["ancestral_step", "langevin_step", "pf_step", "renoise", "reverse_em_step"]

Callback = Callable[[dict[str, Any]], None]
VARIANCES = ("posterior", "large")


def pf_step(y: Tensor, s: Any, s_next: Any, alpha_next: Any, slope: Tensor) -> Tensor:
    """Probability-flow step ``alpha' (y + (s' - s) slope)`` from noise level ``s`` to ``s'``.

    ``y = x / alpha`` is the scaled state and ``slope`` an estimate of ``dy/ds`` (``eps_hat``);
    the coefficients are floats or per-row tensors broadcastable against ``y``.
    """
    return alpha_next * (y + (s_next - s) * slope)


def reverse_em_step(denoiser: Any, x: Tensor, t: float, h: float, add_noise: bool,
                    generator: torch.Generator | None) -> Tensor:
    """One Euler-Maruyama step of the reverse SDE from ``t`` to ``t - h`` (one evaluation)."""
    eps_hat = denoiser.eps(x, t)
    sde: VPSDE = denoiser.sde
    _, sigma = sde.coefficients(t)
    beta = float(sde.beta(torch.tensor(t, dtype=torch.float64)))
    # reverse drift: -(f - g^2 score) = 1/2 beta x + beta score, with score = -eps_hat / sigma
    x = x + h * (0.5 * beta * x - (beta / sigma) * eps_hat)
    if add_noise:
        x = x + math.sqrt(beta * h) * draw_noise(x, generator)
    return denoiser.impose(x)


def check_variance(variance: str) -> None:
    if variance not in VARIANCES:
        raise ValueError(f"variance must be 'posterior' or 'large', got {variance!r}")


def ancestral_step(denoiser: Any, x: Tensor, t: float, t_next: float, add_noise: bool,
                   generator: torch.Generator | None, variance: str = "posterior") -> Tensor:
    """One DDPM-ancestral step from ``t`` to ``t_next < t`` (one evaluation).

    With x0 = (x - sigma eps_hat) / alpha, a = alpha / alpha' and b^2 = 1 - a^2 (the forward kernel
    from t' to t), the posterior q(x' | x, x0) is Gaussian with
    ``mean = alpha' b^2 / sigma^2 x0 + a sigma'^2 / sigma^2 x`` and variance
    ``b^2 sigma'^2 / sigma^2`` (``variance="posterior"``) or ``b^2`` (``"large"``, Ho et al.'s
    other choice).
    """
    sde: VPSDE = denoiser.sde
    eps_hat = denoiser.eps(x, t)
    t64, t_next64 = torch.tensor(t, dtype=torch.float64), torch.tensor(t_next, dtype=torch.float64)
    (_, sigma), (alpha_next, sigma_next) = sde.coefficients(t), sde.coefficients(t_next)
    a, b = (float(v) for v in sde.transition(t_next64, t64))
    x0 = sde.denoise(x, eps_hat, t64)
    x = (alpha_next * b * b / sigma**2) * x0 + (a * sigma_next**2 / sigma**2) * x
    if add_noise:
        std = b * sigma_next / sigma if variance == "posterior" else b
        if std > 0:
            x = x + std * draw_noise(x, generator)
    return denoiser.impose(x)


def renoise(sde: VPSDE, x: Tensor, t: float, t_up: float, generator: torch.Generator | None,
            kind: str = "exact", scale: float = 1.0) -> Tensor:
    """Forward re-noising from ``t`` up to ``t_up >= t`` (the caller re-imposes the given dims).

    - ``kind="exact"``: the exact VP transition kernel, ``a x + scale sqrt(1 - a^2) z`` with
      a = alpha(t_up) / alpha(t);
    - ``kind="euler_maruyama"``: one Euler-Maruyama step of the forward SDE,
      ``x + f(x, t) h + g(t) sqrt(h) z`` with h = t_up - t (as the reference code's RePaint).

    ``scale`` multiplies the added noise (churn's ``s_noise``).
    """
    if kind == "exact":
        times = torch.tensor([t, t_up], dtype=torch.float64)  # both in float64
        a, std = (float(v) for v in sde.transition(times[0], times[1]))
        return a * x + (std * scale) * draw_noise(x, generator)
    h = t_up - t
    beta = float(sde.beta(torch.tensor(t, dtype=torch.float64)))
    return x - 0.5 * beta * h * x + (math.sqrt(beta * h) * scale) * draw_noise(x, generator)


def langevin_step(denoiser: Any, x: Tensor, t: float, snr: float, generator: torch.Generator | None) -> Tensor:
    """One Langevin corrector step at time ``t`` (Song et al. 2021, Algorithm 5).

    ``x + e score + sqrt(2 e) z`` with ``score = -eps_hat / sigma`` (:meth:`VPSDE.score_from_eps`)
    and the step ``e = 2 (snr ||z|| / ||score||)^2``; as in Song et al.'s code the norms are batch
    averages (here the root mean squares over the generated entries of the whole batch), so that a
    sample sitting at a mode (small score) does not get a huge step.
    """
    score = denoiser.sde.score_from_eps(denoiser.eps(x, t), torch.tensor(t, dtype=torch.float64))
    z = draw_noise(x, generator)
    if denoiser.has_known:
        generated = ~denoiser.given_dim_mask
        grad_sq, noise_sq = score.square()[generated].mean(), z.square()[generated].mean()
    else:
        grad_sq, noise_sq = score.square().mean(), z.square().mean()
    step = 2.0 * snr**2 * float(noise_sq) / max(float(grad_sq), 1e-24)
    return denoiser.impose(x + step * score + math.sqrt(2.0 * step) * z)


def progress_range(n: int, progress: bool, desc: str):
    """``range(n)``, with a progress bar when ``progress`` (:func:`mmlatent.progress.progress_bar`)."""
    return progress_bar(range(n), disable=not progress, desc=desc, leave=False)


def report(callback: Callback | None, i: int, t: float, x: Tensor, denoised: Tensor | None) -> None:
    """Call ``callback({"i", "t", "x", "denoised"})`` after update ``i`` (a no-op without one)."""
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "denoised": denoised})
