"""``digits_pair``: an offline MNIST-SVHN look-alike built from scikit-learn's 1,797 real digits.

- ``gray``: the 8x8 digit (values 0..16) upsampled bilinearly to ``size`` x ``size``, uint8 ``(size, size)``;
- ``color``: ANOTHER digit of the same class rendered like an SVHN crop: random foreground and
  background colours at least ``min_contrast`` apart in luma, a shift of up to ``max_shift`` pixels,
  Gaussian noise of std ``noise``; uint8 ``(size, size, 3)``;
- ``caption`` (with ``captions: true``): a short English sentence naming the digit, in varied
  wording ("a handwritten seven", "the digit 7 written by hand", ...);
- ``label``: the digit class.

The digits are split first (stratified by class, ``test_size`` digits for test, ``val_fraction`` of
the rest for ``val``; ``val`` is empty when ``val_fraction`` is 0), then paired inside each split like MNIST-SVHN: every gray digit appears in
``k`` pairs (``k_test`` in val/test), each time with a different-digit, same-class colour rendering.
Test digits never appear in train or val. Each digit has ``color_variants`` fixed colour renderings,
drawn once from the seed: everything (split, renderings, pairs, captions) is a function of ``seed``.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from mmlatent.extras import require
from mmlatent_image.datasets.base import IndexedArrays
from mmlatent_image.datasets.pairing import pair_same_class
from mmlatent_image.options import DIGITS_SPLITS as SPLITS
from mmlatent_image.options import DigitsPairOptions, digits_pair_fields

__all__ = [
    "DigitsPairOptions", "build_digits_pair", "digit_caption", "digits_pair_fields", "render_dataset_digits",
    "render_digits", "scikit_learn_digits", "split_digits",
]

_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEMPLATES = (
    "a handwritten {w}",
    "the digit {d} written by hand",
    "{a}, written by hand",
    "a hand-drawn {w}",
    "the number {w}",
    "a picture of the digit {w}",
    "this is the number {d}",
    "the handwritten digit {w}",
    "an image of {a}",
    "someone wrote the number {w}",
    "{a} drawn with a pen",
    "a scribbled digit {d}",
)
_LUMA = np.array([0.299, 0.587, 0.114])



@functools.lru_cache(maxsize=1)
def scikit_learn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: read-only images float32 ``(1797, 8, 8)`` in [0, 1], labels ``(1797,)``."""
    require("sklearn", feature="the digits_pair dataset", install="pip install scikit-learn")
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _upsample(images: np.ndarray, size: int) -> torch.Tensor:
    """``(N, 8, 8)`` in [0, 1] -> float ``(N, size, size)`` in [0, 1]."""
    x = torch.from_numpy(np.array(images, dtype=np.float32))[:, None]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0.0, 1.0)[:, 0]


def _contrasting_colours(rng: np.random.Generator, n: int, min_contrast: float) -> tuple[np.ndarray, np.ndarray]:
    fg, bg = rng.random((n, 3)), rng.random((n, 3))
    todo = np.abs((fg - bg) @ _LUMA) < min_contrast
    while todo.any():
        m = int(todo.sum())
        fg[todo], bg[todo] = rng.random((m, 3)), rng.random((m, 3))
        todo = np.abs((fg - bg) @ _LUMA) < min_contrast
    return fg, bg


def _shift(masks: np.ndarray, dy: np.ndarray, dx: np.ndarray, max_shift: int) -> np.ndarray:
    """Shift each ``(size, size)`` mask by its own (dy, dx), filling with zeros."""
    if max_shift == 0:
        return masks
    m, size = max_shift, masks.shape[-1]
    padded = np.pad(masks, ((0, 0), (m, m), (m, m)))
    out = np.empty_like(masks)
    for sy in range(-m, m + 1):
        for sx in range(-m, m + 1):
            sel = np.flatnonzero((dy == sy) & (dx == sx))
            out[sel] = padded[sel, m - sy : m - sy + size, m - sx : m - sx + size]
    return out


def render_digits(images: np.ndarray, options: DigitsPairOptions, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Digits ``(N, 8, 8)`` in [0, 1] -> gray uint8 ``(N, S, S)`` and colour uint8 ``(N * V, S, S, 3)``.

    Colour rendering ``j * V + v`` is variant ``v`` of digit ``j`` (V = ``color_variants``).
    """
    size, variants = options.size, options.color_variants
    masks = _upsample(images, size).numpy()
    gray = (masks * 255.0).round().astype(np.uint8)
    n = len(images) * variants
    fg, bg = _contrasting_colours(rng, n, options.min_contrast)
    dy, dx = rng.integers(-options.max_shift, options.max_shift + 1, size=(2, n))
    shifted = _shift(np.repeat(masks, variants, axis=0), dy, dx, options.max_shift)[..., None]  # (n, S, S, 1)
    fg = fg.astype(np.float32)[:, None, None, :]
    bg = bg.astype(np.float32)[:, None, None, :]
    colour = bg + (fg - bg) * shifted
    if options.noise > 0:
        colour += rng.normal(0.0, options.noise, size=colour.shape).astype(np.float32)
    colour = (np.clip(colour, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return gray, colour


def render_dataset_digits(options: DigitsPairOptions, images: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The renderings every split indexes: gray uint8 ``(N, S, S)``, colour uint8 ``(N * V, S, S, 3)`` (see
    :func:`render_digits`) of scikit-learn's digits, or of ``images`` ``(N, 8, 8)`` in [0, 1] in their place.
    Each rendering's colours, shift and noise are drawn from the seed, not from the digits, so ``images``
    changes only the digit shapes: e.g. the renderings an ideal code of those shapes would give."""
    if images is None:
        images = scikit_learn_digits()[0]
    return render_digits(images, options, np.random.default_rng([options.seed, 1]))


def digit_caption(label: int, template: int) -> str:
    """Caption ``template`` (index into the template list, modulo its length) for digit ``label``."""
    word = _WORDS[label]
    article = "an" if word[0] in "aeiou" else "a"
    return _TEMPLATES[template % len(_TEMPLATES)].format(w=word, d=label, a=f"{article} {word}")


@functools.lru_cache(maxsize=4)
def _split_indices(seed: int, test_size: int, val_fraction: float) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    _, labels = scikit_learn_digits()
    everything = np.arange(len(labels))
    train, test = train_test_split(everything, test_size=test_size, stratify=labels, random_state=seed)
    val = np.zeros(0, np.int64)
    n_val = int(round(val_fraction * len(train)))
    if n_val > 0:
        n_val = max(n_val, 10)  # stratification needs at least one digit per class
        train, val = train_test_split(train, test_size=n_val, stratify=labels[train], random_state=seed + 1)
    out = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    for v in out.values():
        v.setflags(write=False)
    return out


def split_digits(options: DigitsPairOptions) -> dict[str, np.ndarray]:
    """Digit indices (into ``load_digits()``) of each split; disjoint, stratified by class."""
    return _split_indices(options.seed, options.test_size, options.val_fraction)


def build_digits_pair(options: DigitsPairOptions, split: Literal["train", "val", "test"]) -> IndexedArrays:
    if split not in SPLITS:
        raise ValueError(f"dataset 'digits_pair' has splits {', '.join(SPLITS)}, not {split!r}")
    _, labels = scikit_learn_digits()
    digits = split_digits(options)[split]
    fields = digits_pair_fields(options)
    if len(digits) == 0:  # 'val' with val_fraction = 0: an empty split (every split of a spec gets built)
        empty = np.zeros((0, options.size, options.size), np.uint8)
        values = {"caption": []} if "caption" in fields else None
        return IndexedArrays({"gray": (empty, []), "color": (np.zeros((0, options.size, options.size, 3), np.uint8), [])}, np.zeros(0, np.int64), values)
    gray, colour = render_dataset_digits(options)
    code = SPLITS.index(split)
    rng = np.random.default_rng([options.seed, 2, code])
    k = options.k if split == "train" else options.k_test
    local_a, local_b = pair_same_class(labels[digits], labels[digits], k, rng, distinct=True)
    gray_index, partner = digits[local_a], digits[local_b]
    colour_index = partner * options.color_variants + rng.integers(options.color_variants, size=len(partner))
    pair_labels = labels[gray_index]
    values = None
    if options.captions:
        templates = np.random.default_rng([options.seed, 3, code]).integers(len(_TEMPLATES), size=len(pair_labels))
        values = {"caption": [digit_caption(int(c), int(t)) for c, t in zip(pair_labels, templates)]}
    return IndexedArrays({"gray": (gray, gray_index), "color": (colour, colour_index)}, pair_labels, values)
