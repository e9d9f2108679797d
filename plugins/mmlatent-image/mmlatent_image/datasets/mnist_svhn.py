"""``mnist_svhn``: MNIST and SVHN digits paired by class (the MMVAE protocol, reproducible by seed).

Files are read in torchvision's layout and formats, so a folder prepared by
``torchvision.datasets.MNIST(root, download=True)`` and ``torchvision.datasets.SVHN(root, ...)``
works as is::

    root/MNIST/raw/train-images-idx3-ubyte   (IDX; the .gz next to it is read when unpacked is absent)
    root/MNIST/raw/train-labels-idx1-ubyte
    root/MNIST/raw/t10k-images-idx3-ubyte
    root/MNIST/raw/t10k-labels-idx1-ubyte
    root/train_32x32.mat                     (MATLAB v5: X (32, 32, 3, N) uint8, y (N, 1), 10 = digit 0)
    root/test_32x32.mat                      (root/SVHN/ is also searched)

With ``download: true`` missing files are fetched by torchvision (machines with a network only).
Items: ``{"mnist": uint8 (28, 28), "svhn": uint8 (32, 32, 3), "label": int}``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from mmlatent.extras import require
from mmlatent_image.datasets.base import IndexedArrays
from mmlatent_image.datasets.pairing import pair_same_class
from mmlatent_image.options import MnistSvhnOptions

__all__ = ["MnistSvhnOptions", "build_mnist_svhn", "read_idx", "read_svhn_mat"]

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}



def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not."""
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{Path(path).name}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{Path(path).name}: IDX header says {shape} but the file holds {len(data) - header} data bytes")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN ``*_32x32.mat`` -> images uint8 ``(N, 32, 32, 3)`` and labels int64 ``(N,)`` (10 -> 0)."""
    require("scipy", feature="the SVHN loader (dataset mnist_svhn)", install="pip install 'mmlatent-image[mat]'")
    from scipy.io import loadmat
    mat = loadmat(str(path), variable_names=["X", "y"])
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{Path(path).name}: expected variables X and y")
    x, y = mat["X"], mat["y"].astype(np.int64).reshape(-1)
    if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y):
        raise ValueError(f"{Path(path).name}: X has shape {x.shape}, expected (32, 32, 3, N) with N = {len(y)}")
    y = np.where(y == 10, 0, y)
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)).astype(np.uint8, copy=False), y


def _find(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _download(root: Path, split: str) -> None:
    from torchvision import datasets

    datasets.MNIST(str(root), train=split == "train", download=True)
    datasets.SVHN(str(root), split=split, download=True)


def load_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` from ``root/MNIST/raw`` -> images uint8 ``(N, 28, 28)``, labels int64 ``(N,)``."""
    raw = root / "MNIST" / "raw"
    out = []
    for name in _MNIST_FILES[split]:
        path = _find([raw / name, raw / f"{name}.gz"])
        if path is None:
            raise FileNotFoundError(
                f"dataset 'mnist_svhn': missing {str(raw / name)!r} (or .gz); "
                "set download: true on a machine with a network, or copy torchvision's MNIST folder there"
            )
        out.append(read_idx(path))
    images, labels = out
    if len(images) != len(labels):
        raise ValueError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images.astype(np.uint8, copy=False), labels.astype(np.int64)


def load_svhn(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """SVHN ``split`` from ``root`` (or ``root/SVHN``)."""
    name = _SVHN_FILES[split]
    path = _find([root / name, root / "SVHN" / name])
    if path is None:
        raise FileNotFoundError(
            f"dataset 'mnist_svhn': missing {str(root / name)!r}; "
            "set download: true on a machine with a network, or copy torchvision's SVHN files there"
        )
    return read_svhn_mat(path)


def build_mnist_svhn(options: MnistSvhnOptions, split: str) -> IndexedArrays:
    if split not in _SVHN_FILES:
        raise ValueError(f"dataset 'mnist_svhn' has splits 'train' and 'test', not {split!r}")
    root = Path(options.root).expanduser()
    if options.download:
        _download(root, split)
    mnist, mnist_labels = load_mnist(root, split)
    svhn, svhn_labels = load_svhn(root, split)
    k = options.k if split == "train" or options.k_test is None else options.k_test
    seed = np.random.SeedSequence([options.seed, 0 if split == "train" else 1])
    idx_m, idx_s = pair_same_class(mnist_labels, svhn_labels, k, np.random.default_rng(seed), options.max_per_class)
    return IndexedArrays({"mnist": (mnist, idx_m), "svhn": (svhn, idx_s)}, mnist_labels[idx_m])
