"""1-D convolutional autoencoder over token embeddings.

Shapes (B batch, L = max_length, E = embed_dim, C = channels, V = vocabulary size, k = depth,
L' = L rounded up to a multiple of 2^k, S = L' / 2^k):

    encode:  ids (B, L) long -> embedding (B, E, L') -> conv3 -> k x [stride-2 conv4]
             -> (B, C, S) -> flatten -> linear -> z (B, latent_dim)
    encode (encoder="bow"): ids (B, L) -> embedding (B, L, E) -> mean over the non-pad positions
             (words and <eos>) -> (B, E) -> linear -> z (B, latent_dim)
    decode:  z (B, latent_dim) -> linear -> (B, C, S) -> k x [stride-2 transposed conv4]
             -> conv3 -> conv1 -> logits (B, L, V)

The bag-of-words encoder makes z a linear function of the word counts: on the quickstart's 120 digit
captions (12 templates x 10 digits, 16-d latent) a linear probe reads the digit from z on 100% of
held-out captions against 40% for the convolutional encoder (both 100% by 5 nearest neighbours,
both reconstruct every caption), and the score network then conditions on the digit far better.
The decoder is the same; it restores the word order, which is what a bag of words cannot carry (a
sentence and its permutations share one latent), so keep ``conv`` where order carries meaning.

Every hidden convolution is followed by GroupNorm and SiLU (no batch statistics: the decoder
behaves the same on one sample and on a batch). Sequences are right-padded with ``<pad>`` up to L'
inside the encoder and the decoder output is cropped back to L.

The reconstruction loss is token cross-entropy, summed over positions and averaged over the batch.
Positions holding ``<pad>`` (after ``<eos>``) are weighted by ``pad_weight``: 0 (the default)
ignores them, 1 counts them like words. Ignoring them reconstructs better and sooner (measured on
2,000 synthetic bird captions, 500 held out: 99.3% held-out token accuracy after 250 steps vs 80%
when pads count); the decoder only has to place ``<eos>``, and ``to_data`` pads after it. ``to_data`` takes the argmax and writes ``<pad>`` after the first
``<eos>``/``<pad>``, so decoded batches have exactly the layout the preprocessing produces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmlatent import Autoencoder
from torch import Tensor, nn

from mmlatent_text.vocabulary import EOS_ID, PAD_ID

__all__ = ["TextAutoencoder", "clean_after_eos", "token_accuracy"]


def _groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


def _conv_block(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.GroupNorm(_groups(channels), channels), nn.SiLU())


class TextAutoencoder(Autoencoder):
    """Deterministic caption autoencoder: ids ``(B, L)`` <-> latents ``(B, latent_dim)``."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        latent_dim: int,
        *,
        embed_dim: int = 128,
        channels: int = 256,
        depth: int = 3,
        pad_weight: float = 0.0,
        encoder: str = "conv",
    ) -> None:
        super().__init__(latent_dim)
        self.vocab_size = int(vocab_size)
        self.max_length = int(max_length)
        self.pad_weight = float(pad_weight)
        factor = 2**depth
        self.padded_length = -(-self.max_length // factor) * factor
        self.bottleneck_length = self.padded_length // factor
        self.channels = int(channels)

        if encoder not in ("conv", "bow"):
            raise ValueError(f"encoder must be 'conv' or 'bow', got {encoder!r}")
        self.encoder_kind = encoder
        self.embedding = nn.Embedding(self.vocab_size, embed_dim, padding_idx=PAD_ID)
        if encoder == "conv":
            self.encoder = nn.Sequential(
                _conv_block(nn.Conv1d(embed_dim, channels, 3, padding=1), channels),
                *[_conv_block(nn.Conv1d(channels, channels, 4, stride=2, padding=1), channels) for _ in range(depth)],
            )
            self.to_latent = nn.Linear(channels * self.bottleneck_length, self.latent_dim)
        else:
            self.to_latent = nn.Linear(embed_dim, self.latent_dim)

        self.from_latent = nn.Linear(self.latent_dim, channels * self.bottleneck_length)
        self.decoder = nn.Sequential(
            nn.SiLU(),
            *[
                _conv_block(nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1), channels)
                for _ in range(depth)
            ],
            _conv_block(nn.Conv1d(channels, channels, 3, padding=1), channels),
        )
        self.to_logits = nn.Conv1d(channels, self.vocab_size, 1)

    # ---------------------------------------------------------------------------------- model
    def encode(self, x: Tensor) -> Tensor:
        """Token ids ``(B, L)`` (long, or float holding integers) -> latents ``(B, latent_dim)``."""
        if x.dim() != 2 or x.shape[1] != self.max_length:
            raise ValueError(f"text autoencoder expects token ids (B, {self.max_length}), got {tuple(x.shape)}")
        ids = x.long()
        if self.encoder_kind == "bow":
            present = (ids != PAD_ID).unsqueeze(-1).to(self.embedding.weight.dtype)  # (B, L, 1)
            summed = (self.embedding(ids) * present).sum(1)  # (B, E)
            return self.to_latent(summed / present.sum(1).clamp_min(1.0))
        if self.padded_length > self.max_length:
            ids = F.pad(ids, (0, self.padded_length - self.max_length), value=PAD_ID)
        h = self.embedding(ids).transpose(1, 2)  # (B, E, L')
        h = self.encoder(h)  # (B, C, S)
        return self.to_latent(h.flatten(1))

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, latent_dim)`` -> logits ``(B, L, V)``."""
        h = self.from_latent(z).view(z.shape[0], self.channels, self.bottleneck_length)
        h = self.decoder(h)  # (B, C, L')
        logits = self.to_logits(h)[:, :, : self.max_length]  # (B, V, L)
        return logits.transpose(1, 2)

    def to_data(self, decoded: Tensor) -> Tensor:
        """Logits ``(B, L, V)`` -> ids ``(B, L)`` long (argmax; ``<pad>`` after the first end)."""
        return clean_after_eos(decoded.argmax(-1))

    # ----------------------------------------------------------------------------------- loss
    def reconstruction_loss(self, x: Tensor, decoded: Tensor) -> Tensor:
        """Token cross-entropy: summed over positions (pad positions weighted by ``pad_weight``),
        averaged over the batch. ``x``: ids ``(B, L)``; ``decoded``: logits ``(B, L, V)``."""
        target = x.long()
        ce = F.cross_entropy(decoded.transpose(1, 2), target, reduction="none")  # (B, L)
        if self.pad_weight != 1.0:
            weight = torch.where(target == PAD_ID, self.pad_weight, 1.0).to(ce.dtype)
            ce = ce * weight
        return ce.sum(1).mean()


def clean_after_eos(ids: Tensor) -> Tensor:
    """Ids ``(B, L)`` -> the same with every position after the first ``<eos>`` or ``<pad>`` set to ``<pad>``."""
    ended = (ids == EOS_ID) | (ids == PAD_ID)
    after = (ended.long().cumsum(1) - ended.long()) > 0  # strictly after the first end
    return ids.masked_fill(after, PAD_ID)


def token_accuracy(target: Tensor, predicted: Tensor) -> float:
    """Fraction of non-pad target positions (words and ``<eos>``) predicted exactly. ``(B, L)`` ids."""
    mask = target != PAD_ID
    return float((predicted[mask] == target[mask]).float().mean()) if mask.any() else 1.0
