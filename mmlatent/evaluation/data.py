"""Labelled evaluation data: a dataset split collated into data-space tensors.

Evaluation works on whole splits held in memory as ``{name: (N, *item_shape) tensor, "label":
(N,) long}``, built with the pipeline's own collation (``pipe.dataset(split)`` and
``pipe.collate(items)``), so that classifiers and generated samples see exactly the layout the
autoencoders see. A split whose items lack modalities (:mod:`mmlatent.missing`) is evaluated on its
complete items; the training split of the classifiers keeps every item with ``"present": (N, M)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mmlatent.model import GenerativeModel

__all__ = ["EvaluationError", "load_split", "subset", "num_items"]


class EvaluationError(RuntimeError):
    """An evaluation that cannot be done as asked (no labels, no test split, no classifier, ...)."""

    exit_code = 2  # mmlatent.errors: a message, no traceback


def num_items(data: dict[str, Tensor]) -> int:
    """Number of items of a collated split."""
    return int(next(iter(data.values())).shape[0])


def subset(data: dict[str, Tensor], index: Tensor | slice) -> dict[str, Tensor]:
    """The same items of every tensor of a collated split."""
    return {key: value[index] for key, value in data.items()}


def _select_indices(size: int, limit: int | None, seed: int) -> list[int]:
    """All indices, or ``limit`` of them drawn once with a fixed seed (sorted).

    Drawing (rather than taking the first ``limit``) keeps a limited evaluation balanced when a
    split is stored sorted by class; the fixed seed keeps the same items across runs and samplers.
    """
    if limit is None or limit >= size:
        return list(range(size))
    if limit <= 0:
        raise EvaluationError(f"limit must be positive, got {limit}")
    generator = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(size, generator=generator)[:limit].tolist())


def load_split(
    pipe: GenerativeModel,
    split: str,
    *,
    limit: int | None = None,
    require_labels: bool = True,
    chunk_size: int = 512,
    selection_seed: int = 0,
    keep_incomplete: bool = False,
) -> dict[str, Tensor]:
    """Collate a split of the pipeline's dataset into ``{name: (N, ...), "label": (N,)}``.

    ``limit`` keeps at most that many items (a fixed random subset, see :func:`_select_indices`).
    Items that lack a modality are left out, unless ``keep_incomplete``: then every item is kept,
    with ``"present": (N, M) bool`` (``pipe.names`` order) and zeros for the missing values.
    Raises :class:`EvaluationError` when the split is missing or, with ``require_labels``, has no
    labels.
    """
    try:
        dataset = pipe.dataset(split)
    except (KeyError, ValueError) as error:
        raise EvaluationError(f"the dataset has no {split!r} split ({error})") from error
    size = len(dataset)
    if size == 0:
        raise EvaluationError(f"the {split!r} split is empty")
    indices = _select_indices(size, limit, selection_seed)
    chunks: list[dict[str, Tensor]] = []
    for start in range(0, len(indices), chunk_size):
        items: Sequence[dict[str, Any]] = [dataset[i] for i in indices[start : start + chunk_size]]
        chunks.append(pipe.collate(list(items)))
    data = _concatenate(chunks, list(pipe.names))
    if "present" in data and not keep_incomplete:
        data = subset({key: value for key, value in data.items() if key != "present"}, data["present"].all(1))
        if num_items(data) == 0:
            raise EvaluationError(f"no item of the {split!r} split has every modality")
    if require_labels and "label" not in data:
        raise EvaluationError(
            f"the {split!r} split has no labels: coherence and classifier Frechet distances need "
            "a labelled dataset (items with an integer 'label')"
        )
    if "label" in data:
        data["label"] = data["label"].long().reshape(-1)
    return data


def _concatenate(chunks: Sequence[dict[str, Tensor]], names: Sequence[str]) -> dict[str, Tensor]:
    """Collated chunks -> one collated split; ``"present"`` (and zeros) when any chunk lacks values."""
    if not any("present" in chunk for chunk in chunks):
        return {key: torch.cat([chunk[key] for chunk in chunks]) for key in chunks[0]}
    data: dict[str, Tensor] = {}
    for name in names:
        example = next((chunk[name] for chunk in chunks if name in chunk), None)
        if example is None:
            continue
        data[name] = torch.cat([chunk[name] if name in chunk else
                                example.new_zeros((len(chunk["present"]), *example.shape[1:])) for chunk in chunks])
    data["present"] = torch.cat([chunk["present"] if "present" in chunk else
                                 torch.ones(len(chunk[names[0]]), len(names), dtype=torch.bool) for chunk in chunks])
    if all("label" in chunk for chunk in chunks):
        data["label"] = torch.cat([chunk["label"] for chunk in chunks])
    return data
