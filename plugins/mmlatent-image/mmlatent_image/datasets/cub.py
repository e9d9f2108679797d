"""``cub``: CUB-200-2011 bird images with the ``text_c10`` captions (10 per image, Reed et al. 2016).

The layout is the one of the widely used StackGAN / AttnGAN "birds" folder (CUB-200-2011 unpacked
next to the caption release and its class-disjoint train/test split: 150 training classes, 50 test
classes)::

    root/CUB_200_2011/images/<class>/<image>.jpg       e.g. 002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg
    root/text_c10/<class>/<image>.txt                  one caption per line (10 per image)
    root/train/filenames.pickle                        list of "<class>/<image>" (no extension)
    root/test/filenames.pickle

``filenames.txt`` (one "<class>/<image>" per line) may replace ``filenames.pickle``. The pickle is
read with an unpickler that refuses every class, so only plain lists of strings load. AttnGAN's
copy names the caption folder ``text``: set ``captions_dir``.

Labels: the class folder's number minus one (``002.Laysan_Albatross`` -> 1), or the folder's rank
among the sorted class folders when the names carry no number. Items:
``{"image": uint8 (image_size, image_size, 3), "caption": str, "label": int}``; ``captions`` says
which: ``all`` (one item per image and caption, the MMVAE protocol), ``first`` (one per image) or
``random`` (one per image, a caption drawn with torch's generator at every access).
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mmlatent_image.datasets.base import resolve_root
from mmlatent_image.options import CUBOptions

__all__ = ["GET_CUB", "CUBCaptions", "CUBOptions", "build_cub", "read_filenames"]



class _NoObjects(pickle.Unpickler):
    """Unpickles plain containers and strings only: every class or function lookup is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only a list of file names is accepted")


def read_filenames(folder: Path) -> list[str]:
    """``folder/filenames.pickle`` (safe: lists of strings only) or ``folder/filenames.txt``."""
    pickled, listed = folder / "filenames.pickle", folder / "filenames.txt"
    if pickled.is_file():
        try:
            names = _NoObjects(io.BytesIO(pickled.read_bytes()), encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as err:
            raise ValueError(f"{pickled}: not a pickled list of file names ({err})") from None
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, (str, bytes)) for n in names):
            raise ValueError(f"{pickled}: expected a list of strings, got {type(names).__name__}")
        names = [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    elif listed.is_file():
        names = [line.strip() for line in listed.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        raise FileNotFoundError(f"dataset 'cub': missing {str(pickled)!r} (or filenames.txt)")
    out = []
    for name in names:
        name = re.sub(r"\.(jpg|jpeg|png)$", "", name.strip(), flags=re.IGNORECASE)
        parts = PurePosixPath(name).parts
        if not name or PurePosixPath(name).is_absolute() or ".." in parts or len(parts) != 2:
            raise ValueError(f"dataset 'cub': invalid entry {name!r} in {folder} (expected '<class>/<image>')")
        out.append(name)
    return out


def _class_index(class_dir: str, ranks: dict[str, int]) -> int:
    match = re.match(r"^(\d+)\.", class_dir)
    return int(match.group(1)) - 1 if match else ranks[class_dir]


class CUBCaptions(Dataset):
    """One split of CUB images with their captions (see the module docstring)."""

    def __init__(self, root: Path, names: list[str], options: CUBOptions) -> None:
        self.root = root
        self.options = options
        self.image_folder = root / options.images_dir
        caption_folder = root / options.captions_dir
        if not self.image_folder.is_dir():
            raise FileNotFoundError(f"dataset 'cub': missing image folder {str(self.image_folder)!r}")
        if not caption_folder.is_dir():
            raise FileNotFoundError(f"dataset 'cub': missing caption folder {str(caption_folder)!r}")
        ranks = {d: i for i, d in enumerate(sorted(p.name for p in self.image_folder.iterdir() if p.is_dir()))}
        self.names = names
        self.image_paths: list[Path] = []
        self.captions: list[list[str]] = []
        labels = []
        for name in names:
            image = self._image_path(name)
            text_path = caption_folder / f"{name}.txt"
            if not text_path.is_file():
                raise FileNotFoundError(f"dataset 'cub': missing captions {str(text_path)!r}")
            lines = [line.strip() for line in text_path.read_text(encoding="utf-8", errors="replace").splitlines()]
            lines = [line for line in lines if line]
            if not lines:
                raise ValueError(f"dataset 'cub': no caption in {str(text_path)!r}")
            self.image_paths.append(image)
            self.captions.append(lines)
            labels.append(_class_index(PurePosixPath(name).parts[0], ranks))
        self.labels = np.asarray(labels, dtype=np.int64)
        if options.captions == "all":
            self.items = [(i, j) for i, lines in enumerate(self.captions) for j in range(len(lines))]
        else:
            self.items = [(i, 0) for i in range(len(self.captions))]
        self._cache: dict[int, np.ndarray] = {}

    def _image_path(self, name: str) -> Path:
        for suffix in (".jpg", ".jpeg", ".png", ".JPG"):
            path = self.image_folder / f"{name}{suffix}"
            if path.is_file():
                return path
        raise FileNotFoundError(f"dataset 'cub': missing image {str(self.image_folder / name)!r}.jpg")

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 ``(image_size, image_size, 3)``."""
        cached = self._cache.get(i)
        if cached is None:
            from PIL import Image

            size = self.options.image_size
            with Image.open(self.image_paths[i]) as image:
                cached = np.array(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0))
            if self.options.cache_images:
                self._cache[i] = cached
        return cached.copy()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i, j = self.items[index]
        lines = self.captions[i]
        if self.options.captions == "random":
            j = int(torch.randint(len(lines), ()).item())
        return {"image": self.image(i), "caption": lines[j], "label": int(self.labels[i])}


#: What to download and where it goes, appended to every "missing" error of the dataset.
GET_CUB = """\
CUB is not downloaded by mmlatent. Into the root folder ({root}) unpack:
  1. CUB-200-2011 (CUB_200_2011.tgz, https://www.vision.caltech.edu/datasets/cub_200_2011/)
     -> {root}/CUB_200_2011/images/<class>/<image>.jpg
  2. the 10 captions per image of Reed et al. 2016 (text_c10, https://github.com/reedscot/cvpr2016)
     -> {root}/text_c10/<class>/<image>.txt   (AttnGAN's copy names it text/: set captions_dir: text)
  3. the class-disjoint train/test split of StackGAN/AttnGAN (the birds metadata linked from
     https://github.com/taoxugit/AttnGAN) -> {root}/train/filenames.pickle, {root}/test/filenames.pickle
Layout and options: the 'cub' section of the mmlatent-image README."""


def build_cub(options: CUBOptions, split: str) -> CUBCaptions:
    if split not in ("train", "test"):
        raise ValueError(f"dataset 'cub' has splits 'train' and 'test', not {split!r}")
    try:
        root = resolve_root(options.root, "cub")
        return CUBCaptions(root, read_filenames(root / split), options)
    except FileNotFoundError as error:  # a missing or partial folder: say what to get
        raise FileNotFoundError(f"{error}\n{GET_CUB.format(root=options.root)}") from None
