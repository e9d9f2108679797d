"""The recipes shipped inside the ``mmlatent`` package, addressable by name, and ``mmlatent recipes``.

A recipe argument (``mmlatent train quickstart``, ``mmlatent validate baselines/cub_mvae``) is a
file when one exists at that path, else the name of a shipped recipe: its path under
``mmlatent/recipes/`` without ``.yaml`` (the clone's ``recipes/`` folder is the same folder). Only
YAML is read here (no torch): listing the recipes says which plugins each one needs and whether
they are installed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ShippedRecipe", "recipes_command", "resolve_recipe", "shipped_recipes"]

SUFFIX = ".yaml"


def recipes_folder() -> Path:
    """The folder of the shipped recipes (inside the installed package)."""
    return Path(str(files("mmlatent") / "recipes"))


def shipped_recipes() -> dict[str, Path]:
    """Name -> file of every shipped recipe, sorted by name (``quickstart``, ``baselines/cub_mvae``, ...)."""
    folder = recipes_folder()
    if not folder.is_dir():
        return {}
    return {path.relative_to(folder).with_suffix("").as_posix(): path for path in sorted(folder.rglob(f"*{SUFFIX}"))}


def resolve_recipe(argument: str | Path) -> Path:
    """The recipe file an argument names: the path itself when it exists (or looks like a file
    path), else the shipped recipe of that name; an unknown name is returned as a path, so that
    reading it reports the missing file (:func:`mmlatent.recipe.load_recipe` adds the names)."""
    path = Path(argument)
    if path.exists() or path.suffix in (SUFFIX, ".yml"):
        return path
    return shipped_recipes().get(str(argument).strip("/"), path)


def unknown_recipe_hint(argument: str | Path) -> str:
    """A sentence for a recipe argument that is neither a file nor a shipped recipe."""
    names = list(shipped_recipes())
    return (f"{str(argument)!r} is neither a recipe file nor a shipped recipe; shipped: {', '.join(names)} "
            "(`mmlatent recipes` lists them with the plugins they need)")


@dataclass(frozen=True)
class ShippedRecipe:
    """One shipped recipe as ``mmlatent recipes`` lists it: what it needs and what is missing."""

    name: str
    path: str
    dataset: str
    kinds: list[str]
    family: str
    missing: list[str]  # "dataset x", "modality kind y", "model family z" that no installed plugin provides


def describe_recipes() -> list[ShippedRecipe]:
    """Every shipped recipe with the dataset, kinds and family it names, checked against the
    installed plugins (registrations only: no torch)."""
    from mmlatent.families import DEFAULT_FAMILY
    from mmlatent.plugins import get_registry

    registry = get_registry()
    described = []
    for name, path in shipped_recipes().items():
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        dataset = str((raw.get("data") or {}).get("dataset", ""))
        kinds = sorted({str(m.get("kind", "")) for m in (raw.get("modalities") or {}).values() if isinstance(m, dict)})
        family = str((raw.get("model") or {}).get("family", DEFAULT_FAMILY))
        missing = [f"dataset {dataset}"] if dataset not in registry.datasets else []
        missing += [f"modality kind {kind}" for kind in kinds if kind not in registry.modalities]
        missing += [f"model family {family}"] if family not in registry.models else []
        described.append(ShippedRecipe(name, str(path), dataset, kinds, family, missing))
    return described


def recipes_command(as_json: bool = False) -> int:
    """``mmlatent recipes``: the shipped recipes, what they need, and whether it is installed."""
    from mmlatent.plugins import aligned_columns

    described = describe_recipes()
    if as_json:
        print(json.dumps([asdict(recipe) for recipe in described], indent=2))
        return 0
    rows = [("RECIPE", "DATASET", "MODALITY KINDS", "FAMILY", "STATUS")]
    for recipe in described:
        status = "plugins installed" if not recipe.missing else "needs " + ", ".join(recipe.missing)
        rows.append((recipe.name, recipe.dataset, ", ".join(recipe.kinds), recipe.family, status))
    print("\n".join(aligned_columns(rows)))
    print(f"\n{len(described)} recipes in {recipes_folder()}; run one by name: mmlatent train quickstart",
          file=sys.stderr)
    return 0
