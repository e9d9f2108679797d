"""One writer per run directory: an exclusive OS lock on ``RUN/.lock``.

``mmlatent train`` (also with ``--resume`` or ``--overwrite``), ``mmlatent evaluate`` and
``mmlatent distill`` hold the lock while they write; a second writer is refused at once with
:class:`RunLocked`, naming the directory and the holder's process id and command. The lock is
``fcntl.flock`` on an open file: the operating system releases it when the process ends, however
it ends (``kill -9`` included), so a stale lock never blocks a retry. Readers (``mmlatent sample``,
``MLDPipeline.load``) take no lock: every file is written atomically, so they never see a torn one.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

__all__ = ["RunLock", "RunLocked"]


class RunLocked(RuntimeError):
    """Another process is writing this run directory."""

    exit_code = 2  # mmlatent.errors: a message, no traceback


class RunLock:
    """``with RunLock(run_dir, "train"):`` hold the run's write lock (creating the folder if needed).

    ``created``: whether acquiring the lock created the run directory (so that a run that wrote
    nothing can remove it again).
    """

    def __init__(self, run_dir: str | Path, command: str) -> None:
        self.root = Path(run_dir)
        self.path = self.root / ".lock"
        self.command = command
        self.created = False
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        self.created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLocked(f"run directory {self.root} is in use by another mmlatent process ({holder}); "
                            "wait for it to finish or stop it, then try again") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: mmlatent {self.command}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self.path.exists():  # forget the holder, keep the file (another process may wait on it)
                os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # pragma: no cover - the OS releases it anyway
        if self._fd is not None and sys is not None:
            self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "process id unknown"
