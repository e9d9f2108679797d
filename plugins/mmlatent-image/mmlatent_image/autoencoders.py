"""Deterministic image autoencoders (the paper's, sized from the modality options).

All take and return float images ``(B, C, H, W)`` in [0, 1] (the decoders end with a sigmoid) and
map them to latents ``(B, latent_dim)``:

- :class:`MLPAutoencoder` — the MNIST one: flatten -> 400 -> latent, latent -> 400 -> pixels;
- :class:`ConvAutoencoder` — the SVHN one: 4x4 stride-2 convolutions with 32-64-128 channels, then
  a convolution whose kernel covers the remaining feature map (4x4 for 32x32 inputs, 2x2 for 16x16);
- :class:`ResNetAutoencoder` — CUB 64x64: stride-2 convolutions with a pre-activation residual block
  at every resolution, a linear map to the latent and the mirror image for the decoder;
- :class:`LDMAutoencoder` — MLD*'s: the LDM autoencoder (resnet blocks with GroupNorm and SiLU,
  down/upsampling, a middle block with self-attention) with a linear map to a flat latent.

The convolutional ones need the side to be a multiple of ``2 ** len(channels)``; other sizes
(28x28 MNIST with 3 stages, say) are zero-padded to the next multiple before encoding and the
decoder output is cropped back.

The reconstruction loss is summed over pixels and averaged over the batch: squared error (``mse``,
a Gaussian likelihood) or absolute error (``l1``, a Laplace likelihood).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from mmlatent import Autoencoder

__all__ = ["ConvAutoencoder", "ImageAutoencoder", "LDMAutoencoder", "MLPAutoencoder", "ResNetAutoencoder"]


class ImageAutoencoder(Autoencoder):
    """Shared parts: the loss choice and the pad-to-a-multiple / crop-back logic."""

    def __init__(self, latent_dim: int, channels: int, size: int, loss: str = "mse", multiple: int = 1) -> None:
        super().__init__(latent_dim)
        if loss not in ("mse", "l1"):
            raise ValueError(f"unknown image reconstruction loss {loss!r} (expected 'mse' or 'l1')")
        self.channels = int(channels)
        self.size = int(size)
        self.loss = loss
        self.padded_size = int(math.ceil(self.size / multiple) * multiple)

    def _check_input(self, x: Tensor) -> None:
        expected = (self.channels, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"image autoencoder expects a batch (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")

    def _pad(self, x: Tensor) -> Tensor:
        extra = self.padded_size - self.size
        if extra == 0:
            return x
        before = extra // 2
        return F.pad(x, (before, extra - before, before, extra - before))

    def _crop(self, x: Tensor) -> Tensor:
        extra = self.padded_size - self.size
        if extra == 0:
            return x
        before = extra // 2
        return x[..., before : before + self.size, before : before + self.size]

    def reconstruction_loss(self, x: Tensor, decoded: Tensor) -> Tensor:
        diff = decoded - x
        per_pixel = diff.abs() if self.loss == "l1" else diff.pow(2)
        return per_pixel.flatten(1).sum(1).mean()


class MLPAutoencoder(ImageAutoencoder):
    """Flatten -> hidden layers (ReLU) -> latent; latent -> hidden (reversed) -> pixels -> sigmoid."""

    def __init__(self, latent_dim: int, channels: int, size: int, hidden: Sequence[int] = (400,), loss: str = "mse") -> None:
        super().__init__(latent_dim, channels, size, loss)
        pixels = self.channels * self.size * self.size
        widths = [pixels, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], self.latent_dim))
        self.encoder = nn.Sequential(*layers)
        back = [self.latent_dim, *reversed(list(hidden))]
        layers = []
        for a, b in zip(back[:-1], back[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers += [nn.Linear(back[-1], pixels), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, self.channels, self.size, self.size)


class ConvAutoencoder(ImageAutoencoder):
    """4x4 stride-2 convolutions (ReLU) then a ``k x k`` convolution to the latent (k = remaining side)."""

    def __init__(self, latent_dim: int, channels: int, size: int, conv_channels: Sequence[int] = (32, 64, 128), loss: str = "mse") -> None:
        conv_channels = list(conv_channels)
        super().__init__(latent_dim, channels, size, loss, multiple=2 ** len(conv_channels))
        self.final_side = self.padded_size // 2 ** len(conv_channels)
        widths = [self.channels, *conv_channels]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.ReLU()]
        layers.append(nn.Conv2d(widths[-1], self.latent_dim, self.final_side, 1, 0))
        self.encoder = nn.Sequential(*layers)
        layers = [nn.ConvTranspose2d(self.latent_dim, widths[-1], self.final_side, 1, 0), nn.ReLU()]
        back = list(reversed(widths))
        for i, (a, b) in enumerate(zip(back[:-1], back[1:])):
            layers.append(nn.ConvTranspose2d(a, b, 4, 2, 1))
            layers.append(nn.ReLU() if i < len(back) - 2 else nn.Sigmoid())
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.encoder(self._pad(x)).flatten(1)

    def decode(self, z: Tensor) -> Tensor:
        return self._crop(self.decoder(z.view(-1, self.latent_dim, 1, 1)))


def _groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class ResidualBlock(nn.Module):
    """Pre-activation residual block (LDM's ``ResnetBlock``): shortcut(x) + conv(SiLU(norm(conv(SiLU(norm(x))))))
    with 3x3 convolutions; ``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``, the shortcut a 1x1 convolution
    when the channels change (``out_channels``, default ``in_channels``: the identity)."""

    def __init__(self, in_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(in_channels), in_channels),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.GroupNorm(_groups(out_channels), out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
        )
        self.shortcut = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.body(x)


class ResNetAutoencoder(ImageAutoencoder):
    """Stride-2 4x4 convolutions, each followed by a residual block; linear maps to/from the latent.

    With ``conv_channels = (32, 64, 128, 256)`` a 64x64 image goes 64 -> 32 -> 16 -> 8 -> 4, then
    ``256 * 4 * 4 -> latent``; the decoder mirrors it with transposed convolutions.
    """

    def __init__(self, latent_dim: int, channels: int, size: int, conv_channels: Sequence[int] = (32, 64, 128, 256), loss: str = "mse") -> None:
        conv_channels = list(conv_channels)
        super().__init__(latent_dim, channels, size, loss, multiple=2 ** len(conv_channels))
        self.final_side = self.padded_size // 2 ** len(conv_channels)
        self.final_channels = conv_channels[-1]
        widths = [self.channels, *conv_channels]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), ResidualBlock(b)]
        layers += [nn.GroupNorm(_groups(widths[-1]), widths[-1]), nn.SiLU(), nn.Flatten()]
        flat = self.final_channels * self.final_side**2
        layers.append(nn.Linear(flat, self.latent_dim))
        self.encoder = nn.Sequential(*layers)
        self.decoder_input = nn.Linear(self.latent_dim, flat)
        back = list(reversed(widths))
        layers = []
        for a, b in zip(back[:-1], back[1:]):
            layers += [ResidualBlock(a), nn.GroupNorm(_groups(a), a), nn.SiLU(), nn.ConvTranspose2d(a, b, 4, 2, 1)]
        layers.append(nn.Sigmoid())
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.encoder(self._pad(x))

    def decode(self, z: Tensor) -> Tensor:
        h = self.decoder_input(z).view(-1, self.final_channels, self.final_side, self.final_side)
        return self._crop(self.decoder(h))


class SelfAttention(nn.Module):
    """Single-head self-attention over the positions of a feature map (LDM's ``AttnBlock``):
    ``x + proj(softmax(q k^T / sqrt(C)) v)`` with q, k, v 1x1 convolutions of ``GroupNorm(x)``;
    ``(B, C, H, W)`` -> ``(B, C, H, W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        q, k, v = (rearrange(t, "b c h w -> b (h w) c") for t in self.qkv(self.norm(x)).chunk(3, dim=1))
        attended = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(rearrange(attended, "b (h w) c -> b c h w", h=height, w=width))


def _middle(channels: int, attention: bool) -> nn.Sequential:
    """LDM's middle block at the lowest resolution: resnet block, self-attention, resnet block."""
    return nn.Sequential(ResidualBlock(channels, channels), SelfAttention(channels) if attention else nn.Identity(),
                         ResidualBlock(channels, channels))


class LDMAutoencoder(ImageAutoencoder):
    """The LDM autoencoder (Rombach et al. 2022) adapted to small images and a flat latent, deterministic.

    ``level_channels = (c_0, ..., c_L)`` (base channels times the channel multipliers): a 3x3
    convolution to ``c_0``; at level ``i``, ``blocks_per_level`` resnet blocks to ``c_i`` then (all
    levels but the last) a stride-2 3x3 convolution; the middle block (resnet, self-attention,
    resnet); GroupNorm, SiLU, a 3x3 convolution to ``bottleneck_channels``; flatten and a linear map
    to the latent. A 32x32 image with 4 levels: 32 -> 16 -> 8 -> 4, ``bottleneck * 4 * 4 -> latent``.
    The decoder mirrors it: linear, 3x3 convolution to ``c_L``, the middle block, at each level
    ``blocks_per_level + 1`` resnet blocks then nearest-neighbour upsampling and a 3x3 convolution,
    GroupNorm, SiLU, a 3x3 convolution to the image channels and a sigmoid.
    """

    def __init__(self, latent_dim: int, channels: int, size: int, level_channels: Sequence[int] = (32, 64, 128, 128),
                 blocks_per_level: int = 1, attention: bool = True, bottleneck_channels: int = 8,
                 loss: str = "mse") -> None:
        level_channels = list(level_channels)
        downsamplings = len(level_channels) - 1
        super().__init__(latent_dim, channels, size, loss, multiple=2**downsamplings)
        self.final_side = self.padded_size // 2**downsamplings
        self.bottleneck = (int(bottleneck_channels), self.final_side, self.final_side)
        flat = self.bottleneck[0] * self.final_side**2

        layers: list[nn.Module] = [nn.Conv2d(self.channels, level_channels[0], 3, 1, 1)]
        previous = level_channels[0]
        for level, width in enumerate(level_channels):
            for _ in range(blocks_per_level):
                layers.append(ResidualBlock(previous, width))
                previous = width
            if level < downsamplings:
                layers.append(nn.Conv2d(width, width, 3, 2, 1))
        layers += [_middle(previous, attention), nn.GroupNorm(_groups(previous), previous), nn.SiLU(),
                   nn.Conv2d(previous, self.bottleneck[0], 3, 1, 1), nn.Flatten(), nn.Linear(flat, self.latent_dim)]
        self.encoder = nn.Sequential(*layers)

        self.decoder_input = nn.Linear(self.latent_dim, flat)
        layers = [nn.Conv2d(self.bottleneck[0], level_channels[-1], 3, 1, 1), _middle(level_channels[-1], attention)]
        previous = level_channels[-1]
        for level in reversed(range(len(level_channels))):
            width = level_channels[level]
            for _ in range(blocks_per_level + 1):
                layers.append(ResidualBlock(previous, width))
                previous = width
            if level > 0:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, 1, 1)]
        layers += [nn.GroupNorm(_groups(previous), previous), nn.SiLU(), nn.Conv2d(previous, self.channels, 3, 1, 1),
                   nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.encoder(self._pad(x))

    def decode(self, z: Tensor) -> Tensor:
        return self._crop(self.decoder(self.decoder_input(z).view(-1, *self.bottleneck)))
