"""The audio autoencoder: a deterministic convolutional autoencoder on scaled log-mel spectrograms.

``encode``: waveforms ``(B, samples)`` -> scaled log-mel ``(B, 1, n_mels, frames)``, padded with
silence (0) to multiples of ``2^stages`` -> ``stages`` stride-2 convolutions (4x4, each followed by
GroupNorm and SiLU) -> flatten -> linear -> latents ``(B, latent_dim)``.
``decode`` mirrors it with transposed convolutions (the last one straight to one channel) and returns the scaled log-mel ``(B, n_mels,
frames)`` (cropped back); ``to_data`` turns that into waveforms with :class:`MelInversion`.
The stage-1 loss compares log-mels (the waveform's phase is not modelled: Griffin-Lim recovers one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from mmlatent import Autoencoder
from mmlatent_audio.features import LogMel, MelInversion, frame_count

__all__ = ["AudioAutoencoder"]


def _block(in_channels: int, out_channels: int, down: bool) -> nn.Sequential:
    resample = (nn.Conv2d(in_channels, out_channels, 4, 2, 1) if down
                else nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1))
    return nn.Sequential(resample, nn.GroupNorm(min(8, out_channels), out_channels), nn.SiLU())


class AudioAutoencoder(Autoencoder):
    """Log-mel convolutional autoencoder (see the module docstring).

    Args:
        latent_dim: size of the latent vector.
        sample_rate, n_fft, hop_length, n_mels, floor_db: the log-mel features (:class:`LogMel`).
        samples: waveform length of the data space.
        channels: channels of the stride-2 stages, e.g. ``(32, 64, 128)``.
        loss: ``mse`` (squared error) or ``l1`` on the scaled log-mel, summed over bins and frames.
        griffin_lim_iters: iterations of the waveform reconstruction in :meth:`to_data`.
    """

    def __init__(self, latent_dim: int, *, sample_rate: int, samples: int, n_fft: int, hop_length: int, n_mels: int,
                 channels: Sequence[int] = (32, 64, 128), floor_db: float = -80.0, loss: str = "mse",
                 griffin_lim_iters: int = 32) -> None:
        super().__init__(latent_dim)
        self.loss = loss
        self.features = LogMel(sample_rate, n_fft, hop_length, n_mels, floor_db)
        self.inversion = MelInversion(sample_rate, n_fft, hop_length, n_mels, samples, floor_db, griffin_lim_iters)
        self.shape = (n_mels, frame_count(samples, hop_length))
        step = 2 ** len(channels)
        self.padded = tuple(math.ceil(side / step) * step for side in self.shape)
        self.bottom = (channels[-1], self.padded[0] // step, self.padded[1] // step)
        flat = self.bottom[0] * self.bottom[1] * self.bottom[2]
        widths = [1, *channels]
        self.encoder = nn.Sequential(*[_block(a, b, down=True) for a, b in zip(widths[:-1], widths[1:])], nn.Flatten(),
                                     nn.Linear(flat, latent_dim))
        self.project = nn.Sequential(nn.Linear(latent_dim, flat), nn.SiLU())
        reverse = list(reversed(channels))
        self.decoder = nn.Sequential(*[_block(a, b, down=False) for a, b in zip(reverse[:-1], reverse[1:])],
                                     nn.ConvTranspose2d(reverse[-1], 1, 4, 2, 1))

    def log_mel(self, waveform: Tensor) -> Tensor:
        """Waveforms ``(B, samples)`` -> scaled log-mel ``(B, n_mels, frames)``."""
        return self.features(waveform)

    def encode(self, x: Tensor) -> Tensor:
        spectrogram = self.log_mel(x).unsqueeze(1)
        pad_mels, pad_frames = self.padded[0] - self.shape[0], self.padded[1] - self.shape[1]
        return self.encoder(F.pad(spectrogram, (0, pad_frames, 0, pad_mels)))

    def decode(self, z: Tensor) -> Tensor:
        hidden = self.project(z).view(-1, *self.bottom)
        return self.decoder(hidden)[:, 0, : self.shape[0], : self.shape[1]]

    def to_data(self, decoded: Tensor) -> Tensor:
        """Scaled log-mel ``(B, n_mels, frames)`` -> waveforms ``(B, samples)`` (Griffin-Lim)."""
        return self.inversion(decoded)

    def reconstruction_loss(self, x: Tensor, decoded: Tensor) -> Tensor:
        error = decoded - self.log_mel(x)
        per_item = error.abs() if self.loss == "l1" else error.pow(2)
        return per_item.flatten(1).sum(1).mean()
