"""TrivialAugmentWide on a whole batch at once.

torchvision's ``v2.TrivialAugmentWide`` draws one operation and one magnitude per call, so a batch is augmented
one image at a time: on an accelerator that is a few kernel launches per image and holds training to a few
thousand images per second. :func:`trivial_augment_wide` draws the same operation and magnitude per image (the
same 14 operations, 31 magnitude bins, signs, nearest interpolation and zero fill), then applies each operation to
all the images that drew it in one batched call, with per-image magnitudes: affine operations through one batched
sampling grid, blends with per-image ratios, torchvision's own batched kernels where they exist (autocontrast,
equalize). :func:`apply_operation` is that per-operation step; the tests hold it to torchvision's result.

Images: uint8 ``(B, C, H, W)``, C 1 or 3, on any device; the result has the same shape, dtype and device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

__all__ = ["MAGNITUDE_BINS", "OPERATIONS", "SIGNED", "Draw", "apply_operation", "draw", "magnitudes",
           "trivial_augment_wide"]

#: TrivialAugmentWide's operations, in torchvision's order; each image draws one, uniformly.
OPERATIONS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
              "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
#: The magnitude bins each image draws from (torchvision's default).
MAGNITUDE_BINS = 31
#: The operations whose magnitude is negated with probability 1/2.
SIGNED = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
                    "Sharpness"})


def magnitudes(operation: str, bins: int = MAGNITUDE_BINS) -> Tensor | None:
    """The ``(bins,)`` magnitudes of ``operation`` (TrivialAugmentWide's wide space), None for those without one."""
    if operation in ("ShearX", "ShearY", "Brightness", "Color", "Contrast", "Sharpness"):
        return torch.linspace(0.0, 0.99, bins)
    if operation in ("TranslateX", "TranslateY"):
        return torch.linspace(0.0, 32.0, bins)
    if operation == "Rotate":
        return torch.linspace(0.0, 135.0, bins)
    if operation == "Posterize":
        return (8 - (torch.arange(bins) / ((bins - 1) / 6))).round().int()
    if operation == "Solarize":
        return torch.linspace(1.0, 0.0, bins)
    if operation in ("Identity", "AutoContrast", "Equalize"):
        return None
    raise ValueError(f"unknown operation {operation!r} (one of {', '.join(OPERATIONS)})")


@dataclass
class Draw:
    """One batch's draw: ``operations`` ``(B,)`` indices into :data:`OPERATIONS`, ``magnitudes`` ``(B,)`` float64
    (signed; 0 for the operations without one)."""

    operations: Tensor
    magnitudes: Tensor


def draw(batch: int, generator: torch.Generator | None = None) -> Draw:
    """Draw an operation, a magnitude bin and a sign for each of ``batch`` images (on the CPU)."""
    operations = torch.randint(len(OPERATIONS), (batch,), generator=generator)
    bins = torch.randint(MAGNITUDE_BINS, (batch,), generator=generator)
    negate = torch.rand(batch, generator=generator) <= 0.5
    values = torch.zeros(batch, dtype=torch.float64)
    for index, operation in enumerate(OPERATIONS):
        chosen = operations == index
        table = magnitudes(operation)
        if table is None or not bool(chosen.any()):
            continue
        value = table.double()[bins[chosen]]
        values[chosen] = torch.where(negate[chosen], -value, value) if operation in SIGNED else value
    return Draw(operations, values)


def trivial_augment_wide(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """TrivialAugmentWide, a fresh draw per image, of uint8 ``images`` ``(B, C, H, W)`` -> ``(B, C, H, W)``."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"trivial_augment_wide takes uint8 images (B, 1 or 3, H, W), got {images.dtype} "
                         f"{tuple(images.shape)}")
    plan = draw(images.shape[0], generator)
    out = images.clone()
    for index, operation in enumerate(OPERATIONS):
        chosen = (plan.operations == index).nonzero().flatten()
        if operation == "Identity" or len(chosen) == 0:
            continue
        on_device = chosen.to(images.device)
        out[on_device] = apply_operation(operation, images[on_device], plan.magnitudes[chosen])
    return out


def apply_operation(operation: str, images: Tensor, magnitude: Tensor) -> Tensor:
    """``operation`` on uint8 ``images`` ``(K, C, H, W)`` with per-image signed ``magnitude`` ``(K,)`` (float64;
    any device: the arithmetic on magnitudes runs on the CPU, the pixels stay on their device): what torchvision's
    TrivialAugmentWide does to each image with that magnitude."""
    if operation == "Identity":
        return images.clone()
    magnitude = magnitude.double().cpu()
    if operation in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"):
        return _geometric(operation, images, magnitude)
    factor = (1.0 + magnitude).view(-1, 1, 1, 1)  # float64 here; float32 on the device
    if operation == "Brightness":
        return images.mul(factor.float().to(images.device)).clamp_(0, 255).to(torch.uint8)
    # the blends' grey: torchvision's luma, whose uint8 result is the floor its colour kernels take; grey stays grey
    if operation == "Color":
        return images.clone() if images.shape[1] == 1 else _blend(images, TF.rgb_to_grayscale(images).float(), factor)
    if operation == "Contrast":
        return _blend(images, TF.rgb_to_grayscale(images).float().mean(dim=(-3, -2, -1), keepdim=True), factor)
    if operation == "Sharpness":
        return _sharpen(images, factor)
    if operation == "Posterize":
        bits = magnitude.to(torch.int64).view(-1, 1, 1, 1)
        mask = ((255 << (8 - bits.clamp(max=8))) & 255).to(torch.uint8).to(images.device)
        return images & mask
    if operation == "Solarize":
        threshold = (255.0 * magnitude).float().to(images.device).view(-1, 1, 1, 1)
        return torch.where(images.float() >= threshold, 255 - images, images)
    if operation == "AutoContrast":
        return TF.autocontrast(images)
    if operation == "Equalize":
        return TF.equalize(images)
    raise ValueError(f"unknown operation {operation!r} (one of {', '.join(OPERATIONS)})")


def _blend(images: Tensor, other: Tensor, ratio: Tensor) -> Tensor:
    """``ratio * images + (1 - ratio) * other`` per image (``ratio`` ``(K, 1, 1, 1)`` float64 on the CPU), clamped,
    truncated to uint8 as torchvision's ``_blend``."""
    scaled = images.mul(ratio.float().to(images.device))
    rest = (1.0 - ratio).float().to(images.device)  # addcmul rounds once, as torchvision's add with alpha
    mixed = scaled.addcmul_(other.expand_as(scaled), rest.expand_as(scaled))
    return mixed.clamp_(0, 255).to(torch.uint8)


def _sharpen(images: Tensor, factor: Tensor) -> Tensor:
    """torchvision's ``adjust_sharpness`` with a per-image factor: the interior blended with a 3x3 blur
    (13ths, 5 in the middle), the border kept."""
    channels, height, width = images.shape[-3:]
    if height <= 2 or width <= 2:
        return images.clone()
    a, b = 1.0 / 13.0, 5.0 / 13.0
    kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], device=images.device).expand(channels, 1, 3, 3)
    output = images.to(torch.float32, copy=True)
    blurred = F.conv2d(output, kernel, groups=channels).round_()
    interior = output[..., 1:-1, 1:-1]
    difference = blurred.sub_(interior)
    interior.addcmul_(difference, (1.0 - factor).float().to(images.device).expand_as(difference))
    return output.clamp_(0, 255).to(torch.uint8)


def _geometric(operation: str, images: Tensor, magnitude: Tensor) -> Tensor:
    """The affine operations (nearest, zero fill) with per-image magnitudes; rotations by multiples of 90 degrees
    take torchvision's exact fast paths."""
    height, width = images.shape[-2:]
    out = images.clone()
    zeros = torch.zeros_like(magnitude)
    if operation == "Rotate":
        angle = magnitude % 360
        sampled = torch.ones_like(angle, dtype=torch.bool)
        for quarter in (0, 1, 2, 3) if height == width else (0, 2):
            exact = angle == 90.0 * quarter
            sampled &= ~exact
            if bool(exact.any()):
                index = exact.nonzero().flatten().to(images.device)
                out[index] = torch.rot90(images[index], k=quarter, dims=(-2, -1))
        if bool(sampled.any()):
            none = zeros[sampled]
            index = sampled.nonzero().flatten().to(images.device)
            out[index] = _sample(images[index], _inverse_affine(none, none, -angle[sampled], none, none, none, none))
        return out
    if operation in ("ShearX", "ShearY"):
        shear = torch.rad2deg(torch.atan(magnitude))
        corner_x, corner_y = torch.full_like(magnitude, -0.5 * width), torch.full_like(magnitude, -0.5 * height)
        shear_x, shear_y = (shear, zeros) if operation == "ShearX" else (zeros, shear)
        theta = _inverse_affine(corner_x, corner_y, zeros, zeros, zeros, shear_x, shear_y)
    else:  # translations by whole pixels, truncated toward zero as torchvision's int()
        shift = torch.trunc(magnitude)
        shift_x, shift_y = (shift, zeros) if operation == "TranslateX" else (zeros, shift)
        theta = _inverse_affine(zeros, zeros, zeros, shift_x, shift_y, zeros, zeros)
    return _sample(images, theta)


def _inverse_affine(center_x: Tensor, center_y: Tensor, angle: Tensor, translate_x: Tensor, translate_y: Tensor,
                    shear_x: Tensor, shear_y: Tensor) -> Tensor:
    """Per image, the inverse affine map (output pixel -> input pixel, coordinates centred on the image) of a
    rotation by ``angle`` degrees, shears ``shear_x``/``shear_y`` degrees about the centre offset ``center_*`` and a
    translation: float64 ``(K, 2, 3)``, torchvision's ``_get_inverse_affine_matrix`` at scale 1 for every image."""
    rotation, sx, sy = torch.deg2rad(angle), torch.deg2rad(shear_x), torch.deg2rad(shear_y)
    a = torch.cos(rotation - sy) / torch.cos(sy)
    b = -(a * torch.tan(sx) + torch.sin(rotation))
    c = torch.sin(rotation - sy) / torch.cos(sy)
    d = torch.cos(rotation) - c * torch.tan(sx)
    moved_x, moved_y = center_x + translate_x, center_y + translate_y
    row_x = torch.stack([d, -b, center_x - d * moved_x + b * moved_y], dim=-1)
    row_y = torch.stack([-c, a, center_y + c * moved_x - a * moved_y], dim=-1)
    return torch.stack([row_x, row_y], dim=-2)


def _sample(images: Tensor, theta: Tensor) -> Tensor:
    """Nearest-neighbour resampling of uint8 ``images`` ``(K, C, H, W)`` through per-image inverse maps ``theta``
    ``(K, 2, 3)`` (pixel coordinates centred on the image), zeros outside, as torchvision's affine grid."""
    count, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    theta = theta.float().to(images.device)  # float64 math on the CPU, float32 on the device (as torchvision)
    base = torch.empty(1, height, width, 3, device=images.device)
    base[..., 0].copy_(torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=images.device))
    base[..., 1].copy_(torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height,
                                      device=images.device).unsqueeze(-1))
    base[..., 2].fill_(1)
    scale = torch.tensor([0.5 * width, 0.5 * height], device=images.device)
    grid = base.view(1, height * width, 3).expand(count, -1, -1).bmm(theta.transpose(1, 2).div(scale))
    sampled = F.grid_sample(images.float(), grid.view(count, height, width, 2), mode="nearest", padding_mode="zeros",
                            align_corners=False)
    return sampled.round_().to(torch.uint8)
