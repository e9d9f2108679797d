"""The masked multi-time denoising loss (Algorithm 1 of the paper, noise prediction).

For a batch of clean concatenated latents ``z (B, D)``, per sample:

- draw the conditioning set A2 from nu(d) (:func:`~mmlatent.diffusion.masking.sample_given_mask`),
  A1 = the other modalities;
- draw t ~ U(eps, T) and noise ~ N(0, I) ``(D,)``;
- R = alpha(t) z + sigma(t) noise on A1's dims, R = z on A2's dims;
- tau ``(M,)``: t for A1, 0 for A2;
- loss_b = Omega * sum over A1's dims of (eps_hat - noise)^2, Omega = 1 + dim(A2) / dim(A1)
  (= D / dim(A1)).

The batch loss is the mean of loss_b over the batch (sum over dims, mean over samples). The
network output on A2's dims never enters the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .masking import LatentLayout, sample_given_mask
from .sde import VPSDE

__all__ = ["MultitimeLossTerms", "masked_multitime_loss", "masked_multitime_loss_terms"]

EpsModel = Callable[[Tensor, Tensor], Tensor]


@dataclass
class MultitimeLossTerms:
    """Everything one evaluation of the loss drew and computed (batch size B, M modalities).

    Attributes:
        loss: scalar, ``per_sample.mean()`` (differentiable).
        per_sample: ``(B,)`` Omega-weighted squared error summed over the diffused dims.
        given: bool ``(B, M)``, the conditioning sets A2.
        t: ``(B,)`` diffusion times.
        omega: ``(B,)`` the weights 1 + dim(A2) / dim(A1).
        tau: ``(B, M)`` the multi-time vectors fed to the network.
    """

    loss: Tensor
    per_sample: Tensor
    given: Tensor
    t: Tensor
    omega: Tensor
    tau: Tensor


def masked_multitime_loss_terms(
    net: EpsModel,
    z: Tensor,
    sde: VPSDE,
    layout: LatentLayout,
    d: float = 0.5,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
    given: Tensor | None = None,
    *,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    per_batch: bool = False,
) -> MultitimeLossTerms:
    """The loss of Algorithm 1 with its per-sample terms; see the module docstring.

    Args:
        net: ``net(x (B, D), tau (B, M)) -> eps_hat (B, D)``.
        z: clean (standardised) latents ``(B, D)``.
        sde: the forward process.
        layout: the modality layout of ``z``'s last dim.
        d: probability of a conditional step (ignored when ``given`` is passed).
        eps: smallest training time; t ~ U(eps, T).
        generator: torch generator for the masks, times and noise (on ``z``'s device).
        given: optional fixed conditioning sets, bool ``(B, M)`` or ``(M,)``; drawn from nu(d)
            when None. A row must not be all True (nothing would be diffused).
        t: optional fixed times ``(B,)``; noise: optional fixed noise ``(B, D)``.
        per_batch: draw one conditioning set for the whole batch instead of one per sample.
    """
    if z.ndim != 2 or z.shape[-1] != layout.total_dim:
        raise ValueError(f"z must be (B, {layout.total_dim}), got {tuple(z.shape)}")
    batch, device, dtype = z.shape[0], z.device, z.dtype
    if given is None:
        given = sample_given_mask(
            batch, layout.num_modalities, d, generator=generator, device=device, per_batch=per_batch
        )
    else:
        given = given.to(device=device, dtype=torch.bool).expand(batch, layout.num_modalities)
        if bool(given.all(-1).any()):
            raise ValueError("a conditioning set covers every modality: nothing is diffused")
    if t is None:
        t = torch.rand(batch, generator=generator, device=device, dtype=dtype)
        t = eps + (sde.T - eps) * t
    if noise is None:
        noise = torch.randn(z.shape, generator=generator, device=device, dtype=dtype)

    given_dims = layout.modality_mask(given)  # (B, D) bool
    alpha = sde.alpha(t)[:, None]
    sigma = sde.sigma(t)[:, None]
    x = torch.where(given_dims, z, alpha * z + sigma * noise)
    tau = torch.where(given, torch.zeros((), dtype=dtype, device=device), t[:, None])

    eps_hat = net(x, tau)
    residual = torch.where(given_dims, torch.zeros((), dtype=dtype, device=device), eps_hat - noise)
    diffused_dims = layout.total_dim - layout.given_dims(given).to(dtype)
    omega = layout.total_dim / diffused_dims  # = 1 + dim(A2) / dim(A1)
    per_sample = omega * residual.square().sum(-1)
    return MultitimeLossTerms(
        loss=per_sample.mean(), per_sample=per_sample, given=given, t=t, omega=omega, tau=tau
    )


def masked_multitime_loss(
    net: EpsModel,
    z: Tensor,
    sde: VPSDE,
    layout: LatentLayout,
    d: float = 0.5,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
    given: Tensor | None = None,
    **kwargs,
) -> Tensor:
    """Scalar masked multi-time loss of a batch ``z (B, D)`` (see :func:`masked_multitime_loss_terms`)."""
    return masked_multitime_loss_terms(
        net, z, sde, layout, d=d, eps=eps, generator=generator, given=given, **kwargs
    ).loss
