"""The variance-preserving SDE (VP-SDE) of the method (shared/DESIGN.md section 2).

Forward process on a latent ``R`` of any shape::

    dR = -1/2 beta(t) R dt + sqrt(beta(t)) dW,      beta(t) = beta_min + t (beta_max - beta_min)

with the Gaussian perturbation kernel ``R_t | R_0 ~ N(alpha(t) R_0, sigma(t)^2 I)``::

    alpha(t) = exp(-1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min),   sigma(t)^2 = 1 - alpha(t)^2

and the stationary law N(0, I).

Shapes. Every function of time is elementwise: ``t`` may be a Python float, a 0-d tensor, a
per-sample vector ``(B,)``, a per-modality matrix, or per-dimension times ``(B, D)`` (the masked
multi-time process gives every latent dimension its own time). Where a function takes both a
state ``x`` and a time ``t`` (``marginal_prob``, ``drift``, ``sde``), ``t`` is aligned with the
*leading* dimensions of ``x`` and trailing singleton dimensions are appended as needed
(:func:`append_dims`): ``x (B, D)`` with ``t (B,)`` means one time per sample, with ``t (B, D)``
one time per dimension, with a scalar one time for everything. Nothing assumes images (no
hard-coded 4-D broadcasting).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["VPSDE", "append_dims"]


def append_dims(t: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dimensions to ``t`` until it has ``ndim`` dimensions.

    ``t (B,)`` with ``ndim=2`` becomes ``(B, 1)``; a 0-d tensor or a tensor that already has
    ``ndim`` dimensions is returned unchanged.
    """
    missing = ndim - t.ndim
    if missing < 0:
        raise ValueError(f"time tensor has {t.ndim} dims, more than the state's {ndim}")
    if missing == 0 or t.ndim == 0:
        return t
    return t.reshape(*t.shape, *([1] * missing))


class VPSDE:
    """Variance-preserving SDE with a linear noise schedule.

    Args:
        beta_min: beta(0).
        beta_max: beta(1). ``beta_max == beta_min`` (constant schedule) is allowed.
        T: the end time of the forward process (the prior is taken at ``T``).

    All time arguments may be floats or tensors of any shape (see the module docstring). Float
    arguments give 0-d float32 tensors; tensor arguments keep their dtype and device.
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0):
        if not (beta_min > 0 and beta_max >= beta_min):
            raise ValueError(f"need 0 < beta_min <= beta_max, got {beta_min}, {beta_max}")
        if not T > 0:
            raise ValueError(f"need T > 0, got {T}")
        self.beta_min = float(beta_min)
        self.beta_max = float(beta_max)
        self.T = float(T)

    def __repr__(self) -> str:
        return f"VPSDE(beta_min={self.beta_min}, beta_max={self.beta_max}, T={self.T})"

    # ------------------------------------------------------------------ schedule
    @staticmethod
    def _as_tensor(t: Tensor | float) -> Tensor:
        if isinstance(t, Tensor):
            return t if t.is_floating_point() else t.float()
        return torch.tensor(float(t))

    def beta(self, t: Tensor | float) -> Tensor:
        """beta(t) = beta_min + t (beta_max - beta_min), elementwise; same shape as ``t``."""
        t = self._as_tensor(t)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_alpha(self, t: Tensor | float) -> Tensor:
        """log alpha(t) = -1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min; shape of ``t``."""
        t = self._as_tensor(t)
        return -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def alpha(self, t: Tensor | float) -> Tensor:
        """Mean coefficient of the perturbation kernel, alpha(t) in (0, 1]; shape of ``t``."""
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: Tensor | float) -> Tensor:
        """Standard deviation of the perturbation kernel, sqrt(1 - alpha(t)^2); shape of ``t``.

        Computed as ``sqrt(-expm1(2 log alpha))``: accurate for tiny ``t`` and exactly 0 at t = 0.
        """
        return torch.sqrt(-torch.expm1(2.0 * self.log_alpha(t)))

    def log_snr(self, t: Tensor | float) -> Tensor:
        """Log signal-to-noise ratio lambda(t) = log(alpha^2 / sigma^2); +inf at t = 0."""
        two_log_alpha = 2.0 * self.log_alpha(t)
        return two_log_alpha - torch.log(-torch.expm1(two_log_alpha))

    def t_from_log_alpha(self, log_alpha: Tensor | float) -> Tensor:
        """Inverse of :meth:`log_alpha` (``log_alpha <= 0``): the t >= 0 with that mean coefficient.

        Solves ``a t^2 + b t + c = 0`` with a = (beta_max - beta_min)/4, b = beta_min/2,
        c = log_alpha, in the cancellation-free form t = 2(-c) / (b + sqrt(b^2 - 4ac)).
        """
        c = self._as_tensor(log_alpha)
        a = 0.25 * (self.beta_max - self.beta_min)
        b = 0.5 * self.beta_min
        return (-2.0 * c) / (b + torch.sqrt(b * b - 4.0 * a * c))

    def t_from_log_snr(self, log_snr: Tensor | float) -> Tensor:
        """Inverse of :meth:`log_snr`: the time with log(alpha^2/sigma^2) = ``log_snr``.

        alpha^2 = sigmoid(lambda), so log alpha = 1/2 logsigmoid(lambda).
        """
        lam = self._as_tensor(log_snr)
        return self.t_from_log_alpha(0.5 * torch.nn.functional.logsigmoid(lam))

    def t_from_sigma_ratio(self, ratio: Tensor | float) -> Tensor:
        """Inverse of ``sigma(t) / alpha(t)`` (the variance-exploding noise level, >= 0)."""
        ratio = self._as_tensor(ratio)
        # sigma/alpha = s  <=>  alpha^2 = 1 / (1 + s^2)
        return self.t_from_log_alpha(-0.5 * torch.log1p(ratio * ratio))

    # ------------------------------------------------------------------ process
    def marginal_prob(self, x: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
        """Mean and std of ``R_t | R_0 = x``.

        Args:
            x: clean data, any shape ``(B, ...)``.
            t: times aligned with the leading dims of ``x`` (scalar, ``(B,)``, ``(B, D)``, ...).

        Returns:
            ``(mean, std)``: ``mean`` has the shape of ``x``; ``std`` has the shape of ``t``
            with trailing singleton dims appended (broadcastable against ``x``).
        """
        t = append_dims(self._as_tensor(t).to(x.device), x.ndim)
        return self.alpha(t) * x, self.sigma(t)

    def perturb(self, x: Tensor, t: Tensor | float, noise: Tensor) -> Tensor:
        """Sample of ``R_t | R_0 = x``: ``alpha(t) x + sigma(t) noise``; shape and dtype of ``x``.

        alpha(t) and sigma(t) are computed in ``t``'s dtype (e.g. float64 times) and applied in
        ``x``'s dtype. Used by the loss and by distillation.
        """
        t = append_dims(self._as_tensor(t).to(x.device), x.ndim)
        return self.alpha(t).to(x.dtype) * x + self.sigma(t).to(x.dtype) * noise

    def drift(self, x: Tensor, t: Tensor | float) -> Tensor:
        """Forward drift f(x, t) = -1/2 beta(t) x; shape of ``x``."""
        t = append_dims(self._as_tensor(t).to(x.device), x.ndim)
        return -0.5 * self.beta(t) * x

    def diffusion(self, t: Tensor | float) -> Tensor:
        """Forward diffusion coefficient g(t) = sqrt(beta(t)); shape of ``t``."""
        return torch.sqrt(self.beta(t))

    def sde(self, x: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
        """``(drift, diffusion)`` like score_sde's ``SDE.sde``; diffusion is broadcastable to x."""
        t = append_dims(self._as_tensor(t).to(x.device), x.ndim)
        return self.drift(x, t), self.diffusion(t)

    def transition(self, t: Tensor | float, t_up: Tensor | float) -> tuple[Tensor, Tensor]:
        """Exact kernel from time ``t`` up to a later time ``t_up >= t``: ``R_t_up | R_t ~ N(a R_t, v I)``.

        Returns ``(a, sqrt(v))`` with a = alpha(t_up)/alpha(t) and v = 1 - a^2, elementwise over the
        broadcast shape of ``t`` and ``t_up``.
        """
        log_a = self.log_alpha(t_up) - self.log_alpha(t)
        return torch.exp(log_a), torch.sqrt(-torch.expm1(2.0 * log_a))

    def prior_sampling(
        self,
        shape: tuple[int, ...] | torch.Size,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """A sample of the prior N(0, I) of the given ``shape``."""
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)

    def prior_logp(self, z: Tensor) -> Tensor:
        """Log density of N(0, I) at ``z (B, ...)``, summed over all but the first dim: ``(B,)``."""
        n = z[0].numel()
        return -0.5 * n * math.log(2 * math.pi) - 0.5 * z.flatten(1).pow(2).sum(-1)

    def coefficients(self, t: float) -> tuple[float, float]:
        """``(alpha(t), sigma(t))`` of one time as Python floats, computed in float64 (samplers)."""
        tt = torch.tensor(float(t), dtype=torch.float64)
        return float(self.alpha(tt)), float(self.sigma(tt))

    # ------------------------------------------------------------------ eps <-> score <-> x0
    def score_from_eps(self, eps: Tensor, t: Tensor | float) -> Tensor:
        """Score ``-eps / sigma(t)`` from a noise prediction ``eps (B, ...)``; shape of ``eps``."""
        t = append_dims(self._as_tensor(t).to(eps.device), eps.ndim)
        return -eps / self.sigma(t)

    def denoise(self, x: Tensor, eps: Tensor, t: Tensor | float) -> Tensor:
        """Tweedie estimate of the clean latent ``(x - sigma(t) eps) / alpha(t)``; shape of x.

        The samplers pass a 0-d float64 ``t`` (coefficients in float64, applied in x's dtype).
        """
        t = append_dims(self._as_tensor(t).to(x.device), x.ndim)
        return (x - self.sigma(t) * eps) / self.alpha(t)

    def eps_from_denoised(self, x: Tensor, x0: Tensor, t: Tensor | float) -> Tensor:
        """The noise prediction consistent with a clean-latent estimate: ``(x - alpha(t) x0) / sigma(t)``."""
        t = append_dims(self._as_tensor(t).to(x.device), x.ndim)
        return (x - self.alpha(t) * x0) / self.sigma(t)
