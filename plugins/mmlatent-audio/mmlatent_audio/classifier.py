"""A small CNN that classifies waveforms ``(B, samples)`` through their log-mel spectrogram."""

from __future__ import annotations

from torch import Tensor, nn

from mmlatent_audio.features import LogMel

__all__ = ["AudioClassifier"]


class AudioClassifier(nn.Module):
    """Scaled log-mel ``(B, 1, n_mels, frames)`` standardised per item (loudness matters little for
    the class), three 3x3 conv blocks (32-64-128 channels, batch norm, ReLU, 2x2 max-pool), a 2x4
    adaptive average pool and a two-layer head -> logits ``(B, num_classes)``.
    :meth:`features` (the 128-d penultimate activations) is the space of the Frechet audio distance."""

    def __init__(self, num_classes: int, *, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
                 floor_db: float = -80.0, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.log_mel = LogMel(sample_rate, n_fft, hop_length, n_mels, floor_db)
        layers: list[nn.Module] = []
        previous = 1
        for width in widths:
            layers += [nn.Conv2d(previous, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
            previous = width
        layers += [nn.AdaptiveAvgPool2d((2, 4)), nn.Flatten(), nn.Dropout(0.25), nn.Linear(previous * 8, 128), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(128, num_classes))

    def features(self, waveform: Tensor) -> Tensor:
        """Waveforms ``(B, samples)`` -> penultimate activations ``(B, 128)``."""
        x = self.log_mel(waveform).unsqueeze(1)
        x = x - x.mean(dim=(1, 2, 3), keepdim=True)
        x = x / (x.std(dim=(1, 2, 3), keepdim=True) + 1e-3)
        return self.body(x)

    def forward(self, waveform: Tensor) -> Tensor:
        return self.head(self.features(waveform))
