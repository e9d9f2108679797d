"""Sampler options: which options each sampler accepts and what their values must be.

:func:`sampler_options` lists the options of a sampler (its own keyword options plus
:data:`COMMON_OPTIONS`), :data:`OPTION_CHECKS` says what each value must be and
:func:`check_sampler_options` checks a recipe's or a call's options against both.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sys

__all__ = ["BUILTIN_SAMPLER_OPTIONS", "COMMON_OPTIONS", "OPTION_CHECKS", "check_sampler_options",
           "live_sampler_options", "sampler_options"]

#: Keyword options of :func:`generate_latents` that every sampler accepts (recipe ``sampling.options``).
COMMON_OPTIONS = (
    "grid", "t_min", "rho", "clip_denoised", "denoise_final", "combine_guidance", "joint_guidance",
    "guidance_interval", "joint_steps",
)


#: The own keyword options of the built-in samplers, as their signatures in :mod:`.samplers` say (a
#: test checks that they agree): ``mmlatent validate`` checks a recipe's sampler without importing torch.
BUILTIN_SAMPLER_OPTIONS: dict[str, tuple[str, ...]] = {
    "euler_maruyama": (),
    "repaint": ("jump_length", "renoise", "resamplings", "reverse_step", "variance"),
    "repaint_ddpm": ("jump_length", "resamplings", "variance"),
    "euler": (),
    "heun": (),
    "ddim": ("eta",),
    "dpm_solver++": ("lower_order_final",),
    "ddpm": ("variance",),
    "pc": ("corrector_steps", "predictor", "snr", "variance"),
    "churn": ("order", "s_churn", "s_noise", "s_tmax", "s_tmin"),
}


def live_sampler_options() -> dict[str, set[str]]:
    """The own keyword options of every sampler registered in :data:`.samplers.SAMPLERS` (imports
    the engine), read from the functions' signatures."""
    from .samplers import SAMPLERS

    return {
        sampler: {
            name
            for name, p in inspect.signature(function).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("generator", "callback", "progress")
        }
        for sampler, function in SAMPLERS.items()
    }


def sampler_options(sampler: str) -> set[str]:
    """Names of the options accepted with ``sampler`` in :func:`generate_latents` (and so in a
    recipe's ``sampling.options``): the sampler function's own keyword options plus
    :data:`COMMON_OPTIONS`. Read from :data:`BUILTIN_SAMPLER_OPTIONS` while the engine is not
    imported (``mmlatent validate``), else from the registered functions (samplers registered at run
    time included)."""
    if "mmlatent.diffusion.samplers" in sys.modules or sampler not in BUILTIN_SAMPLER_OPTIONS:
        table = live_sampler_options()
    else:
        table = {name: set(own) for name, own in BUILTIN_SAMPLER_OPTIONS.items()}
    if sampler not in table:
        raise ValueError(f"unknown sampler {sampler!r}; available: {sorted(table)}")
    return table[sampler] | set(COMMON_OPTIONS)


@dataclass(frozen=True)
class _OptionCheck:
    """What an option's value must be: ``expected`` (for the message) and a predicate."""

    expected: str
    accepts: Callable[[Any], bool]


def _is_number(value: Any, finite: bool = True) -> bool:
    """A real number (not a bool, not a string), finite unless ``finite=False`` (then not NaN)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value) if finite else not math.isnan(value)


def _number(expected: str, accepts: Callable[[float], bool], *, integer: bool = False, nullable: bool = False,
            finite: bool = True) -> _OptionCheck:
    """A numeric option: ``expected`` is the range in words (``">= 0"``); ``accepts`` tests it."""
    kind = "an integer" if integer else "a finite number" if finite else "a number"
    return _OptionCheck(
        f"{'null or ' if nullable else ''}{kind} {expected}",
        lambda v: (nullable and v is None) or (
            _is_number(v, finite) and (not integer or isinstance(v, numbers.Integral)) and accepts(v)),
    )


def _choice(*names: Any) -> _OptionCheck:
    return _OptionCheck(f"one of {', '.join(map(repr, names))}", lambda v: not isinstance(v, bool) and v in names)


_FLAG = _OptionCheck("true or false", lambda v: isinstance(v, bool))
_NON_NEGATIVE = _number(">= 0", lambda v: v >= 0)
_WEIGHTS = _OptionCheck(
    "a mapping {modality name or index: finite number}",
    lambda v: isinstance(v, Mapping) and all(isinstance(k, (str, int)) and _is_number(w) for k, w in v.items()),
)
_INTERVAL = _OptionCheck(
    "null or two ordered numbers [t_low, t_high] in [0, 1]",
    lambda v: v is None or (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_number(t) for t in v)
                            and 0 <= v[0] <= v[1] <= 1),
)

#: What the value of each sampler option must be (:func:`check_sampler_options`); the sampler
#: functions and :class:`MaskedEpsModel` check again what only they know (e.g. modality names).
OPTION_CHECKS: dict[str, _OptionCheck] = {
    # every sampler (COMMON_OPTIONS)
    "grid": _choice("uniform", "logsnr", "karras"),
    "t_min": _number("in [0, 1)", lambda v: 0 <= v < 1),
    "rho": _number("> 0", lambda v: v > 0),
    "clip_denoised": _number("> 0", lambda v: v > 0, nullable=True),
    "denoise_final": _FLAG,
    "combine_guidance": _FLAG,
    "joint_guidance": _WEIGHTS,
    "guidance_interval": _INTERVAL,
    "joint_steps": _number(">= 1", lambda v: v >= 1, integer=True, nullable=True),
    # the samplers' own options
    "eta": _NON_NEGATIVE,
    "jump_length": _number(">= 1", lambda v: v >= 1, integer=True),
    "resamplings": _number(">= 1", lambda v: v >= 1, integer=True),
    "renoise": _choice("euler_maruyama", "exact"),
    "reverse_step": _choice("euler_maruyama", "ddpm"),
    "variance": _choice("posterior", "large"),
    "lower_order_final": _FLAG,
    "predictor": _choice("ddpm", "euler_maruyama"),
    "corrector_steps": _number(">= 0", lambda v: v >= 0, integer=True),
    "snr": _NON_NEGATIVE,
    "s_churn": _NON_NEGATIVE,
    "s_noise": _NON_NEGATIVE,
    "s_tmin": _NON_NEGATIVE,
    "s_tmax": _number(">= 0 (inf allowed)", lambda v: v >= 0, finite=False),
    "order": _choice(1, 2),
}


def check_sampler_options(sampler: str, options: Mapping[str, Any] | Iterable[str]) -> None:
    """Raise ValueError for an unknown sampler name, an option it does not accept or, when
    ``options`` maps names to values, a value out of :data:`OPTION_CHECKS` (e.g. ``sampler option
    eta: expected a finite number >= 0, got 'abc'``). Recipes are checked with it when validated,
    :meth:`~mmlatent.pipeline.MLDPipeline.generate` when called."""
    accepted = sampler_options(sampler)  # ValueError for an unknown sampler
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"sampler {sampler!r} has no option {', '.join(map(repr, unknown))}; "
                         f"its options: {', '.join(sorted(accepted))}")
    if isinstance(options, Mapping):
        for name, value in options.items():
            check = OPTION_CHECKS.get(name)
            if check is not None and not check.accepts(value):
                raise ValueError(f"sampler option {name}: expected {check.expected}, got {value!r}")
