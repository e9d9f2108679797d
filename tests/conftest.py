"""Shared fixtures (the data helpers live in tests/gaussian_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaussian_fixtures import write_gaussian_data


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
