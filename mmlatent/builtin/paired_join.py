"""Joining the sources of dataset ``paired`` by label (:mod:`mmlatent.builtin.paired` has its options).

:func:`join_by_label` draws the rows of same-class items, :class:`PairedDataset` serves them and
:func:`build_paired` (the ``paired`` spec's ``build``) puts the two together for one split.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from mmlatent.builtin.paired import LABEL, PairedOptions, _resolve, common_splits
from mmlatent.data import read_labels

__all__ = ["PairedDataset", "build_paired", "join_by_label", "read_labels"]

log = logging.getLogger(__name__)


def join_by_label(labels: Sequence[np.ndarray], k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of same-class items, int64 ``(M, S)``: column ``j`` indexes source ``j``'s items.

    ``labels``: one int array ``(N_j,)`` per source. Every item of source 0 whose class every other
    source has appears in exactly ``k`` rows; its partners in source ``j`` are drawn by cycling
    through fresh permutations of source ``j``'s items of that class (even use). The rows are
    shuffled. Items of source 0 with a class some source lacks are left out.
    """
    first = np.asarray(labels[0], np.int64)
    shared = first
    for other in labels[1:]:
        shared = np.intersect1d(shared, other)
    anchor = np.tile(np.flatnonzero(np.isin(first, shared)), k)
    columns = [anchor]
    for other in labels[1:]:
        other = np.asarray(other, np.int64)
        partner = np.empty_like(anchor)
        for label in np.unique(first[anchor]):
            requests = np.flatnonzero(first[anchor] == label)
            pool = np.flatnonzero(other == label)
            cycles = -(-len(requests) // len(pool))
            partner[requests] = np.concatenate([rng.permutation(pool) for _ in range(cycles)])[: len(requests)]
        columns.append(partner)
    rows = np.stack(columns, axis=1) if len(anchor) else np.zeros((0, len(labels)), np.int64)
    return rows[rng.permutation(len(rows))]


class PairedDataset(Dataset):
    """Joined items: item ``i`` = ``{output: source j's item rows[i, j][field], ..., "label": labels[i]}``.

    ``sources``: one dataset per source; ``renamings``: source field -> output field, per source;
    ``rows``: int64 ``(N, S)`` item index per source; ``labels``: int64 ``(N,)`` (the first source's).
    """

    def __init__(self, sources: Sequence[Any], renamings: Sequence[dict[str, str]], rows: np.ndarray,
                 labels: np.ndarray) -> None:
        self.sources = list(sources)
        self.renamings = [dict(renaming) for renaming in renamings]
        self.rows = np.asarray(rows, np.int64)
        self.labels = np.asarray(labels, np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} items")
        item: dict[str, Any] = {}
        for source, renaming, row in zip(self.sources, self.renamings, self.rows[i]):
            source_item = source[int(row)]
            for source_field, output in renaming.items():
                item[output] = source_item[source_field]
        item[LABEL] = int(self.labels[i])
        return item


def build_paired(options: PairedOptions, split: str) -> PairedDataset:
    """The joined dataset of ``split`` (one of the splits every source has)."""
    splits = common_splits(options)
    if split not in splits:
        raise ValueError(f"dataset 'paired': no {split!r} split (the splits every source has: {', '.join(splits)})")
    sources = _resolve(options)
    datasets = [source.spec.build(source.options, split) for source in sources]
    labels = [read_labels(dataset, f"{source}, split {split!r}", "paired joins items by label")
              for source, dataset in zip(sources, datasets)]
    k = options.k if split == "train" else options.k_test
    rng = np.random.default_rng([options.seed, zlib.crc32(split.encode())])
    rows = join_by_label(labels, k, rng)
    left_out = len(labels[0]) - len(rows) // k
    if len(labels[0]) and not len(rows):
        raise ValueError(f"dataset 'paired', split {split!r}: no class of {sources[0]} is in every other source "
                         f"(classes: {' / '.join(str(sorted(set(map(int, y))))[:80] for y in labels)})")
    if left_out:
        log.warning("dataset 'paired', split %r: %d of %d items of %s are left out (their class is missing "
                    "from another source)", split, left_out, len(labels[0]), sources[0])
    return PairedDataset(datasets, [source.renaming for source in sources], rows, labels[0][rows[:, 0]])
