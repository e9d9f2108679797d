"""Clean stops: SIGINT (Ctrl-C) and SIGTERM (what schedulers send before preemption).

While :class:`StopSignals` is installed, the first signal is a *request*: inside a checkpointed
training loop (``deferred()``) the loop finishes its step, writes a checkpoint and raises
:class:`TrainingStopped`; anywhere else (nothing would be saved by waiting) it raises
:class:`TrainingStopped` at once. A second Ctrl-C always stops at once. The commands turn
:class:`TrainingStopped` into one message with the ``--resume`` command and the exit code
``128 + signal`` (130 for SIGINT, 143 for SIGTERM), as shells do.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StopSignals", "TrainingStopped"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(KeyboardInterrupt):
    """A stop requested by a signal (a ``KeyboardInterrupt``, so ``except Exception`` lets it pass).

    ``exit_code`` is ``128 + signum``; ``where`` says what was saved (set by the trainer).
    """

    def __init__(self, signum: int, where: str = "") -> None:
        self.signum = int(signum)
        self.where = where
        super().__init__(where or signal.Signals(self.signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class StopSignals:
    """Install SIGINT/SIGTERM handlers for a ``with`` block (main thread only; elsewhere a no-op).

    ``requested``: the signal number of a pending stop request, or None.
    """

    def __init__(self, announce: bool = True) -> None:
        """``announce``: print a line when a stop is requested (the main process of several)."""
        self.announce = announce
        self.requested: int | None = None
        self._deferring = 0
        self._previous: dict[int, object] = {}

    # ----------------------------------------------------------------------------- install
    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    # ------------------------------------------------------------------------------ handle
    def _handle(self, signum: int, frame: object) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise TrainingStopped(signum, "stopped at once (second Ctrl-C); the last checkpoint is kept")
        if self.requested is None:
            self.requested = signum
        if self._deferring:
            if self.announce:
                print(f"\n{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
                      "(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
            return
        raise TrainingStopped(signum)

    @contextmanager
    def deferred(self) -> Iterator[StopSignals]:
        """Within this block a first signal only sets ``requested`` (checked at step boundaries)."""
        self._deferring += 1
        try:
            if self.requested is not None:  # a request that arrived just before the loop
                raise TrainingStopped(self.requested)
            yield self
        finally:
            self._deferring -= 1
