"""A dataset of items gathered from in-memory arrays by index (paired datasets share it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

__all__ = ["IndexedArrays", "resolve_root"]


def resolve_root(root: str, dataset: str) -> Path:
    """``root`` option -> an existing directory (``~`` expanded), or a clear error."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"dataset {dataset!r}: root folder {str(path)!r} does not exist")
    return path


class IndexedArrays(Dataset):
    """Item ``i`` = ``{field: arrays[field][index[field][i]], ..., "label": int(labels[i])}``.

    ``arrays`` maps a field to ``(array, index)``: the stored instances and, per item, which one.
    ``values`` maps a field to per-item Python values (e.g. caption strings). Array values are
    returned as fresh copies (numpy arrays the caller may modify).
    """

    def __init__(
        self,
        arrays: Mapping[str, tuple[np.ndarray, np.ndarray]],
        labels: np.ndarray,
        values: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        self.arrays = {name: (array, np.asarray(index, dtype=np.int64)) for name, (array, index) in arrays.items()}
        self.labels = np.asarray(labels, dtype=np.int64)
        self.values = dict(values or {})
        n = len(self.labels)
        for name, (_, index) in self.arrays.items():
            if len(index) != n:
                raise ValueError(f"field {name!r} has {len(index)} items, labels have {n}")
        for name, seq in self.values.items():
            if len(seq) != n:
                raise ValueError(f"field {name!r} has {len(seq)} items, labels have {n}")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} items")
        item: dict[str, Any] = {name: array[index[i]].copy() for name, (array, index) in self.arrays.items()}
        for name, seq in self.values.items():
            item[name] = seq[i]
        item["label"] = int(self.labels[i])
        return item
