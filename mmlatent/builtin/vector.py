"""Modality kind ``vector``: fixed-size real vectors (tabular rows, precomputed embeddings).

Options (``modalities.<name>.options`` of a recipe)::

    arch: mlp            # "mlp" (an MLP autoencoder) or "identity" (latent = the vector itself)
    hidden: [256, 256]   # hidden widths of the MLP encoder (the decoder mirrors them) and classifier
    size: null           # input size; null = taken from the training data (Modality.fit)

A raw value is anything ``torch.as_tensor`` accepts (a NumPy row, a tensor row, a list, a number);
it is flattened to ``(size,)`` float32. ``identity`` needs ``latent_dim == size``: the latent *is*
the vector, and stage 1 is skipped (the autoencoder has no parameters).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlatent.builtin.options import VectorOptions
from mmlatent.modality import Autoencoder, Modality

__all__ = ["IdentityAutoencoder", "MLPAutoencoder", "VectorModality", "VectorOptions", "mlp"]


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of widths ``sizes`` with SiLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.SiLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class MLPAutoencoder(Autoencoder):
    """``(B, size) -> (B, latent_dim) -> (B, size)`` with mirrored SiLU MLPs and an MSE loss."""

    def __init__(self, size: int, latent_dim: int, hidden: list[int]) -> None:
        super().__init__(latent_dim)
        self.size = int(size)
        self.encoder = mlp([self.size, *hidden, self.latent_dim])
        self.decoder = mlp([self.latent_dim, *reversed(hidden), self.size])

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x.flatten(1).float())

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def reconstruction_loss(self, x: Tensor, decoded: Tensor) -> Tensor:
        """Mean squared error over batch and features (a scalar)."""
        return F.mse_loss(decoded, x.flatten(1).float())


class IdentityAutoencoder(Autoencoder):
    """The latent is the vector itself (``latent_dim == size``); no parameters, so no stage 1."""

    def encode(self, x: Tensor) -> Tensor:
        return x.flatten(1).float()

    def decode(self, z: Tensor) -> Tensor:
        return z

    def reconstruction_loss(self, x: Tensor, decoded: Tensor) -> Tensor:
        return F.mse_loss(decoded, x.flatten(1).float())


class VectorModality(Modality):
    """Fixed-size float vectors; see the module docstring for the options."""

    needs_fit = True  # learns ``size`` from the training data when the options leave it out
    file_suffixes = (".npy", ".safetensors", ".csv")

    def __init__(self, name: str, options: VectorOptions, latent_dim: int) -> None:
        super().__init__(name, options, latent_dim)
        self.size: int | None = options.size
        if options.arch == "identity" and self.size is None:
            self.size = self.latent_dim
        self._check_identity()

    def _check_identity(self) -> None:
        if self.options.arch == "identity" and self.size != self.latent_dim:
            raise ValueError(
                f"modality {self.name!r} (kind vector, arch identity): latent_dim must equal the input size "
                f"(latent_dim={self.latent_dim}, size={self.size}); use arch: mlp to compress"
            )

    # ----------------------------------------------------------------------------- fitted state
    def fit(self, values: Iterable[Any]) -> None:
        """Take the input size from the first training value (checked against ``options.size``)."""
        for value in values:
            size = int(torch.as_tensor(value).numel())
            break
        else:
            raise ValueError(f"modality {self.name!r} (kind vector): no training values to fit on")
        if self.options.size is not None and size != self.options.size:
            raise ValueError(
                f"modality {self.name!r} (kind vector): options.size is {self.options.size} "
                f"but the training data has vectors of size {size}"
            )
        self.size = size
        self._check_identity()

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = None if state.get("size") is None else int(state["size"])
        self._check_identity()

    def _require_size(self) -> int:
        if self.size is None:
            raise ValueError(
                f"modality {self.name!r} (kind vector): the input size is unknown; set options.size "
                "or fit the modality on training data first"
            )
        return self.size

    # ------------------------------------------------------------------------------------- data
    @property
    def item_shape(self) -> tuple[int, ...] | None:
        return None if self.size is None else (self.size,)

    def preprocess(self, value: Any) -> Tensor:
        x = torch.as_tensor(value).detach().reshape(-1).to(torch.float32)
        size = self._require_size()
        if x.numel() != size:
            raise ValueError(
                f"modality {self.name!r} (kind vector): expected a vector of size {size}, got {x.numel()} values"
            )
        return x

    def prepare_batch(self, batch: Any) -> Tensor:
        """``(N, size)`` of any real dtype -> float32 (integer and bool vectors are exact in float32
        up to 2^24, which is what ``preprocess`` does with a raw value too)."""
        batch = super().prepare_batch(batch)
        return batch if batch.is_floating_point() else batch.to(torch.float32)

    # ------------------------------------------------------------------------------------ model
    def build_autoencoder(self) -> Autoencoder:
        size = self._require_size()
        if self.options.arch == "identity":
            return IdentityAutoencoder(self.latent_dim)
        return MLPAutoencoder(size, self.latent_dim, list(self.options.hidden))

    def build_classifier(self, num_classes: int) -> nn.Module:
        """MLP ``(B, size) -> (B, num_classes)`` logits."""
        return nn.Sequential(nn.Flatten(1), mlp([self._require_size(), *self.options.hidden, int(num_classes)]))

    # ----------------------------------------------------------------------------------- people
    def to_values(self, batch: Tensor) -> list[list[float]]:
        return batch.detach().cpu().flatten(1).tolist()

    def render(self, batch: Tensor, path: Path) -> list[Path]:
        """``path.safetensors`` with the batch, and ``path.png``: a scatter plot of dims 0 and 1."""
        written = super().render(batch, path)
        png = Path(path).with_suffix(".png")
        x = batch.detach().cpu().float().flatten(1)
        # Figure + Agg canvas directly: no pyplot, so no global backend is touched.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        if x.shape[1] >= 2:
            ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=8)
            ax.set_xlabel(f"{self.name}[0]")
            ax.set_ylabel(f"{self.name}[1]")
        else:
            ax.scatter(range(x.shape[0]), x[:, 0].numpy(), s=8)
            ax.set_xlabel("sample")
            ax.set_ylabel(f"{self.name}[0]")
        ax.set_title(f"{self.name} ({x.shape[0]} samples)")
        fig.tight_layout()
        fig.savefig(str(png))
        return [*written, png]

    def read_file(self, path: Path) -> Tensor:
        """``.npy``, ``.safetensors`` (the tensor named like the modality, else the first) or
        ``.csv`` (comma-separated numbers, one vector per row, an optional header row)
        -> ``(N, size)`` float32."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"modality {self.name!r}: no such file: {path}")
        if path.suffix == ".csv":
            batch = _read_csv(path, self.name)
        else:
            batch = super().read_file(path)
        batch = batch.to(torch.float32)
        size = self._require_size()
        if batch.dim() <= 1 and batch.numel() == size:
            batch = batch.reshape(1, size)
        elif batch.dim() == 1 and size == 1:
            batch = batch.reshape(-1, 1)
        batch = batch.flatten(1) if batch.dim() > 1 else batch
        if batch.dim() != 2 or batch.shape[1] != size:
            raise ValueError(
                f"modality {self.name!r} (kind vector): {path.name} holds shape {tuple(batch.shape)}, "
                f"expected (N, {size})"
            )
        return batch


def _read_csv(path: Path, name: str) -> Tensor:
    with open(path, newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if rows:
        try:
            [float(cell) for cell in rows[0]]
        except ValueError:
            rows = rows[1:]  # a header row
    try:
        values = [[float(cell) for cell in row] for row in rows]
    except ValueError as exc:
        raise ValueError(f"modality {name!r}: {path.name} is not a CSV of numbers ({exc})") from None
    if not values or len({len(row) for row in values}) != 1:
        raise ValueError(f"modality {name!r}: {path.name} must hold rows of equal length (one vector per row)")
    return torch.tensor(values, dtype=torch.float32)
