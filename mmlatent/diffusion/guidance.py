"""Guidance and clipping: small wrappers around a :class:`~mmlatent.diffusion.denoiser.Denoiser`.

- :class:`Guided`: guidance per conditioning modality (UniDiffuser-style), on the whole given set
  (``combine_guidance``), of joint generation by a co-generated modality (``joint_guidance``), in a
  time interval (``guidance_interval``); all branches in ONE forward pass, each counted as an NFE.
- :class:`Clipped`: a bound on the predicted clean latent x0 of the generated dims.

:func:`MaskedEpsModel` stacks them as :func:`~mmlatent.diffusion.sampling.generate_latents` does
(``Clipped(Guided(Denoiser(...)))``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from .denoiser import Denoiser, DenoiserWrapper, EpsModel, draw_noise
from .masking import LatentLayout
from .sde import VPSDE

__all__ = ["DEFAULT_CLIP_DENOISED", "Clipped", "Guided", "MaskedEpsModel"]

#: Default bound on the predicted clean latent in :func:`generate_latents` (whitened units: the
#: pipeline's latents are standardised per dimension, so 5.0 is five standard deviations).
DEFAULT_CLIP_DENOISED = 5.0

Branch = tuple[Tensor, Tensor, Tensor]  # rows (r,) long, absent (r, M) bool, weight (r, 1)


class Guided(DenoiserWrapper):
    """Guided noise prediction.

    Args:
        inner: the denoiser (its :meth:`~Denoiser.evaluate` runs the batched branches).
        guidance: ``{modality index or name: weight w_i}``. For each given modality i with
            ``w_i != 0`` the "unconditional" branch has modality i *absent*: its tau entry set to T
            and its latent replaced by fresh N(0, I) noise at every evaluation. On the generated
            dims ``eps = eps_cond + sum_i w_i (eps_cond - eps_uncond_i)``; a weight applies to the
            rows where modality i is given. The branch is learned only when the network was
            trained with ``diffusion.absent_prob > 0`` (otherwise it is an extrapolation).
        combine_guidance: one unconditional branch with every guided given modality of a row
            absent at once, weighted by the largest weight (in absolute value) among them.
        joint_guidance: ``{modality: weight}`` for the rows with nothing given: a branch with that
            modality absent, and on the dims of the OTHER modalities
            ``eps = eps_joint + w (eps_joint - eps_absent)``.
        guidance_interval: ``[t_low, t_high]``: branches only at evaluations with
            ``t_low <= t <= t_high`` (Kynkaanniemi et al. 2024); None: at every evaluation.
        generator: torch generator for the noise of the absent modalities.

    NFE: one guided evaluation with k active branches counts ``1 + k`` (a branch is active when its
    weight is non-zero and its modality is given in at least one row), in one forward pass.
    """

    def __init__(self, inner: Denoiser, guidance: Mapping[int | str, float] | None = None, *,
                 combine_guidance: bool = False, joint_guidance: Mapping[int | str, float] | None = None,
                 guidance_interval: tuple[float, float] | None = None, generator: torch.Generator | None = None):
        super().__init__(inner)
        self.generator = generator
        self.branches = self._guidance_branches(guidance, combine_guidance) + self._joint_branches(joint_guidance)
        low, high = (0.0, math.inf) if guidance_interval is None else map(float, guidance_interval)
        if not 0.0 <= low <= high:
            raise ValueError(
                f"guidance_interval must be [t_low, t_high] with 0 <= t_low <= t_high, got {guidance_interval}"
            )
        self.guidance_interval = (low, high)

    def _weights(self, guidance: Mapping[int | str, float] | None) -> Tensor:
        """``(M,)`` float64 weights from ``{modality index or name: weight}`` (0 where absent)."""
        layout: LatentLayout = self.layout
        weights = torch.zeros(layout.num_modalities, dtype=torch.float64)
        for key, weight in dict(guidance or {}).items():
            index = layout.index(key) if isinstance(key, str) else int(key)
            if not 0 <= index < layout.num_modalities:
                raise ValueError(
                    f"guidance for modality index {index}: the layout has {layout.num_modalities} "
                    f"modalities {list(layout.names)}"
                )
            weight = float(weight)
            if not math.isfinite(weight):
                raise ValueError(f"guidance weight of {layout.names[index]!r} must be finite, got {weight}")
            weights[index] = weight
        return weights

    def _one_absent(self, rows: Tensor, index: int, weight: Tensor) -> Branch:
        """A branch over ``rows`` with modality ``index`` absent and one weight."""
        absent = torch.zeros(rows.numel(), self.layout.num_modalities, dtype=torch.bool)
        absent[:, index] = True
        device = self.given.device
        return rows.to(device), absent.to(device), weight.expand(rows.numel(), 1)

    def _joint_branches(self, joint_guidance: Mapping[int | str, float] | None) -> list[Branch]:
        """The branches of ``joint_guidance`` (rows with nothing given, one modality absent each)."""
        weights = self._weights(joint_guidance)
        rows = torch.nonzero(~self.given.cpu().any(-1)).flatten()
        if self.layout.num_modalities < 2 or not rows.numel():
            return []
        return [self._one_absent(rows, index, weights[index]) for index in torch.nonzero(weights).flatten().tolist()]

    def _guidance_branches(self, guidance: Mapping[int | str, float] | None, combine: bool) -> list[Branch]:
        """The active guidance branches of the given modalities."""
        weights = self._weights(guidance)
        guided = self.given.cpu() & (weights != 0)  # (n, M): the guided given modalities of each row
        if combine:
            rows = torch.nonzero(guided.any(-1)).flatten()
            if not rows.numel():
                return []
            absent = guided[rows]
            # the largest weight in absolute value among the row's guided modalities, with its sign
            row_weights = torch.where(absent, weights, torch.zeros(())).gather(
                1, torch.where(absent, weights.abs(), torch.full((), -1.0)).argmax(1, keepdim=True))
            return [(rows.to(self.given.device), absent.to(self.given.device), row_weights)]
        branches = []
        for index in range(self.layout.num_modalities):
            rows = torch.nonzero(guided[:, index]).flatten()
            if rows.numel():
                branches.append(self._one_absent(rows, index, weights[index]))
        return branches

    def eps(self, x: Tensor, t: float) -> Tensor:
        """Guided ``eps_hat (n, D)`` at time ``t``: one forward pass of every active branch."""
        low, high = self.guidance_interval
        branches = self.branches if low <= t <= high else []
        if not branches:
            return self.inner.eps(x, t)
        tau = self.tau(t, x)
        mask = self.layout.modality_mask
        xs, taus = [x], [tau]
        for rows, absent, _ in branches:  # absent modalities: pure noise at time T
            xb, tb = x[rows], tau[rows]
            xs.append(torch.where(mask(absent), draw_noise(xb, self.generator), xb))
            taus.append(torch.where(absent, torch.full((), self.sde.T, dtype=tb.dtype, device=tb.device), tb))
        out = self.inner.evaluate(torch.cat(xs), torch.cat(taus), nfe=1 + len(branches))
        n = x.shape[0]
        cond = out[:n]
        guided, offset = cond.clone(), n
        for rows, absent, weight in branches:  # applied to the dims that are present in the branch
            uncond = out[offset : offset + rows.numel()]
            offset += rows.numel()
            delta = torch.where(mask(absent), torch.zeros((), dtype=cond.dtype, device=cond.device), cond[rows] - uncond)
            guided[rows] += weight.to(device=cond.device, dtype=cond.dtype) * delta
        return torch.where(self.given_dim_mask, cond, guided) if self.has_known else guided


class Clipped(DenoiserWrapper):
    """Bound ``c`` on the predicted clean latent of the generated dims.

    Where ``|x0| > c`` with ``x0 = (x - sigma eps) / alpha``, x0 is clamped to ``[-c, c]`` and eps is
    replaced by the one consistent with the clamped x0, ``(x - alpha clamp(x0)) / sigma``
    (elsewhere eps is returned bit-identical). It stops the ``sigma/alpha`` amplification of
    network errors near t = T from sending a few samples far off.

    Attributes:
        clipped: number of (sample, dim) entries whose predicted clean latent was clamped.
    """

    def __init__(self, inner: Denoiser | DenoiserWrapper, clip_denoised: float):
        super().__init__(inner)
        if not clip_denoised > 0:
            raise ValueError(f"clip_denoised must be > 0 or None, got {clip_denoised}")
        self.clip_denoised = float(clip_denoised)
        self.clipped = 0

    def eps(self, x: Tensor, t: float) -> Tensor:
        eps_hat = self.inner.eps(x, t)
        sde: VPSDE = self.sde
        t64 = torch.tensor(float(t), dtype=torch.float64)
        if float(sde.sigma(t64)) <= 0:
            return eps_hat
        c = self.clip_denoised
        x0 = sde.denoise(x, eps_hat, t64)
        out_of_range = x0.abs() > c
        if self.has_known:
            out_of_range &= ~self.given_dim_mask
        if not bool(out_of_range.any()):
            return eps_hat
        self.clipped += int(out_of_range.sum())
        return torch.where(out_of_range, sde.eps_from_denoised(x, x0.clamp(-c, c), t64), eps_hat)


def MaskedEpsModel(  # the public name (a class before the engine split) of the stacked denoiser
    eps_model: EpsModel, sde: VPSDE, layout: LatentLayout, given: Tensor, known: Tensor | None, *,
    guidance: Mapping[int | str, float] | None = None, clip_denoised: float | None = None,
    generator: torch.Generator | None = None, combine_guidance: bool = False,
    joint_guidance: Mapping[int | str, float] | None = None, guidance_interval: tuple[float, float] | None = None,
) -> Denoiser | DenoiserWrapper:
    """The denoiser a sampler sees: ``Clipped(Guided(Denoiser(...)))``, each layer only when asked
    for (see :class:`Denoiser`, :class:`Guided`, :class:`Clipped` for the arguments)."""
    if clip_denoised is not None and not clip_denoised > 0:
        raise ValueError(f"clip_denoised must be > 0 or None, got {clip_denoised}")
    denoiser: Denoiser | DenoiserWrapper = Denoiser(eps_model, sde, layout, given, known)
    guided = Guided(denoiser, guidance, combine_guidance=combine_guidance, joint_guidance=joint_guidance,
                    guidance_interval=guidance_interval, generator=generator)
    if guided.branches:
        denoiser = guided
    if clip_denoised is not None:
        denoiser = Clipped(denoiser, clip_denoised)
    return denoiser
