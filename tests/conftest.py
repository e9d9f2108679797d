"""Shared fixtures (the data helpers live in tests/gaussian_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaussian_fixtures import write_gaussian_data


@pytest.fixture(scope="module")
def single_thread():
    """Small tensors on a shared 2-core machine: one thread is faster and steadier (used as
    ``pytest.mark.usefixtures("single_thread")``, or by a directory's autouse fixture)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def gaussian_data(tmp_path: Path) -> Path:
    return write_gaussian_data(tmp_path / "gauss.safetensors")


@pytest.fixture
def write_recipe(tmp_path: Path):
    import yaml

    def write(recipe: dict, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        return path

    return write
