"""Raw image values -> float tensors ``(C, H, W)`` in [0, 1], and back to PIL for files.

Accepted raw values (what datasets yield and what users pass):

- ``PIL.Image.Image`` of any mode;
- numpy arrays and torch tensors of shape ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` with
  C in {1, 3, 4}. Integer arrays are read as 0..255 (``uint16`` as 0..65535), booleans as 0/1,
  floating-point arrays as already in [0, 1] (clamped). When the layout is ambiguous (both the first
  and the last axis could be channels, e.g. ``(3, 5, 3)``) numpy arrays are read channels-last
  (the numpy/PIL convention) and tensors channels-first (the torch convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["convert_channels", "resize", "to_float_chw", "to_pil", "to_uint8_hwc"]

_CHANNEL_COUNTS = (1, 3, 4)
#: ITU-R BT.601 luma weights (those PIL uses for mode "L").
_LUMA = (0.299, 0.587, 0.114)


def _pil_to_array(image: Any) -> np.ndarray:
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":  # 16-bit grey (PNG): uint16 read as 0..65535
        return np.array(image).astype(np.uint16)
    if mode == "F":  # 32-bit float pixels: PIL's convention is 0..255
        return np.array(image, dtype=np.float32) / 255.0
    if mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode or "transparency" in image.info else "RGB")
    return np.array(image)


def _scale_to_unit(x: Tensor) -> Tensor:
    if x.dtype == torch.bool:
        return x.float()
    if not x.is_floating_point():
        return x.to(torch.float32) / 255.0
    return x.to(torch.float32).clamp(0.0, 1.0)


def to_float_chw(value: Any) -> Tensor:
    """One raw image -> float32 tensor ``(C, H, W)`` in [0, 1] (C as stored: 1, 3 or 4)."""
    channels_last_first = True  # numpy convention when the layout is ambiguous
    if hasattr(value, "mode") and hasattr(value, "size") and hasattr(value, "convert"):  # PIL
        value = _pil_to_array(value)
    if isinstance(value, np.ndarray):
        if not value.flags.writeable:  # torch.from_numpy warns on read-only memory
            value = value.copy()
        if value.dtype == np.uint16:
            x = torch.from_numpy(value.astype(np.float32) / 65535.0)
        elif value.dtype.kind in "iub":
            x = torch.from_numpy(np.ascontiguousarray(value))
        elif value.dtype.kind == "f":
            x = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        else:
            raise TypeError(f"cannot read an image from a numpy array of dtype {value.dtype}")
    elif isinstance(value, Tensor):
        x = value.detach().cpu()
        channels_last_first = False
    else:
        raise TypeError(
            f"cannot read an image from {type(value).__name__} "
            "(expected a PIL image, a numpy array or a torch tensor)"
        )
    if x.ndim == 2:
        x = x.unsqueeze(0)
    elif x.ndim == 3:
        first, last = x.shape[0] in _CHANNEL_COUNTS, x.shape[-1] in _CHANNEL_COUNTS
        if last and (channels_last_first or not first):
            x = x.permute(2, 0, 1)
        elif not first:
            raise ValueError(
                f"cannot read an image of shape {tuple(x.shape)}: expected (H, W), (H, W, C) "
                f"or (C, H, W) with C in {_CHANNEL_COUNTS}"
            )
    else:
        raise ValueError(
            f"cannot read an image of shape {tuple(x.shape)}: expected (H, W), (H, W, C) or (C, H, W)"
        )
    return _scale_to_unit(x).contiguous()


def convert_channels(x: Tensor, channels: int) -> Tensor:
    """``(..., C, H, W)`` -> ``(..., channels, H, W)``: grey <-> RGB (BT.601 luma), alpha dropped or added."""
    c = x.shape[-3]
    if c == channels:
        return x
    if c == 4:  # drop alpha
        x, c = x[..., :3, :, :], 3
        if channels == 3:
            return x
    if channels == 1:
        if c != 3:
            raise ValueError(f"cannot convert {c} channels to 1")
        weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * weights).sum(-3, keepdim=True)
    if channels in (3, 4):
        if c == 1:
            x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
        if channels == 4:
            x = torch.cat([x, torch.ones_like(x[..., :1, :, :])], dim=-3)
        return x.contiguous()
    raise ValueError(f"cannot convert {c} channels to {channels}")


def resize(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """``(..., C, H, W)`` -> ``(..., C, size, size)`` (bilinear, antialiased when shrinking)."""
    target = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == target:
        return x
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    shrinking = target[0] < flat.shape[-2] or target[1] < flat.shape[-1]
    out = F.interpolate(flat, size=target, mode="bilinear", align_corners=False, antialias=shrinking)
    return out.clamp(0.0, 1.0).reshape(*lead, *out.shape[-3:])


def to_uint8_hwc(x: Tensor) -> np.ndarray:
    """Float ``(C, H, W)`` in [0, 1] -> uint8 numpy ``(H, W, C)`` (rounded)."""
    x = x.detach().cpu().float().clamp(0.0, 1.0)
    return (x * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def to_pil(x: Tensor):
    """Float ``(C, H, W)`` in [0, 1] with C in {1, 3, 4} -> PIL image (modes L, RGB, RGBA)."""
    from PIL import Image

    array = to_uint8_hwc(x)
    if array.shape[-1] == 1:
        array = array[..., 0]
    elif array.shape[-1] not in (3, 4):
        raise ValueError(f"cannot write an image with {array.shape[-1]} channels")
    return Image.fromarray(array)
