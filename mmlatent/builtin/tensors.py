"""Dataset ``tensors``: arrays from a ``.safetensors`` or ``.npz`` file, one per modality field.

Each array's first axis is the sample axis; every array but ``label`` is a field (recipes name
them in ``modalities.<name>.field``, or use the same name), and ``label`` (optional, integers,
shape ``(N,)``) gives each item an int ``"label"``. Options::

    path: data.npz            # one file, split at random ...
    test_fraction: 0.2        # ... with these fractions
    val_fraction: 0.0         # (> 0 adds a "val" split)
    seed: 0                   # fixed split for a fixed seed

    # or split files (same keys in each):
    train_path: train.safetensors
    test_path: test.safetensors
    val_path: val.safetensors  # optional

Items are dicts ``{field: tensor row, ..., "label": int}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor
from torch.utils.data import Dataset

from mmlatent.builtin.options import LABEL, TensorsOptions

__all__ = ["TensorsDataset", "TensorsOptions", "load_tensors", "read_keys"]

def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"dataset tensors: no such file: {path}")
    return path


def read_keys(path: Path) -> list[str]:
    """Array names in a ``.safetensors``/``.npz`` file, without loading the arrays."""
    path = _require_file(Path(path))
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return list(npz.files)
        with safe_open(str(path), framework="pt") as handle:
            return list(handle.keys())
    except Exception as exc:  # noqa: BLE001 - corrupt files raise library-specific errors
        raise ValueError(f"dataset tensors: cannot read {path}: {exc}") from exc


def load_tensors(path: Path) -> dict[str, Tensor]:
    """All arrays of a ``.safetensors``/``.npz`` file as tensors, checked for a common first axis."""
    path = _require_file(Path(path))
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                tensors = {key: torch.from_numpy(np.ascontiguousarray(npz[key])) for key in npz.files}
        else:
            tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - corrupt files raise library-specific errors
        raise ValueError(f"dataset tensors: cannot read {path}: {exc}") from exc
    fields = [k for k in tensors if k != LABEL]
    if not fields:
        raise ValueError(f"dataset tensors: {path} holds no field array (only: {', '.join(tensors) or 'nothing'})")
    for key, t in tensors.items():
        if t.dim() == 0:
            raise ValueError(f"dataset tensors: {path}: array {key!r} is a scalar; the first axis must be samples")
    lengths = {key: int(t.shape[0]) for key, t in tensors.items()}
    if len(set(lengths.values())) != 1:
        detail = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise ValueError(f"dataset tensors: {path}: arrays disagree on the number of samples (first axis) ({detail})")
    if LABEL in tensors:
        label = tensors[LABEL]
        if label.dim() != 1 or label.is_floating_point() or label.is_complex() or label.dtype == torch.bool:
            raise ValueError(
                f"dataset tensors: {path}: 'label' must be integers of shape (N,), "
                f"got {label.dtype} of shape {tuple(label.shape)}"
            )
    return tensors


class TensorsDataset(Dataset):
    """Rows ``indices`` of ``tensors``; items ``{field: tensor row, ..., "label": int}``."""

    def __init__(self, tensors: dict[str, Tensor], indices: Tensor | None = None) -> None:
        self.tensors = tensors
        self.fields = [k for k in tensors if k != LABEL]
        n = int(next(iter(tensors.values())).shape[0])
        self.indices = torch.arange(n) if indices is None else indices
        self.has_labels = LABEL in tensors

    def __len__(self) -> int:
        return int(self.indices.numel())

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} items")
        row = int(self.indices[i])
        item: dict[str, Any] = {key: self.tensors[key][row] for key in self.fields}
        if self.has_labels:
            item[LABEL] = int(self.tensors[LABEL][row])
        return item


def split_indices(n: int, test_fraction: float, val_fraction: float, seed: int) -> dict[str, Tensor]:
    """Fixed random split of ``range(n)`` into train/test/val (sorted indices within each split)."""
    n_test = max(1, round(n * test_fraction))
    n_val = round(n * val_fraction)
    if val_fraction > 0:
        n_val = max(1, n_val)
    if n - n_test - n_val < 1:
        raise ValueError(
            f"dataset tensors: {n} samples are too few for test_fraction={test_fraction} and val_fraction={val_fraction}"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return {
        "test": perm[:n_test].sort().values,
        "val": perm[n_test : n_test + n_val].sort().values,
        "train": perm[n_test + n_val :].sort().values,
    }


def build(options: TensorsOptions, split: str) -> TensorsDataset:
    """The dataset of ``split`` ("train", "test", or "val" when configured)."""
    if split not in options.splits():
        hint = "val_fraction > 0" if options.path is not None else "val_path"
        raise ValueError(f"dataset tensors: no {split!r} split (splits: {', '.join(options.splits())}; set {hint})")
    if options.path is not None:
        tensors = load_tensors(options.path)
        n = int(next(iter(tensors.values())).shape[0])
        indices = split_indices(n, options.test_fraction, options.val_fraction, options.seed)[split]
        return TensorsDataset(tensors, indices)
    path = {"train": options.train_path, "test": options.test_path, "val": options.val_path}[split]
    tensors = load_tensors(path)
    if split != "train":  # every split file must carry what the training file carries
        reference = read_keys(options.train_path)
        missing = sorted(set(reference) - set(tensors))
        extra = sorted(set(tensors) - set(reference))
        if missing or extra:
            detail = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"not in the train file: {', '.join(extra)}" if extra else "",
                )
                if part
            )
            raise ValueError(f"dataset tensors: {path} and {options.train_path} have different keys ({detail})")
    return TensorsDataset(tensors)


def fields(options: TensorsOptions) -> list[str]:
    """The field names: the training file's keys except ``label``."""
    keys = read_keys(options.files()[0])
    names = [k for k in keys if k != LABEL]
    if not names:
        raise ValueError(f"dataset tensors: {options.files()[0]} holds no field array")
    return names


def has_labels(options: TensorsOptions) -> bool:
    """Whether the training file has a ``label`` array."""
    return LABEL in read_keys(options.files()[0])
