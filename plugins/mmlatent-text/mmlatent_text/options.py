"""The options of the ``text`` kind (pydantic only: registering the plugin imports no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TextOptions"]


class TextOptions(BaseModel):
    """Options of a ``text`` modality (``modalities.<name>.options`` in a recipe)."""

    model_config = ConfigDict(extra="forbid")

    # vocabulary and tokenisation
    max_length: int = Field(32, ge=2, le=4096, description="token ids per caption, <eos> included (CUB: 32)")
    min_frequency: int = Field(
        3, ge=1, description="words seen fewer times in the training captions become <unk> (CUB: 3, ~1,590 words)"
    )
    max_vocab: int | None = Field(
        None, ge=1, description="keep at most this many words, the most frequent (special tokens not counted)"
    )
    lowercase: bool = Field(True, description="lower-case captions before tokenising")
    strip_punctuation: bool = Field(False, description="replace punctuation by spaces (else punctuation marks are tokens)")
    # autoencoder
    encoder: Literal["conv", "bow"] = Field(
        "conv",
        description="`conv`: strided convolutions over the positions (word order kept in the latent); `bow`: the "
        "mean of the token embeddings, linearly projected (a bag of words: the latent is linear in the word "
        "counts, so captions sharing words lie close and a class named by a word is linearly readable; the "
        "decoder restores the order)",
    )
    embed_dim: int = Field(128, ge=1, description="token embedding size")
    channels: int = Field(256, ge=1, description="channels of the convolutions")
    depth: int = Field(3, ge=0, le=8, description="stride-2 (transposed) convolutions in the encoder (decoder)")
    pad_weight: float = Field(
        0.0,
        ge=0.0,
        description="weight of <pad> positions in the cross-entropy (0: ignore them, <eos> still counts; 1: count them)",
    )
