"""The denoiser layer: what a sampler sees of the score network for one batch.

A :class:`Denoiser` holds the network, the conditioning of the batch (the given set A2 per row and
the clean latents of its dims) and the SDE, and turns a state ``x (n, D)`` at a scalar time ``t``
into the noise prediction ``eps_hat (n, D)`` (:meth:`~Denoiser.eps`) and the clean-latent estimate
``x0 = (x - sigma(t) eps_hat) / alpha(t)`` (:meth:`~Denoiser.denoised`, from
:meth:`VPSDE.denoise <mmlatent.diffusion.sde.VPSDE.denoise>`). It builds the multi-time vector
tau (t for the generated modalities A1, 0 for the given ones A2), re-imposes the given dims
(:meth:`~Denoiser.impose`) and is the ONE place where network evaluations are counted
(:meth:`~Denoiser.evaluate`: ``nfe`` and ``calls``).

Guidance and clipping are wrappers around a denoiser (:mod:`mmlatent.diffusion.guidance`); they
override :meth:`eps` and delegate everything else, so samplers take any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .masking import LatentLayout, multitime_vector
from .sde import VPSDE

__all__ = ["Denoiser", "DenoiserWrapper", "EpsModel", "draw_noise"]

#: ``eps_model(x (n, D), tau (n, M)) -> eps_hat (n, D)``: the score network (noise prediction).
EpsModel = Callable[[Tensor, Tensor], Tensor]


def draw_noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``like``, drawn on the generator's device."""
    device = generator.device if generator is not None else like.device
    z = torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype)
    return z.to(like.device)


class _DenoiserBase:
    """What every denoiser offers on top of :meth:`eps`: the clean-latent estimate."""

    sde: VPSDE

    def eps(self, x: Tensor, t: float) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def impose(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def denoised(self, x: Tensor, t: float, eps_hat: Tensor | None = None) -> Tensor:
        """Tweedie estimate of the clean latent ``x0 (n, D)`` at time ``t > 0``, given dims imposed
        (evaluates :meth:`eps` when ``eps_hat`` is not passed)."""
        if eps_hat is None:
            eps_hat = self.eps(x, t)
        return self.impose(self.sde.denoise(x, eps_hat, torch.tensor(float(t), dtype=torch.float64)))


class Denoiser(_DenoiserBase):
    """The score network for one batch with fixed conditioning.

    Args:
        eps_model: ``eps_model(x (n, D), tau (n, M)) -> eps_hat (n, D)``.
        sde: the forward process.
        layout: the modality layout.
        given: bool ``(n, M)``, the given set A2 of each row (True: conditioning modality).
        known: ``(n, D)`` clean conditioning latents (only the given dims are read), or None when
            nothing is given.

    Attributes:
        given_dim_mask: bool ``(n, D)``, the given-dims mask (reset after every update).
        has_known: whether any dim is given.
        nfe: network evaluations per sample so far (every guidance branch counted).
        calls: forward passes of ``eps_model``.
    """

    def __init__(self, eps_model: EpsModel, sde: VPSDE, layout: LatentLayout, given: Tensor,
                 known: Tensor | None):
        self.eps_model, self.sde, self.layout = eps_model, sde, layout
        self.given = given
        self.given_dim_mask = layout.modality_mask(given)
        self.has_known = bool(self.given_dim_mask.any())
        self.known = known
        self.nfe = 0
        self.calls = 0

    @property
    def known_dims(self) -> Tensor:
        """Alias of :attr:`given_dim_mask` (the name used before the engine split)."""
        return self.given_dim_mask

    def tau(self, t: float, like: Tensor) -> Tensor:
        """Multi-time vector ``(n, M)`` at time ``t``: t for generated modalities, 0 for given ones."""
        return multitime_vector(torch.tensor(t, dtype=like.dtype, device=like.device), self.given)

    def impose(self, x: Tensor) -> Tensor:
        """``x (n, D)`` with the given dims replaced by the clean conditioning values (exact copy)."""
        if not self.has_known:
            return x
        return torch.where(self.given_dim_mask, self.known, x)

    def evaluate(self, x: Tensor, tau: Tensor, nfe: int = 1) -> Tensor:
        """One forward pass of the network on ``x (k, D)``, ``tau (k, M)`` (k may stack several
        branches of the batch); counts one call and ``nfe`` evaluations per sample."""
        self.calls += 1
        self.nfe += nfe
        return self.eps_model(x, tau)

    def eps(self, x: Tensor, t: float) -> Tensor:
        """The plain (conditional or joint) noise prediction ``eps_hat (n, D)`` at time ``t``."""
        return self.evaluate(x, self.tau(t, x))


class DenoiserWrapper(_DenoiserBase):
    """Base of the wrappers: delegates every attribute it does not define to ``inner``."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (e.g. during copy): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def impose(self, x: Tensor) -> Tensor:
        return self.inner.impose(x)

    def eps(self, x: Tensor, t: float) -> Tensor:
        return self.inner.eps(x, t)
