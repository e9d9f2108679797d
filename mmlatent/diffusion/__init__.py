"""The diffusion engine of mmlatent: VP-SDE, masked multi-time training, score network, samplers.

See shared/DESIGN.md section 2 for the method and docs/architecture.md for the interfaces.
"""

from .ema import EMA
from .gaussian import GaussianLatents
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
    "EMA",
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
