"""Exponential moving average (EMA) of a network's weights, used for sampling.

A thin wrapper over PyTorch's own :class:`torch.optim.swa_utils.AveragedModel` with
:func:`torch.optim.swa_utils.get_ema_multi_avg_fn` (one ``torch._foreach_lerp_`` over all
parameters per update)::

    ema = EMA(net, decay=0.999)
    for batch in loader:
        ...; optimizer.step(); ema.update()
    sample_with(ema.module)

The first :meth:`update` copies the weights; each later one does
``w_ema <- decay * w_ema + (1 - decay) * w``. Buffers are averaged too (``use_buffers=True``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

__all__ = ["EMA"]


class EMA:
    """EMA of the weights of ``module``.

    Args:
        module: the online network (pass the unwrapped module, not a DDP wrapper).
        decay: EMA decay in [0, 1] (the paper uses 0.999).
        device: where the averaged copy lives (default: with the module).

    Attributes:
        module: the averaged network (an ``nn.Module`` in eval mode, no gradients).
        decay: the decay.
    """

    def __init__(self, module: nn.Module, decay: float = 0.999, device: torch.device | str | None = None):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.decay = float(decay)
        self._source = module
        self._averaged = AveragedModel(
            module, device=device, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True
        )
        self._averaged.requires_grad_(False)
        self._averaged.eval()

    @property
    def module(self) -> nn.Module:
        """The averaged network."""
        return self._averaged.module

    @property
    def num_updates(self) -> int:
        """How many times :meth:`update` ran."""
        return int(self._averaged.n_averaged)

    @torch.no_grad()
    def update(self, module: nn.Module | None = None) -> None:
        """Fold the current weights of ``module`` (default: the wrapped one) into the average."""
        self._averaged.update_parameters(self._source if module is None else module)

    def to(self, device: torch.device | str) -> EMA:
        """Move the averaged copy to ``device``; returns self."""
        self._averaged.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Tensors only (safetensors-friendly): ``module.<param>`` entries and ``n_averaged``."""
        return self._averaged.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> Any:
        """Inverse of :meth:`state_dict`."""
        return self._averaged.load_state_dict(state_dict, strict=strict)

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, updates={self.num_updates}, module={type(self.module).__name__})"
