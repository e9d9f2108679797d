"""Shared fixtures of the mmlatent-baselines tests: the tiny digits recipe
(:mod:`mmlatent_baselines.testing`) with its fitted modalities and one batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from mmlatent_baselines.testing import tiny_recipe


@pytest.fixture(scope="session")
def tiny():
    """``recipe`` (no model section), fitted ``modalities``, a training ``batch`` of 16 items
    ``{name: (16, ...)}`` and the ``train`` split."""
    from mmlatent.build import build_dataset, build_modalities
    from mmlatent.data import ModalityBatches, collate_items
    from mmlatent.recipe import parse_recipe

    recipe = parse_recipe(tiny_recipe())
    modalities = build_modalities(recipe)
    train = build_dataset(recipe, "train")
    modalities["caption"].fit(train[i]["caption"] for i in range(len(train)))
    view = ModalityBatches(train, modalities, {name: name for name in modalities})
    batch = collate_items([view[i] for i in range(16)], modalities)
    return SimpleNamespace(recipe=recipe, modalities=modalities, train=train,
                           batch={name: batch[name] for name in modalities})


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Small tensors on a shared 2-core machine: one thread is faster and steadier."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
