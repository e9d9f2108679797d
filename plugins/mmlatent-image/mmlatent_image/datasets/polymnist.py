"""``polymnist``: the PolyMNIST folders (Sutter et al. 2021), five coloured-background MNIST views.

Layout (as published)::

    root/train/m0/<index>.<label>.png   ... root/train/m4/...
    root/test/m0/<index>.<label>.png    ... root/test/m4/...

Files with the same name in m0..m4 are one item (same index, same digit class). Items:
``{"m0": uint8 (28, 28, 3), ..., "m4": ..., "label": int}`` for the chosen ``modalities``.
Images are read lazily, one item at a time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from mmlatent_image.datasets.base import resolve_root
from mmlatent_image.options import PolyMNISTOptions

__all__ = ["PolyMNIST", "PolyMNISTOptions", "build_polymnist"]

_NAME = re.compile(r"^(\d+)\.(\d+)\.png$")



class PolyMNIST(Dataset):
    """Items gathered from ``folder/<modality>/<index>.<label>.png`` by file name."""

    def __init__(self, folder: Path, modalities: list[str]) -> None:
        self.folder = folder
        self.modalities = list(modalities)
        listings: dict[str, dict[str, int]] = {}
        for m in self.modalities:
            directory = folder / m
            if not directory.is_dir():
                raise FileNotFoundError(f"dataset 'polymnist': missing folder {str(directory)!r}")
            files = {}
            for path in directory.iterdir():
                match = _NAME.match(path.name)
                if match:
                    files[path.name] = int(match.group(2))
            if not files:
                raise FileNotFoundError(f"dataset 'polymnist': no '<index>.<label>.png' files in {str(directory)!r}")
            listings[m] = files
        first = listings[self.modalities[0]]
        for m in self.modalities[1:]:
            if listings[m].keys() != first.keys():
                missing = sorted(first.keys() ^ listings[m].keys())[:3]
                raise ValueError(
                    f"dataset 'polymnist': {self.modalities[0]} and {m} in {str(folder)!r} hold different files "
                    f"(e.g. {missing})"
                )
        self.names = sorted(first, key=lambda n: int(_NAME.match(n).group(1)))
        self.labels = np.array([first[n] for n in self.names], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from PIL import Image

        name = self.names[i]
        item: dict[str, Any] = {}
        for m in self.modalities:
            with Image.open(self.folder / m / name) as image:
                item[m] = np.array(image.convert("RGB"))
        item["label"] = int(self.labels[i])
        return item


def build_polymnist(options: PolyMNISTOptions, split: str) -> PolyMNIST:
    if split not in ("train", "test"):
        raise ValueError(f"dataset 'polymnist' has splits 'train' and 'test', not {split!r}")
    return PolyMNIST(resolve_root(options.root, "polymnist") / split, options.modalities)
