"""Caption files for people: ``.txt`` (one caption per line) and a PNG picture of the captions."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

__all__ = ["read_captions", "write_captions_png", "write_captions_txt"]

#: The PNG shows at most this many captions (the .txt always holds all of them).
PNG_MAX_LINES = 64
#: Longer captions are shortened (with an ellipsis) in the PNG.
PNG_MAX_CHARS = 100


def write_captions_txt(captions: Sequence[str], path: Path) -> Path:
    """One caption per line (newlines inside a caption become spaces), UTF-8."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [" ".join(c.split()) for c in captions]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_captions_png(captions: Sequence[str], path: Path, title: str | None = None) -> Path:
    """A numbered list of the captions drawn with matplotlib (Agg, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = [" ".join(c.split()) for c in captions[:PNG_MAX_LINES]]
    lines = [
        f"{i:>3}  {textwrap.shorten(c, PNG_MAX_CHARS, placeholder=' ...') if c else '(empty)'}"
        for i, c in enumerate(shown)
    ]
    if len(captions) > PNG_MAX_LINES:
        lines.append(f"     ... {len(captions) - PNG_MAX_LINES} more (see the .txt file)")
    if not lines:
        lines = ["(no captions)"]
    header = 1 if title else 0
    line_height = 0.22  # inches
    height = line_height * (len(lines) + header) + 0.3
    fig = Figure(figsize=(9.0, height), dpi=100)
    FigureCanvasAgg(fig)
    step = line_height / height
    y = 1.0 - 0.15 / height
    if title:
        fig.text(0.01, y, title, va="top", ha="left", fontsize=10, fontweight="bold")
        y -= step
    for line in lines:
        fig.text(0.01, y, line, va="top", ha="left", fontsize=9, family="monospace")
        y -= step
    fig.savefig(path, format="png", facecolor="white")
    return path


def read_captions(path: Path) -> list[str]:
    """Captions of a ``.txt`` file: one per line; blank lines are skipped. A file that is not
    UTF-8 text raises ``ValueError`` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        byte = error.object[error.start]
        raise ValueError(
            f"cannot read {path.name!r} as captions: not UTF-8 text (byte {error.start} is {byte:#04x})"
        ) from None
    if "\x00" in text:
        raise ValueError(f"cannot read {path.name!r} as captions: binary data, not text")
    return [line.strip() for line in text.splitlines() if line.strip()]
