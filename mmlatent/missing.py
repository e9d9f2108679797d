"""Incomplete data: which modalities each item has, and datasets made incomplete on purpose.

A dataset item may lack a modality: its field is absent from the item dict or ``None``. The
*presence mask* of a split is a bool tensor ``(N, M)``, ``present[n, i]`` True when item ``n`` has
modality ``i`` (recipe order). Training uses it everywhere (:mod:`mmlatent.train`): stage 1 trains
each autoencoder on the items that have its modality, the latent cache stores the mask, the latent
statistics use present items only, and stage 2 makes missing modalities absent (pure noise at
time T, no loss) and draws conditioning sets among present modalities only.

``data.missing`` (:class:`~mmlatent.recipe.MissingConfig`) makes any dataset incomplete for
experiments: :func:`draw_presence` draws the mask (each modality of each item missing
independently with its rate, by label when ``by_label`` says so; an item left with no modality is
drawn again, so the effective rates are those conditioned on keeping one modality: with two
modalities at 0.5 each, a third of the items are complete and a third lack each modality), and
:class:`IncompleteDataset` hides the missing fields (sets them to ``None``).

A dataset may provide ``field_presence(fields) -> (N, M) bool`` (as :class:`IncompleteDataset`
does); otherwise :func:`field_presence` reads every raw item once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from mmlatent.data import read_labels

__all__ = ["CompleteItems", "IncompleteDataset", "draw_presence", "field_presence", "is_missing",
           "missing_probabilities"]

#: Redraws of items that lost every modality before one modality is kept at random.
MAX_REDRAWS = 1000


def is_missing(item: Mapping[str, Any], field: str) -> bool:
    """Whether a raw item lacks ``field`` (absent or None)."""
    return item.get(field) is None


def missing_probabilities(names: Sequence[str], rate: Mapping[str, float],
                          by_label: Mapping[str, Mapping[int, float]], labels: Tensor | None,
                          size: int) -> Tensor:
    """Probability that each modality of each item is missing: float64 ``(N, M)``.

    ``rate[name]`` for every item (0 when not given), replaced by ``by_label[name][label]`` for the
    items of a listed label. ``labels`` ``(N,)`` is needed when ``by_label`` is not empty.
    """
    probabilities = torch.zeros(size, len(names), dtype=torch.float64)
    for column, name in enumerate(names):
        probabilities[:, column] = float(rate.get(name, 0.0))
        table = by_label.get(name) or {}
        if table and labels is None:
            raise ValueError(f"missing rates by label for {name!r} need a labelled dataset")
        for label, value in table.items():
            probabilities[labels == int(label), column] = float(value)
    return probabilities


def draw_presence(probabilities: Tensor, seed: int) -> Tensor:
    """Presence mask bool ``(N, M)``: modality ``i`` of item ``n`` missing with probability
    ``probabilities[n, i]``, independently; items left with no modality are drawn again (after
    :data:`MAX_REDRAWS` rounds, one of their modalities is kept at random)."""
    generator = torch.Generator().manual_seed(int(seed))
    size, count = probabilities.shape
    present = torch.rand(size, count, generator=generator, dtype=torch.float64) >= probabilities
    for _ in range(MAX_REDRAWS):
        empty = ~present.any(1)
        if not bool(empty.any()):
            return present
        rows = empty.nonzero().squeeze(1)
        present[rows] = torch.rand(rows.numel(), count, generator=generator, dtype=torch.float64) >= probabilities[rows]
    rows = (~present.any(1)).nonzero().squeeze(1)
    keep = torch.randint(count, (rows.numel(),), generator=generator)
    present[rows, keep] = True
    return present


def field_presence(dataset: Dataset, fields: Sequence[str]) -> Tensor:
    """Presence mask bool ``(N, M)`` of a raw dataset for the given fields (one per modality):
    the dataset's own ``field_presence(fields)`` when it has one, else read from every item."""
    own = getattr(dataset, "field_presence", None)
    if callable(own):
        return own(fields)
    rows = [[not is_missing(item, field) for field in fields]
            for item in (dataset[index] for index in range(len(dataset)))]  # type: ignore[arg-type]
    return torch.tensor(rows, dtype=torch.bool).reshape(len(rows), len(fields))


class IncompleteDataset(Dataset):
    """A raw dataset with some fields hidden: item ``n`` has ``None`` for field ``fields[i]`` where
    ``present[n, i]`` is False (everything else is the wrapped item, label included).

    Args:
        dataset: a raw dataset (items ``{field: value, "label": int}``).
        fields: the field of each modality, in the order of ``present``'s columns.
        present: bool ``(N, M)`` with ``N = len(dataset)``.
    """

    def __init__(self, dataset: Dataset, fields: Sequence[str], present: Tensor) -> None:
        if present.shape != (len(dataset), len(fields)):  # type: ignore[arg-type]
            raise ValueError(f"presence mask of shape {tuple(present.shape)} for {len(dataset)} items and "  # type: ignore[arg-type]
                             f"{len(fields)} fields")
        self.dataset = dataset
        self.fields = list(fields)
        self.present = present.bool()
        labels = getattr(dataset, "labels", None)
        if labels is not None:
            self.labels = labels

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        for column, field in enumerate(self.fields):
            if not self.present[index, column]:
                item[field] = None
        return item

    def field_presence(self, fields: Sequence[str]) -> Tensor:
        """Presence ``(N, len(fields))`` of the given fields: what the wrapped dataset has
        (:func:`field_presence`) and was not hidden here."""
        present = field_presence(self.dataset, fields).clone()
        for column, field in enumerate(fields):
            if field in self.fields:
                present[:, column] &= self.present[:, self.fields.index(field)]
        return present

    def complete_items(self) -> CompleteItems:
        """The items that kept every modality, as a dataset (complete-case training)."""
        return CompleteItems(self.dataset, self.present.all(1).nonzero().squeeze(1).tolist())

    @classmethod
    def from_rates(cls, dataset: Dataset, names: Sequence[str], fields: Sequence[str], rate: Mapping[str, float],
                   by_label: Mapping[str, Mapping[int, float]], seed: int) -> IncompleteDataset:
        """Draw the missing modalities of ``dataset`` (see :func:`draw_presence`); ``names`` and
        ``fields``: the modalities and their fields, in the same order."""
        labels = None
        if by_label:
            labels = torch.from_numpy(read_labels(dataset, "data.missing", "missing rates by label need labels"))
        probabilities = missing_probabilities(names, rate, by_label, labels, len(dataset))  # type: ignore[arg-type]
        return cls(dataset, fields, draw_presence(probabilities, seed))


class CompleteItems(Dataset):
    """Items ``indices`` of a raw dataset (its ``labels`` attribute kept in step)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        labels = getattr(dataset, "labels", None)
        if labels is not None:
            self.labels = [int(labels[i]) for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.dataset[self.indices[index]]
