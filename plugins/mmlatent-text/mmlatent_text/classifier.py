"""Small 1-D CNN caption classifier (for cross-modal coherence).

    ids (B, L) long -> embedding (B, E, L) -> 2 x [conv3 + GroupNorm + SiLU] (B, C, L)
    -> max over non-pad positions (B, C) -> dropout -> linear -> logits (B, num_classes)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlatent_text.vocabulary import PAD_ID

__all__ = ["TextClassifier"]


class TextClassifier(nn.Module):
    """Caption classifier: token ids ``(B, L)`` -> class logits ``(B, num_classes)``."""

    def __init__(
        self, vocab_size: int, num_classes: int, *, embed_dim: int = 64, channels: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.convolutions = nn.Sequential(
            nn.Conv1d(embed_dim, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.SiLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def features(self, x: Tensor) -> Tensor:
        """Pooled features ``(B, C)`` of ids ``(B, L)`` (the classifier's penultimate activations,
        used by the core for Frechet distances in classifier space)."""
        ids = x.long()
        h = self.convolutions(self.embedding(ids).transpose(1, 2))  # (B, C, L)
        pad = (ids == PAD_ID).unsqueeze(1)  # (B, 1, L)
        all_pad = pad.all(dim=2, keepdim=True)  # an empty caption: pool over everything
        h = h.masked_fill(pad & ~all_pad, torch.finfo(h.dtype).min)
        return h.amax(dim=2)

    def forward(self, x: Tensor) -> Tensor:
        """Ids ``(B, L)`` -> logits ``(B, num_classes)``."""
        return self.head(self.features(x))
