"""The ``text`` modality kind: short captions as fixed-length token ids.

Data space: long ids ``(B, max_length)`` in [0, vocabulary size): words, then ``<eos>``, then
``<pad>`` (see :mod:`mmlatent_text.vocabulary`). The vocabulary is fitted on the training captions by
:meth:`TextModality.fit` (the core calls it once) and travels as JSON in the run directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from mmlatent import Modality
from torch import Tensor, nn

from mmlatent_text.autoencoder import TextAutoencoder
from mmlatent_text.classifier import TextClassifier
from mmlatent_text.files import read_captions, write_captions_png, write_captions_txt
from mmlatent_text.vocabulary import Vocabulary
from mmlatent_text.options import TextOptions

__all__ = ["STATE_FORMAT", "TextModality", "TextOptions"]

STATE_FORMAT = "mmlatent-text/vocabulary/1"



class TextModality(Modality):
    """Captions <-> ids ``(B, max_length)`` long; a fitted word vocabulary; conv1d autoencoder."""

    needs_fit = True
    file_suffixes = (".txt", ".npy", ".safetensors")

    options: TextOptions

    def __init__(self, name: str, options: TextOptions, latent_dim: int) -> None:
        super().__init__(name, options, latent_dim)
        self._vocabulary: Vocabulary | None = None

    # ----------------------------------------------------------------------------- fitted state
    def fit(self, values: Iterable[Any]) -> None:
        """Fit the word vocabulary on the training captions (strings)."""
        o = self.options
        try:
            vocabulary = Vocabulary.fit(
                values,
                max_length=o.max_length,
                min_frequency=o.min_frequency,
                max_vocab=o.max_vocab,
                lowercase=o.lowercase,
                strip_punctuation=o.strip_punctuation,
            )
        except TypeError as error:
            raise TypeError(f"modality {self.name!r}: {error}") from None
        if not vocabulary.words:
            raise ValueError(
                f"modality {self.name!r}: no word of the training captions is seen at least "
                f"min_frequency={o.min_frequency} times (empty vocabulary)"
            )
        self._vocabulary = vocabulary

    @property
    def is_fitted(self) -> bool:
        return self._vocabulary is not None

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            raise RuntimeError(
                f"modality {self.name!r}: the vocabulary is not fitted yet "
                "(call fit(training captions) or load_state_dict(saved state) first)"
            )
        return self._vocabulary

    def state_dict(self) -> dict[str, Any]:
        """``{"format", "max_length", "vocab_size", "tokenizer": <tokenizers JSON string>}`` ({} before fit)."""
        if self._vocabulary is None:
            return {}
        return {
            "format": STATE_FORMAT,
            "max_length": self._vocabulary.max_length,
            "vocab_size": len(self._vocabulary),
            "tokenizer": self._vocabulary.to_json(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            self._vocabulary = None
            return
        if state.get("format") != STATE_FORMAT or "tokenizer" not in state:
            raise ValueError(
                f"modality {self.name!r}: not a text vocabulary state "
                f"(format {state.get('format')!r}, expected {STATE_FORMAT!r})"
            )
        if int(state.get("max_length", self.options.max_length)) != self.options.max_length:
            raise ValueError(
                f"modality {self.name!r}: the saved vocabulary was fitted with max_length="
                f"{state['max_length']}, the options say {self.options.max_length}"
            )
        vocabulary = Vocabulary.from_json(state["tokenizer"], self.options.max_length)
        if "vocab_size" in state and int(state["vocab_size"]) != len(vocabulary):
            raise ValueError(
                f"modality {self.name!r}: corrupt vocabulary state "
                f"({len(vocabulary)} ids, the state says {state['vocab_size']})"
            )
        self._vocabulary = vocabulary

    # ------------------------------------------------------------------------------------- data
    def preprocess(self, value: Any) -> Tensor:
        """Caption string -> ids ``(max_length,)`` long."""
        try:
            return self.vocabulary.encode(value)
        except TypeError as error:
            raise TypeError(f"modality {self.name!r}: {error}") from None

    @property
    def item_shape(self) -> tuple[int, ...]:
        return (self.options.max_length,)

    def prepare_batch(self, batch: Any) -> Tensor:
        """Check a batch of token ids given by a user: ``(N, max_length)`` integers in
        [0, vocabulary size) -> the same as long. Float or bool batches and ids outside the
        vocabulary are errors naming the valid range."""
        ids = super().prepare_batch(batch)
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise ValueError(
                f"modality {self.name!r}: expected integer token ids (N, {self.options.max_length}), got {ids.dtype}"
            )
        size = len(self.vocabulary)
        if ids.numel():
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= size:
                raise ValueError(
                    f"modality {self.name!r}: token ids must lie in [0, {size}) (the vocabulary size), "
                    f"got ids in [{low}, {high}]"
                )
        return ids.long()

    # ------------------------------------------------------------------------------------ model
    def build_autoencoder(self) -> TextAutoencoder:
        o = self.options
        return TextAutoencoder(
            len(self.vocabulary),
            o.max_length,
            self.latent_dim,
            embed_dim=o.embed_dim,
            channels=o.channels,
            depth=o.depth,
            pad_weight=o.pad_weight,
            encoder=o.encoder,
        )

    def build_classifier(self, num_classes: int) -> nn.Module:
        """Ids ``(B, max_length)`` -> logits ``(B, num_classes)``."""
        return TextClassifier(len(self.vocabulary), num_classes)

    # ----------------------------------------------------------------------------------- people
    def to_values(self, batch: Tensor) -> list[str]:
        """Ids ``(B, L)`` (or logits ``(B, L, V)``, or one row ``(L,)``) -> B captions."""
        if batch.dim() == 3:
            batch = batch.argmax(-1)
        if batch.dim() == 1:
            batch = batch.unsqueeze(0)
        return self.vocabulary.decode_batch(batch.long())

    def render(self, batch: Tensor, path: Path) -> list[Path]:
        """Write ``<path>.txt`` (one caption per line) and ``<path>.png`` (the captions drawn)."""
        path = Path(path)
        captions = self.to_values(batch)
        txt = write_captions_txt(captions, path.with_name(path.name + ".txt"))
        png = write_captions_png(captions, path.with_name(path.name + ".png"), title=f"{self.name} ({len(captions)})")
        return [txt, png]

    def read_file(self, path: Path) -> Tensor:
        """``.txt`` (one caption per line; blank lines skipped) -> ids ``(N, max_length)`` long.
        ``.npy``/``.safetensors`` files hold ids already (checked by :meth:`prepare_batch`).
        A missing file raises ``FileNotFoundError``; an unreadable one ``ValueError`` naming it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"modality {self.name!r}: no such file {str(path)!r}")
        if path.suffix.lower() != ".txt":
            batch = super().read_file(path)
            try:
                return self.prepare_batch(batch)
            except ValueError as error:
                raise ValueError(f"{error} (in {path.name!r})") from None
        try:
            captions = read_captions(path)
        except ValueError as error:
            raise ValueError(f"modality {self.name!r}: {error}") from None
        if not captions:
            raise ValueError(f"modality {self.name!r}: {path.name!r} holds no caption (one per line expected)")
        return self.vocabulary.encode_batch(captions)
