"""Garbage recipe files: each is one clear RecipeError, exit 2, no traceback, no hang (each case < 2 s).

Binary and UTF-16 files, 5,000-deep nesting, a 50 MB file, a "billion laughs", run names that are not
a folder name (``..``, ``.``, 300 characters), empty files, directories, ... (mmlatent/recipe.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from mmlatent.cli import main as cli_main
from mmlatent.recipe import MAX_DEPTH, MAX_NAME_CHARS, load_recipe
from gaussian_fixtures import gaussian_recipe

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi"))
NAME_RULE = "name: a run name must start with a letter or digit, use only letters, digits, '_', '.', '-'"


def _sparse(path: Path, data: Path) -> None:
    """A 50 MB recipe that costs no disk: the size must be refused before a byte is read."""
    path.write_text("name: x\nseed: [")
    os.truncate(path, 50 * 2**20)


def _named(name):
    """A valid recipe except for its ``name``."""
    return lambda path, data: path.write_text(yaml.safe_dump({**gaussian_recipe(data), "name": name}))


# (id, file content (text, bytes) or a writer(path, data), expected substring of the one error)
GARBAGE = [
    ("utf-16", "name: x\n".encode("utf-16"),
     "the recipe is not UTF-8 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"),
    ("utf-32", "name: x\n".encode("utf-32"), "(it starts with a UTF-32 byte-order mark)"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "the recipe contains binary data (byte 0x89 at offset 0)"),
    ("nul byte", b"name: x\x00y\n", "binary data (byte 0x00 at offset 7)"),
    ("latin-1", "name: caf\xe9\n".encode("latin-1"), "the recipe is not UTF-8 text (byte 0xe9 at offset 9)"),
    ("5000 deep", "a: " + "[" * 5000 + "]" * 5000,
     f"the recipe is nested more than {MAX_DEPTH} levels deep (the limit; a real recipe has fewer than 10)"),
    ("200 deep block", "".join(f"{'  ' * i}k:\n" for i in range(200)), "nested more than 50 levels deep"),
    ("deep by alias", "a: &a " + "[" * 30 + "]" * 30 + "\nb: " + "[" * 30 + "*a" + "]" * 30,
     "nested more than 50 levels deep"),
    ("50 MB", _sparse, "the recipe is 52,428,800 bytes, more than the limit of 1,048,576 bytes"),
    ("20,000 integers", "seed: [" + ", ".join(["1"] * 20_000) + "]\n", "the recipe holds more than 10,000 values"),
    ("billion laughs", BILLION_LAUGHS, "holds more than 10,000 values (the limit, counting every use of a YAML alias"),
    ("empty file", "", "a recipe must be a YAML mapping at the top level (got nothing: the file is empty"),
    ("only a comment", "# a recipe, some day\n", "(got nothing: the file is empty or only comments)"),
    ("top-level list", "- a\n- b\n", "a recipe must be a YAML mapping at the top level (got [a, b])"),
    ("two documents", "a: 1\n---\nb: 2\n", "expected a single document in the stream, but found another document"),
    ("impossible date", "name: 2024-13-45\n", "invalid YAML: month must be in 1..12"),
    ("directory", lambda path, data: path.mkdir(), "this is a directory, not a recipe file"),
    ("missing file", lambda path, data: None, "cannot read the recipe: No such file or directory"),
    ("name is a number", _named(123), "name: Input should be a valid string (got 123)"),
    ("name ..", _named(".."), f"{NAME_RULE} and have at most {MAX_NAME_CHARS} characters (it names the folder "
                              f"runs/<name>) (got '..')"),
    ("name .", _named("."), f"{NAME_RULE}"),
    ("hidden name", _named(".run"), f"{NAME_RULE}"),
    ("name -x", _named("-x"), f"{NAME_RULE}"),
    ("name with a slash", _named("a/../.."), f"{NAME_RULE}"),
    ("name of 300 characters", _named("a" * 300), f"{NAME_RULE}"),
    ("empty name", _named(""), f"{NAME_RULE}"),
]


def _write(path: Path, data: Path, content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        content(path, data)


@pytest.mark.parametrize("case", GARBAGE, ids=[case[0] for case in GARBAGE])
def test_garbage_recipe_is_one_clear_error(case, tmp_path, gaussian_data, capsys, monkeypatch):
    _, content, expected = case
    path = tmp_path / "garbage.yaml"
    _write(path, gaussian_data, content)
    start = time.perf_counter()
    assert cli_main(["validate", str(path)]) == 2
    assert time.perf_counter() - start < 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"{path}: 1 error", err
    assert expected in err, err
    assert "Traceback" not in err
    # `train --overwrite` refuses it too and touches nothing (name '..' once deleted the parent folder)
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    assert cli_main(["train", str(path), "--overwrite"]) == 2
    assert sorted(os.listdir(tmp_path)) == before
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["a", "7", "run_1.v2-x", "Mnist.SVHN", "a" * MAX_NAME_CHARS])
def test_folder_names_are_accepted(name, tmp_path, gaussian_data):
    path = tmp_path / "recipe.yaml"
    _named(name)(path, gaussian_data)
    assert load_recipe(path).name == name


def test_aliases_within_the_limits_still_work(tmp_path, gaussian_data):
    recipe = gaussian_recipe(gaussian_data)
    recipe["modalities"]["a"]["train"] = recipe["modalities"]["b"]["train"] = {"steps": 3}
    text = yaml.safe_dump(recipe, sort_keys=False)  # the dumper writes the shared mapping once: &id001 / *id001
    assert "*id001" in text
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    recipe = load_recipe(path)
    assert recipe.modalities["a"].train.steps == recipe.modalities["b"].train.steps == 3


@pytest.mark.parametrize("value, expected", [
    ("1" * 20_000, "diffusion.train.lr: the --set value is 20,000 characters long, more than the limit of 10,000"),
    ("[" * 5000 + "]" * 5000, f"diffusion.train.lr: the --set value is nested more than {MAX_DEPTH} levels deep"),
    ("[&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], "
     "&c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]]",
     "diffusion.train.lr: the --set value holds more than 10,000 values"),
])
def test_set_values_are_bounded(value, expected, tmp_path, gaussian_data, write_recipe, capsys):
    path = write_recipe(gaussian_recipe(gaussian_data))
    assert cli_main(["validate", str(path), "--set", f"diffusion.train.lr={value}"]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
