"""Small data folders in the real formats of MNIST (IDX), SVHN (.mat), PolyMNIST (PNG) and CUB.

For tests (this plugin's, and recipes' end-to-end runs) on machines without the real data::

    from mmlatent_image.testing import write_mnist, write_svhn
    write_mnist(tmp_path); write_svhn(tmp_path)      # then dataset options {"root": str(tmp_path)}

The images are noise with a bright bar whose position encodes the label, so a classifier can learn
them. ``write_svhn`` needs scipy.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

__all__ = ["CUB_CLASSES", "idx_bytes", "write_cub", "write_mnist", "write_polymnist", "write_svhn"]

CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross", "017.Cardinal"]


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding (magic 0x0000 0x08 ndim, big-endian int32 dims, uint8 data)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.tobytes()


def digit_like(label: int, rng: np.random.Generator, side: int) -> np.ndarray:
    """A uint8 ``(side, side)`` image whose bright bar position encodes ``label`` (plus noise)."""
    image = rng.integers(0, 40, size=(side, side)).astype(np.uint8)
    column = 1 + label * (side - 3) // 9
    image[2:-2, column : column + 2] = 255
    return image


def write_mnist(root: Path, counts=(("train", 60), ("test", 30)), gz: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``; returns the labels per split."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in counts:
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = np.stack([digit_like(int(c), rng, 28) for c in labels])
        prefix = "train" if split == "train" else "t10k"
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = idx_bytes(array)
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw / name).write_bytes(data)
        out[split] = labels
    return out


def write_svhn(root: Path, counts=(("train", 50), ("test", 30)), seed: int = 1) -> dict[str, np.ndarray]:
    """``root/{train,test}_32x32.mat`` as SVHN ships them: X (32, 32, 3, N) uint8, y (N, 1) with 10 for 0."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in counts:
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = np.stack([np.repeat(digit_like(int(c), rng, 32)[..., None], 3, axis=2) for c in labels])  # (N, 32, 32, 3)
        images[..., 0] //= 2  # make the channels differ
        y = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)
        savemat(str(root / f"{split}_32x32.mat"), {"X": images.transpose(1, 2, 3, 0), "y": y})
        out[split] = labels
    return out


def write_polymnist(root: Path, counts=(("train", 12), ("test", 6)), modalities=5, seed: int = 2) -> dict[str, np.ndarray]:
    """``root/<split>/m<i>/<index>.<label>.png`` (28x28 RGB); returns the labels per split (in index order)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = {}
    for split, n in counts:
        labels = rng.integers(0, 10, size=n)
        for m in range(modalities):
            folder = root / split / f"m{m}"
            folder.mkdir(parents=True, exist_ok=True)
            for index, label in enumerate(labels):
                image = rng.integers(0, 256, size=(28, 28, 3), dtype=np.uint8)
                image[..., m % 3] = digit_like(int(label), rng, 28)
                Image.fromarray(image).save(folder / f"{index}.{label}.png")
        out[split] = labels
    return out


def write_cub(root: Path, images_per_class: int = 2, captions: int = 10, seed: int = 3, split_format: str = "pickle") -> dict[str, list[str]]:
    """The StackGAN/AttnGAN 'birds' layout: CUB_200_2011/images, text_c10, {train,test}/filenames.*.

    Classes 001 and 002 and 017 go to train, 003 to test (class-disjoint, as the real split).
    Image sizes vary (the real ones do). Returns the filename lists per split.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    names: dict[str, list[str]] = {"train": [], "test": []}
    for c, cls in enumerate(CUB_CLASSES):
        (root / "CUB_200_2011" / "images" / cls).mkdir(parents=True, exist_ok=True)
        (root / "text_c10" / cls).mkdir(parents=True, exist_ok=True)
        for i in range(images_per_class):
            stem = f"{cls.split('.', 1)[1]}_{i:04d}_{1000 + 17 * c + i}"
            h, w = int(rng.integers(70, 120)), int(rng.integers(70, 120))
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "CUB_200_2011" / "images" / cls / f"{stem}.jpg", quality=90)
            lines = [f"caption {j} of {stem}: this bird has wings number {c}" for j in range(captions)]
            (root / "text_c10" / cls / f"{stem}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            names["test" if cls.startswith("003") else "train"].append(f"{cls}/{stem}")
    for split, entries in names.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        if split_format == "pickle":
            (root / split / "filenames.pickle").write_bytes(pickle.dumps(entries, protocol=2))
        else:
            (root / split / "filenames.txt").write_text("\n".join(entries) + "\n", encoding="utf-8")
    return names
