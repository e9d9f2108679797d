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

from mmlatent.specs import lazy_exports

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

# imported on first access: `mmlatent.diffusion.options` (the sampler option checks of `mmlatent validate`)
# needs no torch
__getattr__ = lazy_exports(__name__, {
    "Denoiser": "mmlatent.diffusion.denoiser",
    "DenoiserWrapper": "mmlatent.diffusion.denoiser",
    "EMA": "mmlatent.diffusion.ema",
    "GaussianLatents": "mmlatent.diffusion.gaussian",
    "Clipped": "mmlatent.diffusion.guidance",
    "Guided": "mmlatent.diffusion.guidance",
    "MultitimeLossTerms": "mmlatent.diffusion.loss",
    "masked_multitime_loss": "mmlatent.diffusion.loss",
    "masked_multitime_loss_terms": "mmlatent.diffusion.loss",
    "LatentLayout": "mmlatent.diffusion.masking",
    "given_mask_probability": "mmlatent.diffusion.masking",
    "multitime_vector": "mmlatent.diffusion.masking",
    "sample_given_mask": "mmlatent.diffusion.masking",
    "SamplingPlan": "mmlatent.diffusion.plan",
    "resolve_plan": "mmlatent.diffusion.plan",
    "DEFAULT_CLIP_DENOISED": "mmlatent.diffusion.sampling",
    "SAMPLERS": "mmlatent.diffusion.sampling",
    "MaskedEpsModel": "mmlatent.diffusion.sampling",
    "SamplerDefaults": "mmlatent.diffusion.sampling",
    "SampleResult": "mmlatent.diffusion.sampling",
    "check_sampler_options": "mmlatent.diffusion.sampling",
    "generate_latents": "mmlatent.diffusion.sampling",
    "register_sampler": "mmlatent.diffusion.sampling",
    "sampler_options": "mmlatent.diffusion.sampling",
    "repaint_nfe": "mmlatent.diffusion.schedules",
    "repaint_schedule": "mmlatent.diffusion.schedules",
    "time_grid": "mmlatent.diffusion.schedules",
    "ScoreNet": "mmlatent.diffusion.scorenet",
    "VPSDE": "mmlatent.diffusion.sde",
    "append_dims": "mmlatent.diffusion.sde",
})
