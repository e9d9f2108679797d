"""The sampling plan: every setting that decides how latents are sampled, resolved once.

A run's recipe names a default sampler and settings that belong to it (``sampling:``); a call may
name another sampler, steps, options and guidance weights. :func:`resolve_plan` is the one place
that combines them, with one rule: **the recipe's settings belong to the recipe's sampler** (its
steps, options, guidance and ``denoise_final`` fill in what the call leaves unset only when that
sampler runs, and only with ``use_defaults``; ddim's ``eta`` means nothing to repaint). The
pipeline samples with the resulting :class:`SamplingPlan`, and ``metrics.json`` records
``plan.record()``: what was actually used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["SamplingPlan", "resolve_plan"]


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class SamplingPlan:
    """``sampler`` name (a registered sampler, or ``student:<name>``), ``steps`` (None: the
    sampler's default), sampler ``options`` (``eta``, ``grid``, ``combine_guidance``, ...),
    ``guidance`` weights by modality name, and ``denoise_final``."""

    sampler: str
    steps: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    guidance: Mapping[str, float] = field(default_factory=dict)
    denoise_final: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _frozen(self.options))
        object.__setattr__(self, "guidance", _frozen(self.guidance))

    @property
    def grid(self) -> str | None:
        """The time grid asked for (None: the sampler's default grid)."""
        return self.options.get("grid")

    def record(self) -> dict[str, Any]:
        """A JSON-ready description (``metrics.json["plan"]``)."""
        return {"sampler": self.sampler, "steps": self.steps, "grid": self.grid, "options": dict(self.options),
                "guidance": dict(self.guidance), "denoise_final": self.denoise_final}


def resolve_plan(default: SamplingPlan, sampler: str | None = None, steps: int | None = None,
                 options: Mapping[str, Any] | None = None, guidance: Mapping[str, float] | None = None,
                 use_defaults: bool = True) -> SamplingPlan:
    """The plan of one call: its own settings, completed by ``default``'s when they belong to it.

    ``default`` holds the recipe's ``sampling`` section. ``sampler=None`` runs the default
    sampler. With ``use_defaults`` and the default sampler, unset steps come from ``default``,
    options and guidance weights are ``default``'s updated by the call's, and ``denoise_final``
    is ``default``'s unless the call's options set it. Otherwise only the call's settings count.
    """
    name = sampler or default.sampler
    own = use_defaults and name == default.sampler
    merged = {**(default.options if own else {}), **dict(options or {})}
    denoise_final = bool(merged.pop("denoise_final", default.denoise_final if own else False))
    weights = {**(default.guidance if own else {}), **dict(guidance or {})}
    return SamplingPlan(sampler=name, steps=steps if steps is not None or not own else default.steps,
                        options=merged, guidance=weights, denoise_final=denoise_final)
