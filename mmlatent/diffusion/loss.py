"""The masked multi-time denoising loss (Algorithm 1 of the paper, noise prediction).

For a batch of clean concatenated latents ``z (B, D)``, per sample:

- draw the conditioning set A2 from nu(d) (:func:`~mmlatent.diffusion.masking.sample_given_mask`),
  A1 = the other modalities;
- draw t ~ U(t_eps, T) and noise ~ N(0, I) ``(D,)``;
- R = alpha(t) z + sigma(t) noise on A1's dims, R = z on A2's dims;
- tau ``(M,)``: t for A1, 0 for A2;
- loss_b = Omega * sum over A1's dims of (eps_hat - noise)^2, Omega = 1 + dim(A2) / dim(A1)
  (= D / dim(A1)).

The batch loss is the mean of loss_b over the batch (sum over dims, mean over samples). The
network output on A2's dims never enters the loss.

Options (all off by default, and then the loss is bit-identical to the plain Algorithm 1):

- **Absent modalities** (``absent_prob``, ``absent``): a modality made *absent* in a sample has its
  tau entry set to T, its latent replaced by pure noise N(0, I), and no loss on its dims; it is in
  neither A1 nor A2. With ``absent_prob = p`` each *conditioning* modality (in A2) of each sample
  is made absent independently with probability p: the sample then shows the network exactly the
  "unconditional" branch that guidance evaluates (that modality absent, the other conditioning
  modalities clean, A1 diffused), so the branch is learned instead of extrapolated
  (:class:`~mmlatent.diffusion.guidance.Guided`). A1 is never touched, so something is
  always diffused, and joint steps are left as they are. Quickstart digits run, 12k steps, mean of
  2 training seeds, DDPM 20 steps: with p = 0.2 unguided joint / mean conditional coherence
  34.3 / 47.3% against 37.4 / 48.5% for p = 0 (within the seed-to-seed spread of 5 points), and
  guided (w = 1 per given modality) 63.1% mean conditional against 53% for the best weight on a
  p = 0 network, whose extrapolated branch wrecks the Frechet distances at w = 1. Drawing
  absences among all modalities (p = 0.1) cost 12 points of joint coherence. ``absent`` (a fixed bool ``(B, M)``
  mask) trains on samples with missing modalities: A2 is then drawn from nu(d) among each sample's
  present modalities (a sample with one present modality takes a joint step over it); with a fixed
  ``given`` or ``per_batch``, a row whose present modalities were all to be given becomes a joint
  step over them. Omega becomes D / dim(A1 minus the absent modalities).
- **Weighting of t** (``weighting``): the objective is E_{t ~ U(t_eps, T)} [w(t) loss_b(t)] with
  ``"none"`` (w = 1, the paper's), ``"likelihood"`` (w proportional to beta(t) / sigma(t)^2, the
  maximum-likelihood weighting of Song et al. 2021, scaled so that its mean over U(t_eps, T) is 1),
  ``"min_snr"`` (w = min(1, 5 / SNR(t)), Min-SNR-5 of Hang et al. 2023 for noise prediction) or
  ``"v"`` (w = 1 / alpha(t)^2 = 1 + 1 / SNR(t): the squared error of v = alpha eps - sigma z, since
  eps_hat - eps = alpha (v_hat - v); with a v-predicting network (``ScoreNet(prediction="v")``) this
  is the v-prediction objective of Salimans & Ho 2022; it weighs the noisy times where a given
  modality decides the class of the generated one, which the plain loss scales down by SNR).
- **Importance sampling of t** (``t_sampling``): ``"uniform"`` draws t ~ U(t_eps, T);
  ``"logsnr"`` draws t uniformly in log-SNR between lambda(T) and lambda(t_eps), i.e. with density
  q(t) = (beta / sigma^2) / Z, which for the VP-SDE is exactly the density proportional to the
  likelihood weighting (the reference code's importance sampling). Each sample's loss is
  multiplied by w(t) / ((T - t_eps) q(t)), so the objective stays the one chosen by ``weighting``
  (unbiased); with ``weighting="likelihood"`` that factor is exactly 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .denoiser import EpsModel
from .masking import LatentLayout, sample_given_mask
from .sde import VPSDE

__all__ = ["T_SAMPLING", "WEIGHTING", "MultitimeLossTerms", "masked_multitime_loss", "masked_multitime_loss_terms"]


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
        absent: bool ``(B, M)``, the absent modalities (all False by default).
        weight: ``(B,)`` the factor of each sample from ``weighting`` / ``t_sampling`` (ones by
            default); already included in ``per_sample``.
    """

    loss: Tensor
    per_sample: Tensor
    given: Tensor
    t: Tensor
    omega: Tensor
    tau: Tensor
    absent: Tensor | None = None
    weight: Tensor | None = None


def masked_multitime_loss_terms(
    net: EpsModel,
    z: Tensor,
    sde: VPSDE,
    layout: LatentLayout,
    d: float = 0.5,
    t_eps: float = 1e-3,
    generator: torch.Generator | None = None,
    given: Tensor | None = None,
    *,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    per_batch: bool = False,
    absent_prob: float = 0.0,
    absent: Tensor | None = None,
    t_sampling: str = "uniform",
    weighting: str = "none",
) -> MultitimeLossTerms:
    """The loss of Algorithm 1 with its per-sample terms; see the module docstring.

    Args:
        net: ``net(x (B, D), tau (B, M)) -> eps_hat (B, D)``.
        z: clean (standardised) latents ``(B, D)``.
        sde: the forward process.
        layout: the modality layout of ``z``'s last dim.
        d: probability of a conditional step (ignored when ``given`` is passed).
        t_eps: the smallest training time (the paper's epsilon); t ~ U(t_eps, T).
        generator: torch generator for the masks, times and noise (on ``z``'s device).
        given: optional fixed conditioning sets, bool ``(B, M)`` or ``(M,)``; drawn from nu(d)
            when None. A row must not be all True (nothing would be diffused).
        t: optional fixed times ``(B,)``; noise: optional fixed noise ``(B, D)``.
        per_batch: draw one conditioning set for the whole batch instead of one per sample.
        absent_prob: probability that a conditioning modality of a sample is made absent (see the
            module docstring).
        absent: optional bool ``(B, M)`` or ``(M,)`` of modalities absent for sure (missing data).
        t_sampling: ``"uniform"`` or ``"logsnr"`` (importance sampling; ignored when ``t`` is passed
            except for the reweighting).
        weighting: ``"none"``, ``"likelihood"``, ``"min_snr"`` or ``"v"``.
    """
    if z.ndim != 2 or z.shape[-1] != layout.total_dim:
        raise ValueError(f"z must be (B, {layout.total_dim}), got {tuple(z.shape)}")
    batch, device, dtype = z.shape[0], z.device, z.dtype
    if given is None:
        present = None if absent is None or per_batch else ~absent.to(device=device, dtype=torch.bool)
        given = sample_given_mask(
            batch, layout.num_modalities, d, generator=generator, device=device, per_batch=per_batch, present=present
        )
    else:
        given = given.to(device=device, dtype=torch.bool).expand(batch, layout.num_modalities)
        if bool(given.all(-1).any()):
            raise ValueError("a conditioning set covers every modality: nothing is diffused")
    if t_sampling not in T_SAMPLING:
        raise ValueError(f"t_sampling must be one of {T_SAMPLING}, got {t_sampling!r}")
    if weighting not in WEIGHTING:
        raise ValueError(f"weighting must be one of {WEIGHTING}, got {weighting!r}")
    if t is None:
        t = torch.rand(batch, generator=generator, device=device, dtype=dtype)
        if t_sampling == "logsnr":
            lam_hi, lam_lo = sde.log_snr(torch.tensor(t_eps, dtype=torch.float64)), sde.log_snr(
                torch.tensor(sde.T, dtype=torch.float64))
            t = sde.t_from_log_snr(lam_hi + (lam_lo - lam_hi) * t.to(torch.float64)).to(dtype).clamp(t_eps, sde.T)
        else:
            t = t_eps + (sde.T - t_eps) * t
    if noise is None:
        noise = torch.randn(z.shape, generator=generator, device=device, dtype=dtype)
    if absent_prob or absent is not None:
        absent, given = _draw_absent(given, absent, absent_prob, generator, device)
    else:
        absent = None

    given_dim_mask = layout.modality_mask(given)  # (B, D) bool
    x = torch.where(given_dim_mask, z, sde.perturb(z, t, noise))
    tau = torch.where(given, torch.zeros((), dtype=dtype, device=device), t[:, None])
    if absent is not None:  # absent modalities: pure noise at time T, no loss
        absent_dims = layout.modality_mask(absent)
        x = torch.where(absent_dims, noise, x)
        tau = torch.where(absent, torch.full((), sde.T, dtype=dtype, device=device), tau)
        excluded, excluded_modalities = given_dim_mask | absent_dims, given | absent
    else:
        excluded, excluded_modalities = given_dim_mask, given

    eps_hat = net(x, tau)
    residual = torch.where(excluded, torch.zeros((), dtype=dtype, device=device), eps_hat - noise)
    diffused_dims = layout.total_dim - layout.given_dims(excluded_modalities).to(dtype)
    omega = layout.total_dim / diffused_dims  # = 1 + dim(A2) / dim(A1) without absent modalities
    per_sample = omega * residual.square().sum(-1)
    weight = None
    if t_sampling != "uniform" or weighting != "none":
        weight = _t_weight(sde, t, t_eps, t_sampling, weighting).to(dtype)
        per_sample = weight * per_sample
    return MultitimeLossTerms(
        loss=per_sample.mean(), per_sample=per_sample, given=given, t=t, omega=omega, tau=tau,
        absent=absent, weight=weight,
    )


#: Choices of ``t_sampling`` and ``weighting`` (see the module docstring).
T_SAMPLING = ("uniform", "logsnr")
WEIGHTING = ("none", "likelihood", "min_snr", "v")
MIN_SNR_GAMMA = 5.0


def _t_weight(sde: VPSDE, t: Tensor, t_eps: float, t_sampling: str, weighting: str) -> Tensor:
    """Per-sample factor w(t) / ((T - t_eps) q(t)) (float64): the objective's weight over the
    density of t relative to U(t_eps, T)."""
    t64 = t.to(torch.float64)
    span = sde.T - t_eps
    # Z = integral of beta / sigma^2 over [t_eps, T] = lambda(t_eps) - lambda(T)
    lam = sde.log_snr(torch.tensor([t_eps, sde.T], dtype=torch.float64))
    z_norm = float(lam[0] - lam[1])
    ml = sde.beta(t64) / sde.sigma(t64).square()  # beta / sigma^2 = -d lambda / dt
    if weighting == "likelihood":
        w = ml * span / z_norm
    elif weighting == "min_snr":
        w = torch.clamp(MIN_SNR_GAMMA / torch.exp(sde.log_snr(t64)), max=1.0)
    elif weighting == "v":
        w = torch.exp(-2.0 * sde.log_alpha(t64))  # 1 / alpha^2 = 1 + 1 / SNR
    else:
        w = torch.ones_like(t64)
    if t_sampling == "logsnr":
        w = w * z_norm / (span * ml)  # 1 / ((T - t_eps) q(t)), q = ml / Z
    return w


def _draw_absent(
    given: Tensor,
    forced: Tensor | None,
    prob: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """Absent modalities ``(B, M)`` and the conditioning sets without them.

    A row whose *forced* absences leave no modality to diffuse becomes a joint step over its
    present modalities; then each remaining conditioning modality is absent with probability
    ``prob`` (the diffused ones never are, so something is always learned).
    """
    if not 0.0 <= prob < 1.0:
        raise ValueError(f"absent_prob must be in [0, 1), got {prob}")
    batch, m = given.shape
    if forced is None:
        absent = torch.zeros(batch, m, dtype=torch.bool, device=device)
    else:
        absent = forced.to(device=device, dtype=torch.bool).expand(batch, m).clone()
        if bool(absent.all(-1).any()):
            raise ValueError("a sample has every modality absent: nothing to learn from it")
        stuck = (given | absent).all(-1)  # nothing left to diffuse: diffuse every present modality
        given = torch.where(stuck[:, None], torch.zeros_like(given), given) & ~absent
    if prob > 0:
        draw_device = generator.device if generator is not None else device
        extra = (torch.rand(batch, m, generator=generator, device=draw_device) < prob).to(device)
        absent |= extra & given
    return absent, given & ~absent


def masked_multitime_loss(
    net: EpsModel,
    z: Tensor,
    sde: VPSDE,
    layout: LatentLayout,
    d: float = 0.5,
    t_eps: float = 1e-3,
    generator: torch.Generator | None = None,
    given: Tensor | None = None,
    **kwargs,
) -> Tensor:
    """Scalar masked multi-time loss of a batch ``z (B, D)`` (see :func:`masked_multitime_loss_terms`)."""
    return masked_multitime_loss_terms(
        net, z, sde, layout, d=d, t_eps=t_eps, generator=generator, given=given, **kwargs
    ).loss
