"""Image files for people and for ``--given``: PNG grids that can be read back tile by tile.

:func:`write_grid` lays a batch out with torchvision's ``make_grid`` and writes a PNG that records
the layout in a text chunk (``mmlatent-grid``: JSON with the tile count, columns, tile size and
padding). :func:`read_images` reads PNG/JPEG files: a grid written by :func:`write_grid` comes back
as its tiles; any other image is one item.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import torch
from torch import Tensor

from mmlatent_image.conversion import to_float_chw, to_pil

__all__ = ["GRID_KEY", "IMAGE_SUFFIXES", "read_images", "write_grid"]

GRID_KEY = "mmlatent-grid"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_PADDING = 2


def write_grid(batch: Tensor, path: Path, nrow: int | None = None) -> Path:
    """Write ``(B, C, H, W)`` in [0, 1] (or one ``(C, H, W)``) as a PNG grid; returns the path.

    ``nrow`` (images per row) defaults to about the square root of B.
    """
    from PIL.PngImagePlugin import PngInfo
    from torchvision.utils import make_grid

    batch = batch.detach().cpu().float()
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if batch.ndim != 4 or batch.shape[0] == 0:
        raise ValueError(f"expected a non-empty image batch (B, C, H, W), got {tuple(batch.shape)}")
    n, c, h, w = batch.shape
    if c == 2 or c > 4:
        raise ValueError(f"cannot write images with {c} channels (expected 1, 3 or 4)")
    nrow = int(nrow or max(1, math.ceil(math.sqrt(n))))
    grid = make_grid(batch.clamp(0.0, 1.0), nrow=nrow, padding=_PADDING, pad_value=0.0)
    if c == 1:  # make_grid repeats a single channel to three; keep a grey PNG
        grid = grid[:1]
    info = PngInfo()
    info.add_text(GRID_KEY, json.dumps({"n": n, "nrow": nrow, "height": h, "width": w, "padding": _PADDING if n > 1 else 0}))
    out = Path(path)
    if out.suffix.lower() != ".png":
        out = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    to_pil(grid).save(out, pnginfo=info)
    return out


def _tiles(image: Tensor, layout: dict) -> Tensor:
    n, nrow, h, w, pad = (int(layout[k]) for k in ("n", "nrow", "height", "width", "padding"))
    if n == 1 and pad == 0:
        return image.unsqueeze(0)
    tiles = []
    for i in range(n):
        row, col = divmod(i, nrow)
        top, left = pad + row * (h + pad), pad + col * (w + pad)
        tiles.append(image[:, top : top + h, left : left + w])
    if any(t.shape[-2:] != (h, w) for t in tiles):
        raise ValueError(f"grid layout {layout} does not fit an image of {tuple(image.shape[-2:])}")
    return torch.stack(tiles)


def read_images(path: Path) -> Tensor:
    """PNG/JPEG file -> float batch ``(N, C, H, W)`` in [0, 1] with the file's own channels and size.

    An empty, truncated or corrupt file, or one that is no image, raises ``ValueError`` naming the
    file and what is wrong.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    what = f"cannot read {path.name!r} as an image"
    if path.stat().st_size == 0:
        raise ValueError(f"{what}: the file is empty")
    try:
        with Image.open(path) as image:
            image.load()
            layout_text = image.info.get(GRID_KEY) if hasattr(image, "info") else None
            x = to_float_chw(image)
    except UnidentifiedImageError:
        raise ValueError(f"{what}: not a PNG or JPEG file") from None
    except (OSError, SyntaxError, zlib.error) as error:  # PIL reports a broken PNG chunk as SyntaxError
        raise ValueError(f"{what}: truncated or corrupt ({error})") from None
    except (ValueError, TypeError, Image.DecompressionBombError) as error:
        raise ValueError(f"{what}: {error}") from None
    if layout_text:
        try:
            layout = json.loads(layout_text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path.name}: unreadable {GRID_KEY!r} metadata ({err})") from None
        return _tiles(x, layout)
    return x.unsqueeze(0)
