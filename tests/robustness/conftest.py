"""A tiny real run (Gaussian data, identity autoencoders, a small score network) for the fault tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fault_fixtures import tiny_recipe, train, write_yaml
from gaussian_fixtures import write_gaussian_data


@pytest.fixture(scope="module")
def gauss_data(tmp_path_factory) -> Path:
    return write_gaussian_data(tmp_path_factory.mktemp("data") / "gauss.safetensors", n=600)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, gauss_data) -> Path:
    """A complete tiny run; tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("finished")
    recipe = write_yaml(root / "recipe.yaml", tiny_recipe(gauss_data))
    assert train(recipe, root / "run") == 0
    return root / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A copy of the finished run, and of its recipe outside it (``tmp_path/recipe-outside.yaml``)."""
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    shutil.copy(finished_run / "recipe.yaml", tmp_path / "recipe-outside.yaml")
    return copy
