"""How the commands end: one message and an exit code, never a traceback for a user's mistake.

:func:`run_command` wraps every ``mmlatent`` sub-command. What a user or the machine caused
(an invalid recipe, a corrupt or changed run file, a locked or unsafe run directory, a full disk,
missing data, a stop by signal) is printed as one message naming the file and saying what to
do. Exit codes:

====  ===========================================================================================
0     done
1     training diverged (NaN/inf loss), or an unexpected error (a bug: the message says so)
2     a user's mistake or the machine's state (bad input, bad or busy run directory, disk full)
130   stopped by SIGINT (Ctrl-C); 143: by SIGTERM; a checkpoint is saved, ``--resume`` continues
====  ===========================================================================================

``--debug`` (any sub-command) or ``MMLATENT_DEBUG=1`` shows the traceback as well.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Callable

from mmlatent.stopping import StopSignals, TrainingStopped

__all__ = ["UserError", "debug_enabled", "describe_os_error", "run_command"]


class UserError(Exception):
    """A mistake in the user's input; the message says what to change (exit code 2)."""

    exit_code = 2


def debug_enabled(argv: list[str] | None = None) -> bool:
    """True with ``MMLATENT_DEBUG=1`` in the environment or ``--debug`` among ``argv``."""
    return os.environ.get("MMLATENT_DEBUG", "") not in ("", "0") or "--debug" in (argv or [])


def describe_os_error(error: OSError) -> str:
    """One line for an ``OSError``: what happened, to which file, and what to do."""
    where = error.filename or getattr(error, "filename2", None)
    where = f" {where}" if where else ""
    if error.errno == errno.ENOSPC:
        return (f"no space left on the device while writing{where or ' a file'}; free some space and "
                "continue with --resume (the files written before are intact)")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied:{where or ' a file'} ({error.strerror})"
    if error.errno == errno.ENAMETOOLONG:
        return f"a file name is too long:{where} (choose a shorter name)"
    return f"{error.strerror or error}:{where}" if error.strerror else f"{error}"


def _message(error: BaseException) -> tuple[str, int] | None:
    """The user-facing (message, exit code) of an expected error, or None for a bug.

    Expected errors are stops by signal, ``OSError`` (the machine's state) and every exception
    class with an integer ``exit_code`` attribute (``UserError``, ``RecipeError``,
    ``CheckpointError``, ``RunPathError``, ``RunLocked``, ``EvaluationError``, ``TrainingDiverged``).
    """
    if isinstance(error, TrainingStopped):
        return (f"stopped by {error.signal_name}" + (f": {error.where}" if error.where else ""), error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", 130
    code = getattr(type(error), "exit_code", None)
    if isinstance(code, int):  # a RecipeError renders its own lines
        return (error.render() if hasattr(error, "render") else f"error: {error}"), code
    if isinstance(error, OSError):
        return f"error: {describe_os_error(error)}", 2
    return None


def run_command(main: Callable[[], int], debug: bool = False, quiet: bool = False) -> int:
    """Run a command's ``main``; map expected errors to a message on stderr and an exit code.

    ``quiet``: print nothing (a process other than the main one of a multi-process run).
    SIGINT and SIGTERM end the command with ``128 + signal`` and a message (a training loop
    first saves a checkpoint: :mod:`mmlatent.stopping`).
    """
    debug = debug or debug_enabled()
    try:
        with StopSignals(announce=not quiet):  # SIGTERM too ends with a message (training defers it)
            return main()
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - the point is to end every command cleanly
        known = _message(error)
        if quiet and not debug:
            return known[1] if known is not None else 1
        if debug:
            traceback.print_exc()
        if known is not None:
            text, code = known
            print(text, file=sys.stderr)
            return code
        if debug:
            return 1
        print(f"error: {type(error).__name__}: {error}\n"
              "this looks like a bug in mmlatent or a plugin: run again with --debug (or MMLATENT_DEBUG=1) "
              "for the traceback and report it", file=sys.stderr)
        return 1
