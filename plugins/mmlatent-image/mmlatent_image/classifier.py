"""A small CNN that classifies images ``(B, C, H, W)`` in [0, 1] (coherence evaluation)."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ImageClassifier"]


class ImageClassifier(nn.Module):
    """Per-image standardisation (zero mean, unit variance over channels and pixels: colours and
    contrast matter little for the class), three 3x3 conv blocks (32-64-128 channels, batch norm,
    ReLU, 2x2 max-pool on sides >= 8), a 2x2 adaptive average pool and a two-layer head -> logits
    ``(B, num_classes)``. Works for any side >= 4."""

    def __init__(self, channels: int, size: int, num_classes: int, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        layers: list[nn.Module] = []
        side, previous = int(size), int(channels)
        for width in widths:
            layers += [nn.Conv2d(previous, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU()]
            if side >= 8:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            previous = width
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Linear(previous * 4, 128), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(128, num_classes))

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations ``(B, 128)`` (Frechet distances in the classifier's feature space)."""
        x = x - x.mean(dim=(1, 2, 3), keepdim=True)
        x = x / (x.std(dim=(1, 2, 3), keepdim=True) + 1e-3)
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
