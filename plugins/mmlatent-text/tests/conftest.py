"""Shared fixtures of the mmlatent-text tests."""

from __future__ import annotations

import pytest
from mmlatent_text import TextModality, TextOptions

DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
TEMPLATES = (
    "a handwritten {word}",
    "the digit {digit} written by hand",
    "a picture of the number {word}.",
    "this is a {word}, drawn in ink",
)


def digit_captions() -> list[str]:
    """10 digits x 4 templates = 40 captions, all lower-case, in canonical spacing."""
    return [t.format(word=w, digit=d) for d, w in enumerate(DIGIT_WORDS) for t in TEMPLATES]


def _make_text(latent_dim: int = 16, fit: list[str] | None = None, **options) -> TextModality:
    """A text modality with min_frequency=1 (unless given), fitted on ``fit`` when given."""
    options.setdefault("min_frequency", 1)
    modality = TextModality("caption", TextOptions(**options), latent_dim)
    if fit is not None:
        modality.fit(fit)
    return modality


@pytest.fixture(name="make_text")
def make_text_fixture():
    """The :func:`_make_text` factory (fixtures, not imports: ``conftest`` is not a unique module name)."""
    return _make_text


@pytest.fixture(name="digit_captions")
def digit_captions_fixture():
    """The :func:`digit_captions` factory."""
    return digit_captions


@pytest.fixture
def one_thread():
    """Train on one intra-op thread (restored afterwards): on a shared 2-core machine, two threads
    fighting other processes were measured 5x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def captions() -> list[str]:
    return digit_captions()


@pytest.fixture
def text(captions) -> TextModality:
    return _make_text(fit=captions)
