"""A corpus of broken recipes: each exits 2, names the bad path, prints no traceback, writes nothing."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmlatent.cli import main as cli_main
from mmlatent.recipe import RecipeError, load_recipe, parse_recipe
from gaussian_fixtures import gaussian_recipe


def _set(path: str, value):
    def mutate(recipe: dict) -> dict:
        node = recipe
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
        return recipe
    return mutate


def _delete(path: str):
    def mutate(recipe: dict) -> dict:
        node = recipe
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[part]
        del node[parts[-1]]
        return recipe
    return mutate


# (id, mutation of the valid recipe dict OR raw YAML text, expected substring of the error output)
BROKEN = [
    ("negative lr", _set("diffusion.train.lr", -1), "diffusion.train.lr: Input should be greater than 0 (got -1)"),
    ("string lr", _set("diffusion.train.lr", "fast"), "diffusion.train.lr"),
    ("unknown top-level key", _set("optimizer", {"lr": 1}), "optimizer: Extra inputs are not permitted"),
    ("unknown diffusion key", _set("diffusion.temperature", 2), "diffusion.temperature"),
    ("missing data section", _delete("data"), "data: Field required"),
    ("missing name", _delete("name"), "name: Field required"),
    ("missing modalities", _delete("modalities"), "modalities: Field required"),
    ("empty modalities", _set("modalities", {}), "modalities"),
    ("unknown kind", _set("modalities.a.kind", "lidar"), "modalities.a.kind: no installed plugin provides 'lidar'"),
    ("unknown dataset", _set("data.dataset", "imagenet"), "data.dataset: no installed plugin provides dataset 'imagenet'"),
    ("negative latent", _set("modalities.a.latent_dim", -4), "modalities.a.latent_dim"),
    ("zero batch", _set("data.batch_size", 0), "data.batch_size"),
    ("bad option name", _set("modalities.b.options", {"arch": "identity", "size": 3, "hiden": [3]}),
     "modalities.b.options.hiden"),
    ("bad option value", _set("modalities.b.options", {"arch": "transformer", "size": 3}), "modalities.b.options.arch"),
    ("bad dataset option", _set("data.options", {"path": "x.safetensors", "colour": 1}), "data.options.colour"),
    ("d above one", _set("diffusion.d", 1.5), "diffusion.d"),
    ("ema of one", _set("diffusion.train.ema", 1.0), "diffusion.train.ema"),
    ("beta order", _set("diffusion.sde", {"beta_min": 5.0, "beta_max": 1.0}), "diffusion.sde"),
    ("epochs and steps", _set("diffusion.train", {"epochs": 2, "steps": 10}), "diffusion.train"),
    ("list for modalities", _set("modalities", ["a", "b"]), "modalities"),
    ("wrong type for seed", _set("seed", "zero"), "seed"),
    ("unknown modality train key", _set("modalities.a.train", {"epochs": 1, "momentum": 0.9}),
     "modalities.a.train.momentum"),
    ("bad sampling steps", _set("sampling.steps", -3), "sampling.steps"),
    ("unknown sampler", _set("sampling.sampler", "ddimm"), "unknown sampler 'ddimm'"),
    ("unknown sampler option", _set("sampling.options", {"etta": 1.0}), "has no option 'etta'"),
    ("field missing from dataset", _set("modalities.a.field", "nope"), "modalities.a.field: dataset 'tensors' has no field 'nope'"),
    ("reserved modality name", lambda r: {**r, "modalities": {**r["modalities"], "label": r["modalities"]["a"]}},
     "reserved"),
    ("bad yaml", "name: x\ndata: [unclosed\n", "invalid YAML: line"),
    ("top-level list", "- a\n- b\n", "a recipe must be a YAML mapping"),
    ("empty file", "", "a recipe must be a YAML mapping"),
]


def _write_case(tmp_path: Path, data: Path, case) -> Path:
    _, mutation, _ = case
    path = tmp_path / "broken.yaml"
    if isinstance(mutation, str):
        path.write_text(mutation)
    else:
        recipe = mutation(copy.deepcopy(gaussian_recipe(data)))
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_corpus_is_large_enough():
    assert len(BROKEN) >= 20


def test_valid_base_recipe_validates(gaussian_data, write_recipe, capsys):
    path = write_recipe(gaussian_recipe(gaussian_data))
    assert cli_main(["validate", str(path)]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize("case", BROKEN, ids=[case[0] for case in BROKEN])
def test_broken_recipe_is_rejected(case, tmp_path, gaussian_data, capsys, monkeypatch):
    path = _write_case(tmp_path, gaussian_data, case)
    assert cli_main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: "), err
    assert case[2] in err, err
    assert "Traceback" not in err
    # training the same recipe exits 2 too and writes no run directory
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    assert cli_main(["train", str(path), "--output", str(run_dir)]) == 2
    assert not run_dir.exists()
    assert not (tmp_path / "runs").exists()


def test_error_count_and_format(tmp_path, gaussian_data):
    recipe = gaussian_recipe(gaussian_data)
    recipe["diffusion"]["train"]["lr"] = -1
    recipe["data"]["batch_size"] = "many"
    with pytest.raises(RecipeError) as info:
        parse_recipe(recipe, "r.yaml")
    text = info.value.render()
    assert text.splitlines()[0] == "r.yaml: 2 errors"
    assert all(line.startswith("  ") for line in text.splitlines()[1:])


def test_set_overrides_are_typed(gaussian_data, write_recipe):
    path = write_recipe(gaussian_recipe(gaussian_data))
    recipe = load_recipe(path, ["diffusion.train.lr=3e-4", "diffusion.score_net.width=64", "sampling.sampler=ddim"])
    assert recipe.diffusion.train.lr == pytest.approx(3e-4)
    assert recipe.diffusion.score_net.width == 64
    assert recipe.sampling.sampler == "ddim"
    with pytest.raises(RecipeError, match="diffusion.score_net.width"):
        load_recipe(path, ["diffusion.score_net.width=wide"])


def test_plugin_option_defaults_are_resolved(gaussian_data, write_recipe):
    recipe = load_recipe(write_recipe(gaussian_recipe(gaussian_data)))
    assert recipe.modalities["a"].options["arch"] == "identity"
    assert set(yaml.safe_load(recipe.to_yaml())) >= {"name", "data", "modalities", "diffusion", "sampling"}


def test_cli_subprocess_prints_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndata: {dataset: tensors}\nmodalities: {a: {kind: lidar, latent_dim: 2}, b: {kind: vector, latent_dim: 2}}\n")
    proc = subprocess.run([sys.executable, "-m", "mmlatent", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "modalities.a.kind" in proc.stderr
    assert "Traceback" not in proc.stderr
