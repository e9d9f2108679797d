"""Progress bars that stay readable in a log file: :func:`progress_bar`, used by every loop of mmlatent.

On a terminal (or in a notebook) a bar is an ordinary ``tqdm.auto`` bar. When its output is a file
or a pipe (``mmlatent train ... 2> train.err``, a batch job's log), tqdm would redraw the bar ten
times a second with carriage returns, which a file keeps as one ever-growing line. There a bar

- first shows after ``FILE_UPDATE_SECONDS`` (a short loop writes nothing at all),
- then writes at most one line every ``FILE_UPDATE_SECONDS``, plus its final state,
- as plain ASCII lines, each ending with a newline (no carriage returns, no cursor moves).

Loops show their loss with ``bar.set_postfix(..., refresh=False)``: a refresh would write a line
at once, whatever the interval.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

from tqdm.auto import tqdm as auto_tqdm
from tqdm.notebook import tqdm_notebook
from tqdm.std import tqdm as std_tqdm

__all__ = ["FILE_UPDATE_SECONDS", "LineStream", "progress_bar"]

#: Seconds between two lines of a bar whose output is not a terminal (and before its first line).
FILE_UPDATE_SECONDS = 30.0

_CURSOR_MOVES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # tqdm moves up for nested bars on a terminal


class LineStream:
    """A text file that receives tqdm's redraws as whole lines: carriage returns, cursor moves and
    the blank writes that clear a bar are dropped; every other write becomes one line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = _CURSOR_MOVES.sub("", text).replace("\r", "").rstrip()
        if line.strip():
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Any = None, **options: Any) -> std_tqdm:
    """A tqdm bar over ``iterable`` (or with ``total=``), with tqdm's own keyword ``options``.

    Output that is not a terminal gets few, newline-terminated ASCII lines (see the module
    docstring). ``disable=None`` keeps tqdm's meaning: shown on a terminal only.
    """
    stream = options.get("file") or sys.stderr
    if issubclass(auto_tqdm, tqdm_notebook) or _is_terminal(stream):  # a notebook widget, or a terminal
        return auto_tqdm(iterable, **options)
    seconds = FILE_UPDATE_SECONDS
    options.update(file=LineStream(stream), ascii=True, mininterval=seconds, maxinterval=seconds,
                   delay=options.get("delay") or seconds)
    return std_tqdm(iterable, **options)
