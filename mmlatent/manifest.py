"""A run directory is checked, not trusted: sizes and SHA-256 digests of the files a run wrote.

``RUN/manifest.json``::

    {"format": 1, "run_id": "9f0c...", "files": {"recipe.yaml": {"size": 1450, "sha256": "..."}, ...}}

The training process records each input file of later stages (the recipe, fitted
preprocessing, autoencoder weights, latent caches and statistics, the score network, students,
coherence classifiers) right after writing it, and before marking its stage done. Whoever reads
them again (``MLDPipeline.load``, ``mmlatent sample/evaluate``, ``--resume``) calls
:func:`verify_files` first: a file changed, truncated or replaced since is an error that names
it, never a silent fallback to defaults. The manifest is also the marker of a run directory
(:func:`mmlatent.rundir.is_run_directory`). Runs written before manifests existed are read with
a warning.
"""

from __future__ import annotations

import hashlib
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmlatent.checkpoint import CheckpointError, load_json, save_json

__all__ = ["ManifestMismatch", "file_digest", "record_files", "start_manifest", "verify_files"]

FORMAT = 1


class ManifestMismatch(CheckpointError):
    """A run file differs from what the run recorded (the message names it and says what to do)."""


def file_digest(path: str | Path) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of one file (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def _read(manifest: Path) -> dict[str, Any]:
    value = load_json(manifest, "run manifest")
    if not isinstance(value, dict) or not isinstance(value.get("files"), dict):
        raise ManifestMismatch(f"corrupt run manifest: {manifest} (expected an object with 'files'); "
                               "the run cannot be checked: train it again")
    return value


def start_manifest(root: str | Path) -> str:
    """Write an empty manifest for a new run (the run's marker); returns its run id."""
    run_id = uuid.uuid4().hex
    save_json(Path(root) / "manifest.json", {"format": FORMAT, "run_id": run_id, "files": {}})
    return run_id


def record_files(root: str | Path, paths: Iterable[str | Path]) -> None:
    """Record the current size and digest of ``paths`` (files inside ``root``) in the manifest."""
    root = Path(root)
    manifest = root / "manifest.json"
    value = _read(manifest) if manifest.is_file() else {"format": FORMAT, "run_id": uuid.uuid4().hex, "files": {}}
    for path in paths:
        path = Path(path)
        value["files"][path.relative_to(root).as_posix()] = file_digest(path)
    save_json(manifest, value)


def verify_files(root: str | Path, paths: Iterable[str | Path]) -> None:
    """Check ``paths`` (files inside ``root``) against the manifest; raise :class:`ManifestMismatch`.

    A missing file is left to its loader (which names it as missing). A file the manifest does
    not list was not finished by the run. Without any manifest (a run of an older mmlatent) this
    only warns.
    """
    root = Path(root)
    manifest = root / "manifest.json"
    if not manifest.is_file():
        warnings.warn(f"{root} has no manifest.json (written by an older mmlatent): its files are not checked",
                      stacklevel=2)
        return
    files = _read(manifest)["files"]
    for path in paths:
        path = Path(path)
        if not path.is_file():
            continue
        key = path.relative_to(root).as_posix()
        recorded = files.get(key)
        if recorded is None:
            raise ManifestMismatch(f"{path} is not recorded in {manifest}: the run did not finish writing it "
                                   "(finish the run with `mmlatent train RECIPE --output RUN --resume`)")
        actual = file_digest(path)
        if actual != recorded:
            what = (f"{actual['size']} bytes, the run wrote {recorded['size']}" if actual["size"] != recorded["size"]
                    else "same size, different content")
            raise ManifestMismatch(f"{path} was changed after the run wrote it ({what}); restore the file "
                                   "or train the run again (nothing was used from it)")
