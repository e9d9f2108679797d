"""The run directory: where every artifact of a run lives (one place that knows the file names).

Besides the paths, this module decides what may become a run directory and what may be deleted:

- :func:`check_run_path` refuses, before anything is written, a run directory that is the current
  folder, one of its parents, the home folder or the file system root, a default ``runs/<name>``
  that resolves outside ``runs/``, a name too long for the file system, and an existing folder
  that is not a run of mmlatent;
- :func:`is_run_directory` recognises a run by its marker files and by holding nothing foreign;
- :func:`clear_run_directory` (``--overwrite``) deletes the contents of a recognised run only,
  keeping its lock file (the lock is held while it runs).

See DESIGN.md sections 4 and 7 and docs/architecture.md ("Run directory").
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RUN_ENTRIES", "RunDir", "RunPathError", "check_run_path", "clear_run_directory",
           "foreign_entries", "is_run_directory"]

#: Every top-level entry mmlatent writes into a run directory (anything else is foreign).
RUN_ENTRIES = frozenset({
    "recipe.yaml", "plugins.json", "state.json", "manifest.json", "modalities", "autoencoders", "latents",
    "latent_stats.safetensors", "score_net.safetensors", "checkpoints", "curves", "history.json", "train.log",
    "samples", "classifiers", "metrics.json", "report.md", "students", "model", "logs", ".lock",
})
#: Longest file name component accepted for a run directory (file systems allow 255 bytes).
MAX_NAME_BYTES = 200


class RunPathError(ValueError):
    """A run directory that must not be written or deleted (the message says why and what to do)."""

    exit_code = 2  # mmlatent.errors: a message, no traceback


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory ``root``."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def manifest(self) -> Path:
        """Sizes and SHA-256 of the files the run wrote (:mod:`mmlatent.manifest`); also the run's marker."""
        return self.root / "manifest.json"

    @property
    def lock(self) -> Path:
        """The lock file of the one writer (:mod:`mmlatent.runlock`)."""
        return self.root / ".lock"

    def modality_state(self, name: str) -> Path:
        return self.root / "modalities" / f"{name}.json"

    def autoencoder(self, name: str) -> Path:
        return self.root / "autoencoders" / f"{name}.safetensors"

    def latents(self, split: str) -> Path:
        return self.root / "latents" / f"{split}.safetensors"

    @property
    def latent_stats(self) -> Path:
        return self.root / "latent_stats.safetensors"

    @property
    def score_net(self) -> Path:
        return self.root / "score_net.safetensors"

    def model_weights(self, name: str) -> Path:
        """Weights of a model family other than MLD (``RUN/model/<name>.safetensors``)."""
        return self.root / "model" / f"{name}.safetensors"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, stage: str) -> Path:
        return self.checkpoints / f"{stage.replace(':', '-')}.safetensors"

    @property
    def curves(self) -> Path:
        return self.root / "curves"

    @property
    def history(self) -> Path:
        return self.root / "history.json"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def logs(self) -> Path:
        """The experiment trackers' files (``train.log_with``; TensorBoard under ``logs/<recipe name>/``)."""
        return self.root / "logs"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def classifier(self, name: str) -> Path:
        return self.root / "classifiers" / f"{name}.safetensors"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"


# ----------------------------------------------------------------------------------- what a run is
def _is_temporary(name: str) -> bool:
    """Temporary files of atomic writes (``.<name>.<random>.tmp``), left by a killed process."""
    return name.startswith(".") and name.endswith(".tmp")


def foreign_entries(root: str | Path) -> list[str]:
    """Top-level entries of ``root`` that mmlatent never writes into a run directory (sorted)."""
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if p.name not in RUN_ENTRIES and not _is_temporary(p.name))


def is_run_directory(root: str | Path) -> bool:
    """True for a folder that mmlatent wrote: its marker files and nothing foreign.

    The marker is ``manifest.json``; runs written before it existed are recognised by
    ``recipe.yaml`` with ``plugins.json`` or ``state.json``. A folder holding only a lock file
    (a run stopped before it wrote anything) is a run too.
    """
    root = Path(root)
    if not root.is_dir() or root.is_symlink() or foreign_entries(root):
        return False
    names = {p.name for p in root.iterdir()}
    legacy = "recipe.yaml" in names and bool(names & {"plugins.json", "state.json"})
    leftovers_only = all(name == ".lock" or _is_temporary(name) for name in names)
    return "manifest.json" in names or legacy or leftovers_only


def _is_empty(root: Path) -> bool:
    return root.is_dir() and not any(root.iterdir())


def check_run_path(run_dir: str | Path, *, default_parent: str | Path | None = None,
                   must_exist: bool = False) -> Path:
    """Check that ``run_dir`` may be used as a run directory; returns it unchanged.

    ``default_parent``: set when the path was made as ``<default_parent>/<recipe name>``; it must
    then resolve to a direct child of that folder. Raises :class:`RunPathError` for the current
    folder or any of its parents, the home folder, the root, a path through a file, a name too
    long for the file system, and an existing non-empty folder that is not a run of mmlatent.
    ``must_exist``: the run must already be there (``--resume``, ``evaluate``, ``distill``).
    """
    path = Path(run_dir)
    for part in path.parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise RunPathError(f"run directory {str(path)[:80]}...: a folder name is longer than "
                               f"{MAX_NAME_BYTES} bytes; choose a shorter name or --output")
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or cwd.is_relative_to(resolved):
        where = "the current folder" if resolved == cwd else "a parent of the current folder"
        raise RunPathError(f"run directory {path} is {where}: a run needs a folder of its own "
                           "(e.g. --output runs/NAME)")
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        where = "the file system root" if resolved.parent == resolved else "your home folder"
        raise RunPathError(f"run directory {path} is {where}: a run needs a folder of its own "
                           "(e.g. --output runs/NAME)")
    if default_parent is not None:
        parent = Path(default_parent).resolve()
        if resolved.parent != parent:
            raise RunPathError(f"run directory {path} resolves to {resolved}, outside {default_parent}/: "
                               "the recipe name must be a plain folder name (or give --output)")
    for ancestor in [resolved, *resolved.parents]:
        if ancestor.exists() and not ancestor.is_dir():
            raise RunPathError(f"run directory {path}: {ancestor} is a file, not a folder")
    if must_exist and not resolved.is_dir():
        raise RunPathError(f"no run directory at {path}")
    if resolved.is_dir() and not _is_empty(resolved) and not is_run_directory(resolved):
        foreign = foreign_entries(resolved)
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        why = f"it holds files mmlatent did not write ({shown})" if foreign else "it has none of a run's marker files"
        raise RunPathError(f"{path} is not an mmlatent run directory: {why}; "
                           "give another folder (nothing was changed)")
    return path


def clear_run_directory(run_dir: str | Path) -> None:
    """``--overwrite``: delete what a recognised run directory holds, keeping its lock file.

    Refuses (:class:`RunPathError`) anything :func:`is_run_directory` does not recognise, and
    never follows a symbolic link out of the folder.
    """
    root = Path(run_dir)
    check_run_path(root)
    if not root.is_dir():
        return
    if not is_run_directory(root):
        raise RunPathError(f"{root} is not an mmlatent run directory: --overwrite deletes only runs")
    for entry in root.iterdir():
        if entry.name == ".lock":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
