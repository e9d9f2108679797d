"""The encode-once latent cache and the per-dimension normalisation statistics.

After stage 1 every split is encoded ONCE by the frozen autoencoders; stage 2 then trains the
score network on these cached latents only. The statistics (mean and std of each latent dimension
over the WHOLE training split, not one batch as in the paper's code) standardise each modality's
latents before they are concatenated, and are stored with the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from mmlatent.checkpoint import load_tensors, save_tensors
from mmlatent.data import ModalityBatches, collate_items
from mmlatent.modality import Autoencoder, Modality
from mmlatent.progress import progress_bar

__all__ = ["LatentStats", "encode_dataset", "load_latents", "save_latents"]


@dataclass
class LatentStats:
    """Per-dimension mean and std of each modality's latents: ``mean[name]``, ``std[name]`` of shape (d_i,)."""

    mean: dict[str, Tensor]
    std: dict[str, Tensor]

    @classmethod
    def fit(cls, latents: Mapping[str, Tensor], min_std: float = 1e-6,
            present: Mapping[str, Tensor] | None = None) -> LatentStats:
        """Statistics of raw latents ``{name: (N, d_i)}`` (population std, floored at ``min_std``);
        ``present[name]`` (bool ``(N,)``, optional) keeps only the items that have the modality."""
        present = present or {}
        kept = {name: z[present[name]] if name in present else z for name, z in latents.items()}
        mean = {name: z.double().mean(0).float() for name, z in kept.items()}
        std = {name: z.double().std(0, unbiased=False).float().clamp_min(min_std) for name, z in kept.items()}
        return cls(mean, std)

    def normalise(self, name: str, z: Tensor) -> Tensor:
        """Raw latents ``(B, d_i)`` -> standardised latents ``(B, d_i)``."""
        return (z - self.mean[name].to(z)) / self.std[name].to(z)

    def denormalise(self, name: str, z: Tensor) -> Tensor:
        """Standardised latents ``(B, d_i)`` -> raw latents for the decoder."""
        return z * self.std[name].to(z) + self.mean[name].to(z)

    def concat(self, latents: Mapping[str, Tensor], names: Sequence[str]) -> Tensor:
        """Raw latents per modality -> standardised, concatenated ``(B, D)`` in ``names`` order."""
        return torch.cat([self.normalise(name, latents[name]) for name in names], dim=1)

    def save(self, path: str | Path) -> None:
        tensors = {f"{name}.mean": m for name, m in self.mean.items()}
        tensors |= {f"{name}.std": s for name, s in self.std.items()}
        save_tensors(path, tensors)

    @classmethod
    def load(cls, path: str | Path) -> LatentStats:
        tensors = load_tensors(path, "latent statistics")
        names = {key.rsplit(".", 1)[0] for key in tensors}
        return cls({n: tensors[f"{n}.mean"] for n in names}, {n: tensors[f"{n}.std"] for n in names})


@torch.no_grad()
def encode_dataset(dataset: Dataset, modalities: Mapping[str, Modality], fields: Mapping[str, str],
                   autoencoders: Mapping[str, Autoencoder], batch_size: int = 256, num_workers: int = 0,
                   device: torch.device | str = "cpu", progress: bool = True, desc: str = "encode",
                   kinds: Mapping[str, str] | None = None, source: str = "dataset") -> dict[str, Tensor]:
    """Encode a whole split once: ``{name: raw latents (N, d_i)}`` plus ``"label": (N,)`` if labelled.

    When items lack modalities, ``"present": (N, M) bool`` (``modalities`` order) comes with them and
    the latents of missing values are zeros. ``kinds`` and ``source`` name the modalities' kinds and
    the split in the error about a value a modality cannot take (:class:`~mmlatent.data.ModalityBatches`)."""
    view = ModalityBatches(dataset, modalities, fields, kinds, source)
    loader = DataLoader(view, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=lambda items: collate_items(items, modalities, kinds))
    parts: dict[str, list[Tensor]] = {name: [] for name in modalities}
    labels: list[Tensor] = []
    presence: list[Tensor] = []
    columns = {name: column for column, name in enumerate(modalities)}
    for batch in progress_bar(loader, desc=desc, disable=not progress, leave=False):
        present = batch["present"] if "present" in batch else \
            torch.ones(len(next(iter(batch.values()))), len(modalities), dtype=torch.bool)
        size = len(present)
        for name, autoencoder in autoencoders.items():
            rows = present[:, columns[name]]
            latents = torch.zeros(size, autoencoder.latent_dim)
            if bool(rows.any()):
                values = batch[name] if bool(rows.all()) else batch[name][rows]
                latents[rows] = autoencoder.encode(values.to(device)).float().cpu()
            parts[name].append(latents)
        presence.append(present)
        if "label" in batch:
            labels.append(batch["label"])
    out = {name: torch.cat(chunks) if chunks else torch.empty(0, autoencoders[name].latent_dim)
           for name, chunks in parts.items()}
    if labels and len(labels) == len(loader):
        out["label"] = torch.cat(labels)
    if presence and not bool(torch.cat(presence).all()):
        out["present"] = torch.cat(presence)
    return out


def save_latents(path: str | Path, latents: Mapping[str, Tensor]) -> None:
    save_tensors(path, latents)


def load_latents(path: str | Path) -> dict[str, Tensor]:
    return load_tensors(path, "latent cache")
