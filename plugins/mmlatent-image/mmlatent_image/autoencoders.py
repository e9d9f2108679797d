"""Deterministic image autoencoders (the paper's, sized from the modality options).

All take and return float images ``(B, C, H, W)`` in [0, 1] (the decoders end with a sigmoid) and
map them to latents ``(B, latent_dim)``:

- :class:`MLPAutoencoder` — the MNIST one: flatten -> 400 -> latent, latent -> 400 -> pixels;
- :class:`ConvAutoencoder` — the SVHN one: 4x4 stride-2 convolutions with 32-64-128 channels, then
  a convolution whose kernel covers the remaining feature map (4x4 for 32x32 inputs, 2x2 for 16x16);
- :class:`ResNetAutoencoder` — CUB 64x64: stride-2 convolutions with a pre-activation residual block
  at every resolution, a linear map to the latent and the mirror image for the decoder.

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
from torch import Tensor, nn

from mmlatent import Autoencoder

__all__ = ["ConvAutoencoder", "ImageAutoencoder", "MLPAutoencoder", "ResNetAutoencoder"]


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
    """Pre-activation residual block: x + conv(SiLU(norm(conv(SiLU(norm(x)))))); shape-preserving."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


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
