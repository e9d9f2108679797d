"""docs/recipes.md is generated from mmlatent/recipe.py and must not drift from it."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from scripts import load_script

from mmlatent.recipe import Recipe

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docs" / "gen_recipe_reference.py"
REFERENCE = REPO / "docs" / "recipes.md"


@pytest.fixture(scope="module")
def generator():
    return load_script(SCRIPT)


def _walk(model: type[BaseModel], prefix: str = ""):
    """(dotted key, field) for every field of the recipe models, recursively (mappings as <name>)."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        yield key, field
        annotation = field.annotation
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        candidates = list(typing.get_args(annotation)) if union else [annotation]
        for candidate in candidates:
            if inspect.isclass(candidate) and issubclass(candidate, BaseModel):
                yield from _walk(candidate, f"{key}.")
            elif typing.get_origin(candidate) is dict:
                value = typing.get_args(candidate)[1]
                if inspect.isclass(value) and issubclass(value, BaseModel):
                    yield from _walk(value, f"{key}.<name>.")


KEYS = list(_walk(Recipe))


def test_committed_reference_is_up_to_date(generator):
    assert REFERENCE.is_file(), "run: python docs/gen_recipe_reference.py"
    assert REFERENCE.read_text(encoding="utf-8") == generator.render(), (
        "docs/recipes.md is out of date: run .venv/bin/python docs/gen_recipe_reference.py")


def test_check_mode_agrees(generator, capsys):
    assert generator.main(["--check"]) == 0, capsys.readouterr().err


def test_every_key_is_in_the_reference(generator):
    text = generator.render()
    assert len(KEYS) > 40
    missing = [key for key, _ in KEYS if f"| `{key}` |" not in text]
    assert not missing, f"keys missing from the reference: {missing}"


@pytest.mark.parametrize("key,field", KEYS, ids=[key for key, _ in KEYS])
def test_every_recipe_field_has_a_description(key, field):
    assert field.description and field.description.strip(), f"{key}: add description= in mmlatent/recipe.py"


def test_defaults_and_constraints_are_rendered(generator):
    text = generator.render()
    assert "| `diffusion.d` | number, &gt;= 0, &lt;= 1 | `0.5` |" in text
    assert "| `data.dataset` | string, at least 1 character | *required* |" in text
    assert "| `sampling.steps` | integer or null, &gt; 0 | `10` |" in text
    assert '| `diffusion.subset_sampling` | "per_sample" \\| "per_batch" | `per_sample` |' in text
    for readme in ("plugins/mmlatent-image/README.md", "plugins/mmlatent-text/README.md"):
        assert f"(../{readme})" in text and (REPO / readme).is_file()


def test_type_names(generator):
    assert generator.type_name(int | None) == "integer or null"
    assert generator.type_name(dict[str, float]) == "mapping of name to number"
    assert generator.type_name(typing.Literal["a", "b"]) == '"a" | "b"'
    assert generator.type_name(list[int]) == "list of integer"
