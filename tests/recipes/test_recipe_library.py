"""The shipped recipes: inside the package, addressable by name, listed by ``mmlatent recipes``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmlatent.cli import main
from mmlatent.plugins import get_registry
from mmlatent.recipe import RecipeError, load_recipe
from mmlatent.recipe_library import recipes_folder, resolve_recipe, shipped_recipes

ROOT = Path(__file__).resolve().parents[2]


def test_the_clone_recipes_folder_is_the_package_folder() -> None:
    assert (ROOT / "recipes").resolve() == recipes_folder().resolve()
    names = shipped_recipes()
    assert {"quickstart", "cub", "cub_star", "digits_audio", "baselines/cub_mvae"} <= set(names)
    assert all(path.suffix == ".yaml" and path.is_file() for path in names.values())


def test_a_name_resolves_to_the_shipped_file_and_a_path_stays_a_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_recipe("quickstart") == shipped_recipes()["quickstart"]
    assert resolve_recipe("baselines/mnist_svhn_mvae") == shipped_recipes()["baselines/mnist_svhn_mvae"]
    local = tmp_path / "quickstart"  # a file of that name wins over the shipped recipe
    local.write_text("name: mine\n")
    assert resolve_recipe("quickstart") == Path("quickstart")
    assert resolve_recipe("other.yaml") == Path("other.yaml")


def test_load_by_name_equals_load_by_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    by_name = load_recipe("quickstart", ["diffusion.train.steps=7"])
    by_path = load_recipe(ROOT / "recipes/quickstart.yaml", ["diffusion.train.steps=7"])
    assert by_name.to_yaml() == by_path.to_yaml()


def test_an_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match="neither a recipe file nor a shipped recipe; shipped: .*quickstart"):
        load_recipe("quikstart")
    assert main(["validate", "quikstart"]) == 2
    assert "mmlatent recipes" in capsys.readouterr().err
    with pytest.raises(RecipeError, match="No such file"):  # a file path keeps the file error
        load_recipe("quikstart.yaml")


def test_recipes_command_lists_every_recipe_with_what_it_needs(capsys) -> None:
    assert main(["recipes", "--json"]) == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert set(listed) == set(shipped_recipes())
    assert listed["quickstart"]["dataset"] == "digits_pair"
    assert listed["quickstart"]["kinds"] == ["image", "text"]
    assert listed["baselines/cub_mvae"]["family"] == "mvae"
    assert all(entry["missing"] == [] for entry in listed.values())  # every plugin is installed here
    assert main(["recipes"]) == 0
    table = capsys.readouterr().out
    assert "quickstart" in table and "plugins installed" in table


@pytest.fixture
def only_the_image_plugin(monkeypatch):
    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", "mmlatent-image")  # no text, audio or baselines plugin
    get_registry(reload=True)
    yield
    monkeypatch.undo()
    get_registry(reload=True)


def test_recipes_command_says_what_is_missing(capsys, only_the_image_plugin) -> None:
    assert main(["recipes", "--json"]) == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert listed["quickstart"]["missing"] == ["modality kind text"]
    assert listed["baselines/mnist_svhn_mvae"]["missing"] == ["model family mvae"]
    assert listed["mnist_svhn"]["missing"] == []
