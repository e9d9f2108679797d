"""Log-mel features of waveforms, and their inversion back to waveforms (Griffin-Lim).

A waveform batch ``(B, samples)`` (float, [-1, 1]) becomes a *scaled log-mel* batch ``(B, n_mels,
frames)``: the power mel spectrogram in decibels (reference power 1), clamped below at
``floor_db`` and mapped linearly so that ``floor_db`` -> 0 and 0 dB -> 1,

    scaled = (max(10 log10(mel), floor_db) - floor_db) / -floor_db,

with ``frames = samples // hop_length + 1`` (centred frames). Silence is 0, a full-scale tone
about 1.5 (the power of a Hann-windowed frame reaches ``(n_fft / 4)^2`` for a full-scale sine).

:class:`MelInversion` goes back: decibels -> power mel -> a linear-frequency power spectrogram by
non-negative least squares (:func:`nonnegative_mel_inverse`) -> a waveform by Griffin-Lim
(torchaudio's ``GriffinLim``, zero initial phase, so the result is deterministic). torchaudio's
``InverseMelScale`` solves the unconstrained least-squares problem and clamps negative powers to 0
afterwards: on a 500 Hz tone at 8 kHz its resynthesis is 0.46 off the original's scaled log-mel
(mean absolute difference) against 0.09 with the non-negative solution (0.03 from the true
spectrogram), so the constrained solution is computed here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchaudio import transforms

__all__ = ["LogMel", "MelInversion", "frame_count", "nonnegative_mel_inverse"]

#: FISTA iterations of :func:`nonnegative_mel_inverse`.
NNLS_ITERATIONS = 100


def frame_count(samples: int, hop_length: int) -> int:
    """Frames of a centred STFT of ``samples`` samples."""
    return samples // hop_length + 1


def nonnegative_mel_inverse(filters: Tensor, power_mel: Tensor, iterations: int = NNLS_ITERATIONS) -> Tensor:
    """Power mel ``(B, n_mels, frames)`` -> power spectrogram ``(B, n_freqs, frames)``, the
    non-negative ``S`` minimising ``||filters^T S - mel||^2`` (``filters``: the mel filter bank
    ``(n_freqs, n_mels)``), by accelerated projected gradient (FISTA) from the clamped
    pseudo-inverse solution."""
    forward = filters.T.to(power_mel.dtype)  # (n_mels, n_freqs)
    step = 1.0 / float(torch.linalg.matrix_norm(forward, 2) ** 2)
    estimate = (torch.linalg.pinv(forward) @ power_mel).clamp_min(0.0)
    point, momentum = estimate, 1.0
    for _ in range(iterations):
        gradient = forward.T @ (forward @ point - power_mel)
        updated = (point - step * gradient).clamp_min(0.0)
        next_momentum = (1.0 + math.sqrt(1.0 + 4.0 * momentum * momentum)) / 2.0
        point = updated + (momentum - 1.0) / next_momentum * (updated - estimate)
        estimate, momentum = updated, next_momentum
    return estimate


def own_buffers(module: nn.Module) -> nn.Module:
    """Give every buffer of ``module`` its own storage (torchaudio's periodic windows are views of a
    longer tensor, which safetensors refuses to save); returns ``module``."""
    for owner in module.modules():
        for name, buffer in list(owner.named_buffers(recurse=False)):
            owner.register_buffer(name, buffer.clone())
    return module


class LogMel(nn.Module):
    """Waveforms ``(B, samples)`` -> scaled log-mel ``(B, n_mels, frames)`` (see the module docstring).

    No parameters (its mel filters are a buffer): it is part of the autoencoder and the classifier
    but never trained.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, floor_db: float = -80.0) -> None:
        super().__init__()
        self.floor_db = float(floor_db)
        self.mel = own_buffers(transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft,
                                                         hop_length=hop_length, n_mels=n_mels, power=2.0))

    def forward(self, waveform: Tensor) -> Tensor:
        decibels = 10.0 * torch.log10(self.mel(waveform.float()).clamp_min(1e-12))
        return (decibels.clamp_min(self.floor_db) - self.floor_db) / -self.floor_db


class MelInversion(nn.Module):
    """Scaled log-mel ``(B, n_mels, frames)`` -> waveforms ``(B, samples)`` in [-1, 1].

    ``iterations`` Griffin-Lim iterations (torchaudio's default momentum 0.99). Values below 0
    (below the floor) are silence. Runs under ``torch.no_grad`` semantics: it is for listening and
    for evaluation, not for gradients.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, samples: int,
                 floor_db: float = -80.0, iterations: int = 32) -> None:
        super().__init__()
        self.floor_db = float(floor_db)
        self.samples = int(samples)
        self.mel_scale = transforms.MelScale(n_mels=n_mels, sample_rate=sample_rate, n_stft=n_fft // 2 + 1)
        self.griffin_lim = own_buffers(transforms.GriffinLim(n_fft=n_fft, hop_length=hop_length, power=2.0,
                                                             n_iter=iterations, rand_init=False, length=samples))

    @torch.no_grad()
    def forward(self, scaled: Tensor) -> Tensor:
        decibels = scaled.float().clamp_min(0.0) * -self.floor_db + self.floor_db
        power_mel = torch.pow(10.0, decibels / 10.0)
        power = nonnegative_mel_inverse(self.mel_scale.fb, power_mel)
        return self.griffin_lim(power).clamp(-1.0, 1.0)
