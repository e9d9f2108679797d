"""From a registered dataset's raw item dicts to batches of data-space tensors.

``ModalityBatches`` maps raw items ``{field: raw value, "label": int}`` of a plugin's dataset to
``{modality name: item tensor, "label": int}`` through each modality's ``preprocess``, and
``collate`` turns a list of those into ``{name: (B, *item_shape), "label": (B,)}``. A missing value
(the field absent or None, see :mod:`mmlatent.missing`) stays None in the item; a batch with missing
values gets ``"present": (B, M) bool`` (modality order) and zeros in the missing rows.

``batch_indices`` is the deterministic, resumable order in which training visits a split:
epoch after epoch of seeded permutations, cut into global batches, each process taking its own
contiguous share (data sharded across processes, not duplicated). Batch ``step`` depends only on
``(seed, step)``, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mmlatent.modality import Modality

__all__ = ["ModalityBatches", "batch_indices", "collate_items", "read_labels"]


class ModalityBatches(Dataset):
    """A view of a raw dataset as preprocessed tensors for some modalities.

    ``fields`` maps modality name -> dataset field; items come back as
    ``{name: tensor (*item_shape), "label": int}`` (label only when the raw item has one).
    """

    def __init__(self, dataset: Dataset, modalities: Mapping[str, Modality], fields: Mapping[str, str]) -> None:
        self.dataset = dataset
        self.modalities = dict(modalities)
        self.fields = dict(fields)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        raw = self.dataset[index]
        item: dict[str, Any] = {}
        for name, modality in self.modalities.items():
            value = raw.get(self.fields[name])
            item[name] = None if value is None else modality.preprocess(value)
        if "label" in raw and raw["label"] is not None:
            item["label"] = int(raw["label"])
        return item


def collate_items(items: Sequence[Mapping[str, Any]], modalities: Mapping[str, Modality]) -> dict[str, Tensor]:
    """List of preprocessed items -> ``{name: (B, *item_shape)}`` plus ``"label": (B,) long``.

    When some values are None (missing): ``"present": (B, M) bool`` in ``modalities`` order, the
    missing rows filled with zeros, and a modality missing from every item left out of the batch.
    """
    present = torch.tensor([[item.get(name) is not None for name in modalities] for item in items],
                           dtype=torch.bool).reshape(len(items), len(modalities))
    batch: dict[str, Tensor] = {}
    for column, (name, modality) in enumerate(modalities.items()):
        rows = present[:, column]
        if bool(rows.all()):
            batch[name] = modality.collate([item[name] for item in items])
        elif bool(rows.any()):
            values = modality.collate([item[name] for item in items if item.get(name) is not None])
            filled = values.new_zeros((len(items), *values.shape[1:]))
            filled[rows] = values
            batch[name] = filled
    if not bool(present.all()):
        batch["present"] = present
    if items and all("label" in item for item in items):
        batch["label"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
    return batch


def read_labels(dataset: Any, what: str, purpose: str = "a labelled dataset is needed") -> np.ndarray:
    """The labels of a labelled dataset, int64 ``(len(dataset),)``: its ``labels`` attribute when it
    has one (an array or a sequence of ints, one per item), else ``dataset[i]["label"]`` of every item.
    ``what`` names the dataset and ``purpose`` says why labels are needed in the errors."""
    n = len(dataset)
    labels = getattr(dataset, "labels", None)
    if labels is not None and not callable(labels):
        array = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
        if n == 0 and array.size == 0:
            return np.zeros(0, np.int64)
        if array.shape != (n,) or array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{what}: its `labels` must be {n} integers, got {array.dtype} of shape {array.shape}")
        return array.astype(np.int64)
    read = np.zeros(n, np.int64)
    for i in range(n):
        item = dataset[i]
        label = item.get("label") if isinstance(item, dict) else None
        if not isinstance(label, numbers.Integral) or isinstance(label, bool):
            raise ValueError(f"{what}: item {i} has no int 'label' (got {label!r}): {purpose}")
        read[i] = int(label)
    return read


@lru_cache(maxsize=8)
def _permutation(n: int, seed: int, epoch: int) -> Tensor:
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return torch.randperm(n, generator=generator)


def batch_indices(step: int, n: int, global_batch: int, seed: int, rank: int = 0, world_size: int = 1) -> Tensor:
    """Indices ``(global_batch // world_size,)`` of training batch ``step`` for process ``rank``.

    The stream is the concatenation of per-epoch permutations of ``range(n)``; batch ``step`` is
    the slice ``[step * global_batch, (step + 1) * global_batch)`` of it, split evenly between
    processes. ``global_batch`` may exceed ``n`` (epochs are then chained).
    """
    if n <= 0:
        raise ValueError("cannot draw batches from an empty split")
    local = global_batch // world_size
    start = step * global_batch + rank * local
    chunks, remaining = [], local
    while remaining > 0:
        epoch, offset = divmod(start, n)
        take = min(remaining, n - offset)
        chunks.append(_permutation(n, seed, epoch)[offset:offset + take])
        start += take
        remaining -= take
    return torch.cat(chunks)
