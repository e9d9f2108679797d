"""The diffusion engine of mmlatent: VP-SDE, masked multi-time training, score network, samplers.

See shared/DESIGN.md section 2 for the method and docs/architecture.md for the interfaces.

Modules, bottom up: ``sde`` (VPSDE: perturbation, x0 from eps, eps <-> score), ``masking``
(LatentLayout, given sets, multi-time vector), ``scorenet``, ``loss`` (Algorithm 1), ``schedules``
(time grids, RePaint walk), ``denoiser`` (network + tau + given dims -> eps_hat, x0; NFE),
``guidance`` (Guided, Clipped wrappers), ``steps`` (the shared sampler steps), ``samplers`` (the
sampler functions and their table), ``options`` (sampler option checks), ``sampling``
(generate_latents), ``plan`` (SamplingPlan).

Notation (paper symbol -> name in the code, one name per concept across the package):

=========================================  ==============================================================
paper                                      code
=========================================  ==============================================================
t, T                                       ``t`` (a scalar time, or ``(B,)`` per sample), ``sde.T``
t' (next, smaller time of a reverse step)  ``t_next``; a re-noising step goes UP to ``t_up``
multi-time vector tau (B, M)               ``tau`` (:func:`multitime_vector`)
beta(t), alpha(t), sigma(t)                ``sde.beta(t)``, ``alpha``, ``sigma`` (``sde.coefficients(t)``)
alpha(t'), sigma(t')                       ``alpha_next``, ``sigma_next``
sigma/alpha (noise level, VE scale)        ``s``, ``s_next``, ``s_hat`` (only this meaning)
x/alpha (scaled state)                     ``y``
smallest training time epsilon             ``t_eps`` (recipe key ``diffusion.train.eps``)
last time of a sampling grid               ``t_min``
noise ~ N(0, I)                            ``noise`` (training), ``z`` (drawn in a step)
eps_hat (network's noise prediction)       ``eps_hat``; the network is ``eps_model(x, tau)``
x0_hat = (x - sigma eps_hat) / alpha       ``x0`` / ``denoised`` (:meth:`VPSDE.denoise`)
score = -eps_hat / sigma                   ``score`` (:meth:`VPSDE.score_from_eps`)
v = alpha eps - sigma z (v-prediction)     ``v_hat`` inside ``ScoreNet(prediction="v")`` only
A2 (given set), A1 (diffused set)          ``given`` bool ``(B, M)``, ``~given``
m(A2): given-dims mask (B, D)              ``given_dim_mask`` (``known_dims``: old alias)
dim(A2): number of given dims              ``LatentLayout.given_dims(given)`` ``(B,)``
clean latents of the given dims            ``known`` ``(B, D)``
Omega(A1, A2) = 1 + dim(A2)/dim(A1)        ``omega``
d (probability of a conditional step)      ``d``
NFE                                        ``nfe`` (counted in :meth:`Denoiser.evaluate` only)
=========================================  ==============================================================
"""

from .denoiser import Denoiser, DenoiserWrapper
from .ema import EMA
from .gaussian import GaussianLatents
from .guidance import Clipped, Guided
from .loss import MultitimeLossTerms, masked_multitime_loss, masked_multitime_loss_terms
from .masking import (
    LatentLayout,
    given_mask_probability,
    multitime_vector,
    sample_given_mask,
)
from .plan import SamplingPlan, resolve_plan
from .sampling import (
    DEFAULT_CLIP_DENOISED,
    SAMPLERS,
    MaskedEpsModel,
    SamplerDefaults,
    SampleResult,
    check_sampler_options,
    generate_latents,
    register_sampler,
    sampler_options,
)
from .schedules import repaint_nfe, repaint_schedule, time_grid
from .scorenet import ScoreNet
from .sde import VPSDE, append_dims

__all__ = [
    "DEFAULT_CLIP_DENOISED",
    "Clipped",
    "Denoiser",
    "DenoiserWrapper",
    "EMA",
    "Guided",
    "GaussianLatents",
    "LatentLayout",
    "MaskedEpsModel",
    "MultitimeLossTerms",
    "SAMPLERS",
    "SampleResult",
    "SamplerDefaults",
    "SamplingPlan",
    "check_sampler_options",
    "ScoreNet",
    "VPSDE",
    "append_dims",
    "generate_latents",
    "given_mask_probability",
    "masked_multitime_loss",
    "masked_multitime_loss_terms",
    "multitime_vector",
    "register_sampler",
    "repaint_nfe",
    "repaint_schedule",
    "resolve_plan",
    "sampler_options",
    "sample_given_mask",
    "time_grid",
]
