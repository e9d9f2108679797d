"""The ``audio`` modality kind: options, preprocessing, the log-mel autoencoder, classifier, files.

Data space: mono waveforms, float32 batches ``(B, samples)`` with values in [-1, 1], ``samples =
round(sample_rate * duration)``. Raw values are padded with silence at the end or trimmed to that
length. Batches given to the pipeline may also be int16 PCM (read as x / 32768).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmlatent import Modality
from mmlatent_audio.autoencoder import AudioAutoencoder
from mmlatent_audio.classifier import AudioClassifier
from mmlatent_audio.embedding import SpeechEmbedding
from mmlatent_audio.features import LogMel
from mmlatent_audio.files import AUDIO_SUFFIXES, read_audio, spectrogram_grid, write_wav
from mmlatent_audio.options import AudioOptions

__all__ = ["RANGE_TOLERANCE", "AudioModality", "AudioOptions"]

#: Float samples given by users may leave [-1, 1] by this much (rounding); they are clamped.
RANGE_TOLERANCE = 1e-3
#: Integer PCM dtypes and the value that maps to 1.0.
_PCM_SCALE = {torch.int16: 32768.0, torch.int32: 2147483648.0}



class AudioModality(Modality):
    """Mono waveforms as float tensors ``(samples,)`` in [-1, 1] (see the module docstring).

    ``preprocess`` accepts 1-D arrays/tensors at ``sample_rate``, multi-channel ones ``(channels,
    samples)`` or ``(samples, channels)`` (mixed to mono), int16/int32 PCM, a ``(waveform,
    sample_rate)`` pair (resampled with torchaudio) and a path to an audio file.
    """

    file_suffixes = (*AUDIO_SUFFIXES, ".npy", ".safetensors")
    options: AudioOptions

    # ------------------------------------------------------------------------------------- data
    @property
    def item_shape(self) -> tuple[int]:
        return (self.options.samples,)

    def _fixed_length(self, mono: Tensor) -> Tensor:
        """``(..., n)`` -> ``(..., samples)``: trimmed, or padded with zeros at the end."""
        samples = self.options.samples
        if mono.shape[-1] >= samples:
            return mono[..., :samples].contiguous()
        return torch.nn.functional.pad(mono, (0, samples - mono.shape[-1]))

    def _resample(self, waveform: Tensor, rate: int) -> Tensor:
        if int(rate) == self.options.sample_rate:
            return waveform
        from torchaudio.functional import resample

        return resample(waveform, int(rate), self.options.sample_rate)

    def _to_float(self, samples: Tensor, source: str = "") -> Tensor:
        """PCM or float samples -> float32 in [-1, 1] (clamped within the tolerance), else ValueError."""
        if samples.dtype in _PCM_SCALE:
            return samples.to(torch.float32) / _PCM_SCALE[samples.dtype]
        if not samples.is_floating_point():
            raise ValueError(f"modality {self.name!r}: expected float samples in [-1, 1] or int16/int32 PCM, "
                             f"got {samples.dtype}{source}")
        samples = samples.to(torch.float32)
        if not samples.numel():
            return samples
        if not bool(torch.isfinite(samples).all()):
            raise ValueError(f"modality {self.name!r}: the audio holds NaN or infinite samples{source}")
        peak = float(samples.abs().max())
        if peak > 1.0 + RANGE_TOLERANCE:
            raise ValueError(f"modality {self.name!r}: float samples must lie in [-1, 1], got a peak of {peak:g}"
                             f"{source} (int16 PCM is read as x / 32768)")
        return samples.clamp(-1.0, 1.0) if peak > 1.0 else samples

    def _mono(self, waveform: Tensor) -> Tensor:
        """``(n,)``, ``(channels, n)`` or ``(n, channels)`` -> ``(n,)`` (channel mean)."""
        if waveform.dim() == 1:
            return waveform
        if waveform.dim() == 2:
            channels_first = waveform.shape[0] <= waveform.shape[1]
            return waveform.mean(0) if channels_first else waveform.mean(1)
        raise ValueError(f"modality {self.name!r}: expected a waveform (samples,) or (channels, samples), "
                         f"got shape {tuple(waveform.shape)}")

    def preprocess(self, value: Any) -> Tensor:
        rate = self.options.sample_rate
        if isinstance(value, (str, Path)):
            waveform, rate = read_audio(Path(value))
        elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], (int, np.integer)):
            waveform, rate = value
        else:
            waveform = value
        if isinstance(waveform, np.ndarray):
            waveform = torch.from_numpy(np.ascontiguousarray(waveform))
        if not torch.is_tensor(waveform):
            raise ValueError(f"modality {self.name!r}: expected a waveform array, a (waveform, sample_rate) pair "
                             f"or a path, got {type(value).__name__}")
        mono = self._mono(self._to_float(waveform))
        return self._fixed_length(self._resample(mono, int(rate)))

    def prepare_batch(self, batch: Any) -> Tensor:
        """Check and convert a batch given by a user: ``(N, samples)`` float in [-1, 1] or int16/int32
        PCM -> float32 ``(N, samples)`` in [-1, 1]."""
        x = super().prepare_batch(batch)
        return self._to_float(x)

    def augment(self, x: Tensor) -> Tensor:
        """When ``augment`` is on: per item a random gain in [0.5, 1], a shift of up to 10% of the
        duration (zeros shifted in) and Gaussian noise of std 0.002; else ``x``."""
        if not self.options.augment:
            return x
        batch, samples = x.shape
        gain = torch.empty(batch, 1, device=x.device).uniform_(0.5, 1.0)
        limit = max(1, samples // 10)
        shifts = torch.randint(-limit, limit + 1, (batch, 1)).to(x.device)
        source = torch.arange(samples, device=x.device) - shifts  # (batch, samples): where each sample comes from
        inside = (source >= 0) & (source < samples)
        shifted = x.gather(1, source.clamp(0, samples - 1)) * inside  # zeros shifted in
        return (shifted * gain + 0.002 * torch.randn_like(x)).clamp(-1.0, 1.0)

    # ------------------------------------------------------------------------------------ model
    def _feature_options(self) -> dict[str, Any]:
        o = self.options
        return {"sample_rate": o.sample_rate, "n_fft": o.n_fft, "hop_length": o.hop_length, "n_mels": o.n_mels,
                "floor_db": o.floor_db}

    def build_autoencoder(self) -> AudioAutoencoder:
        o = self.options
        return AudioAutoencoder(self.latent_dim, samples=o.samples, channels=o.channels, loss=o.loss,
                                griffin_lim_iters=o.griffin_lim_iters, **self._feature_options())

    def build_classifier(self, num_classes: int) -> nn.Module:
        return AudioClassifier(num_classes, **self._feature_options())

    def build_embedding(self, path: Path) -> nn.Module:
        """A wav2vec 2.0 / HuBERT encoder from the local file ``path``, for a Frechet audio distance
        (:class:`~mmlatent_audio.embedding.SpeechEmbedding`)."""
        return SpeechEmbedding.from_file(path, self.options.sample_rate)

    def log_mel(self, batch: Tensor) -> Tensor:
        """Waveforms ``(N, samples)`` -> scaled log-mel ``(N, n_mels, frames)`` (for pictures)."""
        return LogMel(**self._feature_options())(batch.float())

    # ----------------------------------------------------------------------------------- people
    def to_values(self, batch: Tensor) -> list[np.ndarray]:
        """Waveforms -> one float32 NumPy array ``(samples,)`` per item."""
        return [item.numpy() for item in batch.detach().float().cpu()]

    def render(self, batch: Tensor, path: Path) -> list[Path]:
        """Write ``<path>.png`` (a grid of the log-mel spectrograms) and one playable 16-bit WAV per
        item, ``<path>-000.wav``, ``<path>-001.wav``, ..."""
        path = Path(path)
        batch = batch.detach().float().cpu()
        written = [spectrogram_grid(self.log_mel(batch), path.with_suffix(".png"))]
        for index, waveform in enumerate(batch):
            written.append(write_wav(waveform, self.options.sample_rate, path.parent / f"{path.name}-{index:03d}.wav"))
        return written

    def read_file(self, path: Path) -> Tensor:
        """An audio file (WAV, FLAC, OGG: one item, mixed to mono, resampled, padded or trimmed) or a
        ``.npy`` / ``.safetensors`` array ``(samples,)`` or ``(N, samples)`` at ``sample_rate`` ->
        batch ``(N, samples)`` float32 in [-1, 1]. A missing file raises ``FileNotFoundError``; an
        unreadable one ``ValueError`` naming it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"modality {self.name!r}: no such file {str(path)!r}")
        suffix = path.suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            try:
                waveform, rate = read_audio(path)
            except ValueError as error:
                raise ValueError(f"modality {self.name!r}: {error}") from None
            return self.preprocess((waveform, rate)).unsqueeze(0)
        if suffix not in (".npy", ".safetensors"):
            raise ValueError(f"modality {self.name!r}: cannot read {path.name!r} "
                             f"(expected one of {', '.join(self.file_suffixes)})")
        raw = self.read_array(path)
        source = f" (in {path.name!r})"
        if raw.dim() == 1:
            raw = raw.unsqueeze(0)
        if raw.dim() != 2:
            raise ValueError(f"modality {self.name!r}: expected an array (samples,) or (N, samples), got shape "
                             f"{tuple(raw.shape)}{source}")
        return self._fixed_length(self._to_float(raw, source))
