"""Word-level caption vocabulary fitted with HuggingFace ``tokenizers``.

A :class:`Vocabulary` turns caption strings into fixed-length token-id rows and back:

    "A bird with red wings."  ->  [a, bird, with, red, wings, ., <eos>, <pad>, ..., <pad>]  (max_length ids)

- normalisation: NFKC, optionally lower-casing and replacing punctuation by spaces;
- pre-tokenisation: split at whitespace, then into words (letters/digits, with inner hyphens and
  apostrophes: ``medium-sized``, ``bird's``) and single punctuation marks;
- model: ``WordLevel`` fitted on the training captions (``min_frequency``, ``max_vocab``);
  words not in the vocabulary become ``<unk>``;
- post-processing: ``<eos>`` appended, then right-padded with ``<pad>`` to ``max_length``;
  longer captions are truncated to ``max_length - 1`` words and still end with ``<eos>``.

Special ids are fixed: ``<pad>`` = 0, ``<unk>`` = 1, ``<eos>`` = 2; words follow by decreasing
frequency. The whole tokenizer (vocabulary and pipeline) serialises to one JSON string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from torch import Tensor

__all__ = ["EOS", "EOS_ID", "PAD", "PAD_ID", "SPECIAL_TOKENS", "UNK", "UNK_ID", "Vocabulary"]

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, EOS)
PAD_ID, UNK_ID, EOS_ID = 0, 1, 2

# A word (letters/digits, inner hyphens and apostrophes allowed) or one punctuation mark.
_WORD_OR_MARK = r"\w+(?:['\-]\w+)*|[^\w\s]"
# Punctuation that is written attached to the previous word when ids are turned back into text.
_SPACE_BEFORE_CLOSING = re.compile(r" ([.,;:!?%)\]}])")
_SPACE_AFTER_OPENING = re.compile(r"([(\[{]) ")


class Vocabulary:
    """A fitted word-level tokenizer with fixed-length padding (wraps ``tokenizers.Tokenizer``)."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 (one word and <eos>), got {max_length}")
        for token, expected in zip(SPECIAL_TOKENS, (PAD_ID, UNK_ID, EOS_ID)):
            if tokenizer.token_to_id(token) != expected:
                raise ValueError(f"tokenizer has {token} at id {tokenizer.token_to_id(token)}, expected {expected}")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        # Padding/truncation follow max_length (they are also stored in the JSON).
        tokenizer.enable_truncation(max_length=self.max_length)
        tokenizer.enable_padding(length=self.max_length, pad_id=PAD_ID, pad_token=PAD)
        self._id_to_token = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]

    # ------------------------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        captions: Iterable[str],
        *,
        max_length: int = 32,
        min_frequency: int = 1,
        max_vocab: int | None = None,
        lowercase: bool = True,
        strip_punctuation: bool = False,
    ) -> Vocabulary:
        """Fit the word vocabulary on training captions (strings).

        ``min_frequency``: words seen fewer times become ``<unk>``. ``max_vocab``: keep at most this
        many words (the most frequent; special tokens not counted), None for no limit.
        """
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        steps = [normalizers.NFKC()]
        if lowercase:
            steps.append(normalizers.Lowercase())
        if strip_punctuation:
            steps.append(normalizers.Replace(Regex(r"[^\w\s]"), " "))
        tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_WORD_OR_MARK), "isolated")]
        )
        trainer = trainers.WordLevelTrainer(
            vocab_size=(max_vocab + len(SPECIAL_TOKENS)) if max_vocab is not None else 2**31 - 1,
            min_frequency=int(min_frequency),
            special_tokens=list(SPECIAL_TOKENS),
            show_progress=False,
        )
        tokenizer.train_from_iterator(_checked_strings(captions), trainer=trainer)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"$A {EOS}", special_tokens=[(EOS, EOS_ID)]
        )
        return cls(tokenizer, max_length)

    # ------------------------------------------------------------------------- serialisation
    def to_json(self) -> str:
        """The whole tokenizer (normaliser, vocabulary, padding, ...) as a JSON string."""
        return self.tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str, max_length: int) -> Vocabulary:
        return cls(Tokenizer.from_str(text), max_length)

    # --------------------------------------------------------------------------------- sizes
    def __len__(self) -> int:
        """Number of ids, special tokens included."""
        return len(self._id_to_token)

    @property
    def words(self) -> list[str]:
        """The fitted words (special tokens excluded), by id."""
        return self._id_to_token[len(SPECIAL_TOKENS):]

    # ------------------------------------------------------------------------------ encoding
    def encode(self, caption: str) -> Tensor:
        """One caption -> ``(max_length,)`` long ids."""
        (caption,) = _checked_strings([caption])
        return torch.tensor(self.tokenizer.encode(caption).ids, dtype=torch.long)

    def encode_batch(self, captions: Sequence[str]) -> Tensor:
        """Captions -> ``(N, max_length)`` long ids."""
        captions = list(_checked_strings(captions))
        if not captions:
            return torch.zeros(0, self.max_length, dtype=torch.long)
        return torch.tensor([e.ids for e in self.tokenizer.encode_batch(captions)], dtype=torch.long)

    def tokens(self, caption: str) -> list[str]:
        """The tokens of one caption (padding included), for inspection."""
        return self.tokenizer.encode(caption).tokens

    # ------------------------------------------------------------------------------ decoding
    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """One id row -> caption: words up to the first ``<eos>``/``<pad>``, joined by spaces,
        with closing punctuation attached to the word before it. Unknown words read ``<unk>``;
        ids outside the vocabulary read ``<unk>`` too."""
        words = []
        for i in (ids.tolist() if isinstance(ids, Tensor) else ids):
            i = int(i)
            if i in (EOS_ID, PAD_ID):
                break
            words.append(self._id_to_token[i] if 0 <= i < len(self._id_to_token) else UNK)
        text = " ".join(words)
        return _SPACE_AFTER_OPENING.sub(r"\1", _SPACE_BEFORE_CLOSING.sub(r"\1", text))

    def decode_batch(self, ids: Tensor) -> list[str]:
        """``(N, L)`` ids -> N captions."""
        return [self.decode(row) for row in ids.detach().cpu()]


def _checked_strings(values: Iterable[object]) -> Iterator[str]:
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str):
            raise TypeError(f"captions must be strings, got {type(value).__name__}: {value!r:.80}")
        yield str(value)
