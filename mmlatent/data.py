"""From a registered dataset's raw item dicts to batches of data-space tensors.

``ModalityBatches`` maps raw items ``{field: raw value, "label": int}`` of a plugin's dataset to
``{modality name: item tensor, "label": int}`` through each modality's ``preprocess``, and
``collate`` turns a list of those into ``{name: (B, *item_shape), "label": (B,)}``. A missing value
(the field absent or None, see :mod:`mmlatent.missing`) stays None in the item; a batch with missing
values gets ``"present": (B, M) bool`` (modality order) and zeros in the missing rows.

A value that its modality cannot take (``preprocess`` raises, or returns something other than a
tensor of the modality's ``item_shape``) is a :class:`DatasetItemError`: a user's error (exit 2, no
traceback) naming the item, the field, the modality and its kind, the expected shape and what was
got. It stays one readable message when it comes from a DataLoader worker process, and
:func:`check_dataset_items` finds most such mistakes in the main process before a run writes anything.

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
from torch.utils.data import Dataset, Subset

from mmlatent.errors import UserError
from mmlatent.modality import Modality

__all__ = ["DatasetItemError", "ModalityBatches", "batch_indices", "check_dataset_items", "collate_items",
           "read_labels"]


class DatasetItemError(UserError):
    """A dataset value that its modality cannot take (wrong type or shape); the message names the
    item, the field, the modality and its kind, the expected shape and what was got.

    A DataLoader worker's exception comes back to the main process as ``DatasetItemError(text)``
    where ``text`` is the worker's whole formatted traceback; the constructor keeps only this
    error's own message from it, so the user still reads one message.
    """

    def __init__(self, message: str) -> None:
        marker = f"{type(self).__name__}: "
        if message.startswith("Caught ") and marker in message:  # re-raised from a DataLoader worker
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


def describe_value(value: Any) -> str:
    """What a raw or preprocessed value is, for messages: type, and dtype and shape when it has them."""
    if torch.is_tensor(value):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} NumPy array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} elements"
    if isinstance(value, (str, bytes)):
        return f"a {type(value).__name__} of length {len(value)}"
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {tuple(shape)}" if isinstance(shape, tuple) else "")


def _describe_modality(name: str, modality: Modality, kinds: Mapping[str, str] | None) -> str:
    kind = (kinds or {}).get(name)
    return f"modality {name!r} (kind {kind})" if kind else f"modality {name!r} ({type(modality).__name__})"


def _expected_shape(modality: Modality) -> str:
    shape = modality.item_shape
    return "no fixed shape" if shape is None else f"shape {tuple(shape)}"


class ModalityBatches(Dataset):
    """A view of a raw dataset as preprocessed tensors for some modalities.

    ``fields`` maps modality name -> dataset field; items come back as
    ``{name: tensor (*item_shape), "label": int}`` (label only when the raw item has one).
    ``kinds`` (modality name -> kind) and ``source`` (e.g. ``"dataset 'digits' (split 'train')"``)
    only make the :class:`DatasetItemError` of a value the modality cannot take more precise.
    """

    def __init__(self, dataset: Dataset, modalities: Mapping[str, Modality], fields: Mapping[str, str],
                 kinds: Mapping[str, str] | None = None, source: str = "dataset") -> None:
        self.dataset = dataset
        self.modalities = dict(modalities)
        self.fields = dict(fields)
        self.kinds = dict(kinds or {})
        self.source = source

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        raw = self.dataset[index]
        if not isinstance(raw, Mapping):
            raise DatasetItemError(f"{self.source} item {self._original_index(index)}: items must be dicts "
                                   f"{{field: raw value, ..., 'label': int}}, got {describe_value(raw)}")
        item: dict[str, Any] = {}
        for name, modality in self.modalities.items():
            value = raw.get(self.fields[name])
            item[name] = None if value is None else self._preprocess(index, name, modality, value)
        if "label" in raw and raw["label"] is not None:
            item["label"] = int(raw["label"])
        return item

    def _preprocess(self, index: int, name: str, modality: Modality, value: Any) -> Tensor:
        """``modality.preprocess(value)``, checked: a tensor of the modality's ``item_shape``."""
        try:
            tensor = modality.preprocess(value)
        except (ValueError, TypeError, RuntimeError, IndexError, KeyError) as error:
            raise DatasetItemError(f"{self._where(index, name, modality)}, got {describe_value(value)} "
                                   f"({type(error).__name__}: {error})") from error
        shape = modality.item_shape
        if not torch.is_tensor(tensor) or (shape is not None and tuple(tensor.shape) != tuple(shape)):
            raise DatasetItemError(f"{self._where(index, name, modality)}, got {describe_value(value)}, which "
                                   f"preprocess made {describe_value(tensor)}")
        return tensor

    def _where(self, index: int, name: str, modality: Modality) -> str:
        """The start of an error message: the item, the field, the modality and what it expects."""
        return (f"{self.source} item {self._original_index(index)}, field {self.fields[name]!r}: "
                f"{_describe_modality(name, modality, self.kinds)} expects {_expected_shape(modality)}")

    def _original_index(self, index: int) -> int:
        """The index in the plugin's dataset of item ``index`` of this view (through ``Subset`` wrappers)."""
        dataset = self.dataset
        while isinstance(dataset, Subset):
            index, dataset = int(dataset.indices[index]), dataset.dataset
        return index


def collate_items(items: Sequence[Mapping[str, Any]], modalities: Mapping[str, Modality],
                  kinds: Mapping[str, str] | None = None) -> dict[str, Tensor]:
    """List of preprocessed items -> ``{name: (B, *item_shape)}`` plus ``"label": (B,) long``.

    When some values are None (missing): ``"present": (B, M) bool`` in ``modalities`` order, the
    missing rows filled with zeros, and a modality missing from every item left out of the batch.
    Items that a modality cannot stack (shapes that differ when ``item_shape`` is not fixed) are a
    :class:`DatasetItemError` (``kinds``, modality name -> kind, for its message).
    """

    def collate(name: str, modality: Modality, values: list[Tensor]) -> Tensor:
        try:
            return modality.collate(values)
        except (RuntimeError, ValueError, TypeError) as error:
            shapes = sorted({tuple(value.shape) for value in values if torch.is_tensor(value)})
            raise DatasetItemError(f"{_describe_modality(name, modality, kinds)} cannot collate items of shapes "
                                   f"{', '.join(map(str, shapes))} ({type(error).__name__}: {error})") from error

    present = torch.tensor([[item.get(name) is not None for name in modalities] for item in items],
                           dtype=torch.bool).reshape(len(items), len(modalities))
    batch: dict[str, Tensor] = {}
    for column, (name, modality) in enumerate(modalities.items()):
        rows = present[:, column]
        if bool(rows.all()):
            batch[name] = collate(name, modality, [item[name] for item in items])
        elif bool(rows.any()):
            values = collate(name, modality, [item[name] for item in items if item.get(name) is not None])
            filled = values.new_zeros((len(items), *values.shape[1:]))
            filled[rows] = values
            batch[name] = filled
    if not bool(present.all()):
        batch["present"] = present
    if items and all("label" in item for item in items):
        batch["label"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
    return batch


def check_dataset_items(splits: Mapping[str, Dataset], modalities: Mapping[str, Modality], fields: Mapping[str, str],
                        dataset_name: str, kinds: Mapping[str, str] | None = None, sample: int = 8) -> None:
    """Preprocess and collate the first ``sample`` items and the last item of every split in this
    process, so that a dataset whose values its modalities cannot take fails with one
    :class:`DatasetItemError` before training writes anything, not deep inside a DataLoader.

    ``splits``: split name -> raw dataset. ``modalities`` that need fitting are fitted here on the
    train split's sample values (their fit errors become :class:`DatasetItemError` too): pass
    modalities built for this check, not the ones training fits on the whole split.
    """
    train = splits.get("train")
    for name, modality in modalities.items():
        if not modality.needs_fit or train is None:
            continue
        field = fields[name]
        values = [value for i in range(min(sample, len(train))) if (value := train[i].get(field)) is not None]
        try:
            modality.fit(values)
        except (ValueError, TypeError, RuntimeError, IndexError, KeyError) as error:
            got = describe_value(values[0]) if values else "no values"
            raise DatasetItemError(f"dataset {dataset_name!r} (split 'train'), field {field!r}: "
                                   f"{_describe_modality(name, modality, kinds)} expects {_expected_shape(modality)} "
                                   f"and cannot fit its preprocessing on the first items (the first is {got}: "
                                   f"{type(error).__name__}: {error})") from error
    for split, dataset in splits.items():
        view = ModalityBatches(dataset, modalities, fields, kinds, source=f"dataset {dataset_name!r} (split {split!r})")
        n = len(view)
        if n:  # an empty split has nothing to check
            indices = sorted(set(range(min(sample, n))) | {n - 1})
            collate_items([view[i] for i in indices], modalities, kinds)


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
