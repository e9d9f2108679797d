"""Atomic, pickle-free files: safetensors weights, JSON state, and whole training checkpoints.

Every write goes to a temporary file in the destination folder and is renamed over the target
(``os.replace`` is atomic on POSIX), so a process killed at any moment leaves either the old file
or the new one, never a torn one. A training checkpoint is ONE safetensors file holding the model,
EMA and optimizer tensors, with the non-tensor state (step, optimizer scalars and param groups)
as JSON in the safetensors metadata.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

__all__ = [
    "CheckpointError",
    "atomic_write_text",
    "load_json",
    "load_metadata",
    "load_tensors",
    "load_training_checkpoint",
    "save_json",
    "save_tensors",
    "save_training_checkpoint",
]


class CheckpointError(RuntimeError):
    """A weights or checkpoint file is missing or unreadable (the message names the file)."""

    exit_code = 2  # mmlatent.errors: a message, no traceback


def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def _commit(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (fsync'd temporary file, then rename)."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:  # name the target, not the temporary file
        Path(tmp).unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _commit(tmp, path)


def save_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def load_json(path: str | Path, what: str = "file") -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"missing {what}: {path}") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"corrupt {what}: {path} ({error})") from None


def save_tensors(path: str | Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, str] | None = None) -> None:
    """Save tensors as safetensors atomically (tensors are made contiguous and moved to CPU)."""
    path = Path(path)
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp,
                  metadata=dict(metadata) if metadata else None)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
    except SafetensorError as error:  # safetensors reports I/O errors without the file name
        Path(tmp).unlink(missing_ok=True)
        if "No space left" in str(error):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise OSError(errno.EIO, f"cannot write ({error})", str(path)) from None
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _commit(tmp, path)


def load_tensors(path: str | Path, what: str = "weights") -> dict[str, Tensor]:
    """Load a safetensors file; a missing or corrupt file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing {what}: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"corrupt {what}: {path} ({error})") from None


def load_metadata(path: str | Path, what: str = "weights") -> dict[str, str]:
    """The string metadata of a safetensors file (``save_tensors(..., metadata)``); a missing or
    corrupt file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing {what}: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"corrupt {what}: {path} ({error})") from None


def save_training_checkpoint(path: str | Path, modules: Mapping[str, torch.nn.Module],
                             optimizers: Mapping[str, torch.optim.Optimizer], state: Mapping[str, Any]) -> None:
    """One atomic file with module weights, optimizer state and a JSON ``state`` (step, ...)."""
    tensors: dict[str, Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value
    optim_meta = {}
    for name, optimizer in optimizers.items():
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, param_state in sd["state"].items():
            for key, value in param_state.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{name}.{index}.{key}"] = value
                else:
                    scalars.setdefault(str(index), {})[key] = value
        optim_meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars,
                            "indices": [int(i) for i in sd["state"]]}
    meta = {"state": json.dumps(dict(state)), "optimizers": json.dumps(optim_meta)}
    save_tensors(path, tensors, meta)


def load_training_checkpoint(path: str | Path, modules: Mapping[str, torch.nn.Module],
                             optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, Any]:
    """Restore what :func:`save_training_checkpoint` wrote; returns its JSON ``state``."""
    path = Path(path)
    tensors = load_tensors(path, "checkpoint")
    try:
        meta = load_metadata(path, "checkpoint")
        state = json.loads(meta["state"])
        optim_meta = json.loads(meta["optimizers"])
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"corrupt checkpoint: {path} (metadata: {error})") from None
    for name, module in modules.items():
        prefix = f"module.{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, optimizer in optimizers.items():
        info = optim_meta[name]
        param_state: dict[int, dict[str, Any]] = {}
        for index in info["indices"]:
            entry = dict(info["scalars"].get(str(index), {}))
            prefix = f"optim.{name}.{index}."
            entry.update({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            param_state[index] = entry
        optimizer.load_state_dict({"state": param_state, "param_groups": info["param_groups"]})
    return state
