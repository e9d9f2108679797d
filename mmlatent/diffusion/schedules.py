"""Time discretisations used by the samplers.

- :func:`time_grid`: a decreasing grid of diffusion times ``(N + 1,)`` from T to ``t_min``,
  equally spaced in t, in log-SNR, or in the noise level sigma/alpha with Karras et al.'s rho.
- :func:`repaint_schedule`: the RePaint walk over time indices with jumps back up
  (Lugmayr et al. 2022), the paper's default resampling schedule.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .sde import VPSDE

__all__ = ["repaint_nfe", "repaint_schedule", "time_grid"]


def time_grid(
    sde: VPSDE,
    steps: int,
    kind: str = "uniform",
    t_min: float = 1e-3,
    t_max: float | None = None,
    rho: float = 7.0,
) -> Tensor:
    """Decreasing time grid ``(steps + 1,)`` float64 from ``t_max`` (default T) to ``t_min``.

    Kinds: ``"uniform"`` (equal steps in t), ``"logsnr"`` (equal steps in log(alpha^2/sigma^2);
    needs t_min > 0), ``"karras"`` (Karras et al.'s rho-spacing of the noise level sigma/alpha).
    """
    if steps < 1:
        raise ValueError(f"need at least one step, got {steps}")
    t_max = sde.T if t_max is None else float(t_max)
    if not 0.0 <= t_min < t_max:
        raise ValueError(f"need 0 <= t_min < t_max, got {t_min}, {t_max}")
    u = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    hi, lo = torch.tensor(t_max, dtype=torch.float64), torch.tensor(t_min, dtype=torch.float64)
    if kind == "uniform":
        ts = hi + u * (lo - hi)
    elif kind == "logsnr":
        if t_min <= 0:
            raise ValueError("the logsnr grid needs t_min > 0")
        lam_hi, lam_lo = sde.log_snr(hi), sde.log_snr(lo)
        ts = sde.t_from_log_snr(lam_hi + u * (lam_lo - lam_hi))
    elif kind == "karras":
        s_hi = (sde.sigma(hi) / sde.alpha(hi)) ** (1.0 / rho)
        s_lo = (sde.sigma(lo) / sde.alpha(lo)) ** (1.0 / rho)
        ts = sde.t_from_sigma_ratio((s_hi + u * (s_lo - s_hi)) ** rho)
    else:
        raise ValueError(f"unknown time grid {kind!r}; choose uniform, logsnr or karras")
    ts[0], ts[-1] = t_max, t_min  # exact end points
    return ts


def repaint_schedule(steps: int = 250, jump_length: int = 10, resamplings: int = 10) -> list[int]:
    """The RePaint walk over time indices (Lugmayr et al. 2022, "get_schedule_jump").

    Indices run from ``steps - 1`` (time T, the prior) down to ``-1`` (the end of the grid).
    Walking down, on reaching each index in {0, j, 2j, ...} below ``steps - j`` the walk jumps back
    up ``j`` indices and walks down again, ``resamplings - 1`` times per such index.
    A decrease is a reverse step (one network evaluation), an increase a forward re-noising step.
    For 250/10/10: 2,410 reverse steps and 2,160 forward steps.
    """
    if steps < 1 or jump_length < 1 or resamplings < 1:
        raise ValueError("repaint needs steps, jump_length and resamplings >= 1")
    jumps_left = {k: resamplings - 1 for k in range(0, steps - jump_length, jump_length)}
    k = steps - 1
    walk = [k]
    while k >= 0:
        k -= 1
        walk.append(k)
        if jumps_left.get(k, 0) > 0:
            jumps_left[k] -= 1
            for _ in range(jump_length):
                k += 1
                walk.append(k)
    return walk


def repaint_nfe(steps: int = 250, jump_length: int = 10, resamplings: int = 10) -> int:
    """Reverse steps (= network evaluations) of :func:`repaint_schedule`, without walking it:
    ``steps + len(range(0, steps - jump_length, jump_length)) * (resamplings - 1) * jump_length``.
    2,410 for 250/10/10; 18 for the few-step setting 10/2/2."""
    if steps < 1 or jump_length < 1 or resamplings < 1:
        raise ValueError("repaint needs steps, jump_length and resamplings >= 1")
    return steps + len(range(0, steps - jump_length, jump_length)) * (resamplings - 1) * jump_length
