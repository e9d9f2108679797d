"""The shipped recipes: every file in recipes/ validates, carries the paper's hyper-parameters, and
each dataset recipe trains end to end for a few steps on small files in the real data formats
(written by ``mmlatent_image.testing``), loads with ``MLDPipeline`` and generates."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mmlatent import MLDPipeline
from mmlatent.cli import main as cli_main
from mmlatent.diffusion.sampling import SAMPLERS, sampler_options
from mmlatent.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
DATASET_RECIPES = ["mnist_svhn", "cub", "cub_star", "polymnist"]


def recipe_path(name: str) -> Path:
    return REPO / "recipes" / f"{name}.yaml"


# ------------------------------------------------------------------------------ validation
def test_the_dataset_recipes_are_shipped():
    names = {path.stem for path in RECIPES}
    assert set(DATASET_RECIPES) <= names, f"missing recipes: {set(DATASET_RECIPES) - names}"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_validates(path: Path, capsys):
    assert cli_main(["validate", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    recipe = load_recipe(path)
    assert f"OK: {recipe.name}" in out
    assert recipe.name == path.stem  # the default run directory is runs/<file name>


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_sampler_exists_and_accepts_its_options(path: Path):
    sampling = load_recipe(path).sampling
    assert sampling.sampler in SAMPLERS
    unknown = set(sampling.options) - sampler_options(sampling.sampler)
    assert not unknown, f"{path.name}: {sampling.sampler} has no option(s) {sorted(unknown)}"


# Values from shared/DESIGN.md section 2 (the paper's Tables 2/3) and issue 6 (PolyMNIST).
PAPER = {
    "mnist_svhn": {
        "data.dataset": "mnist_svhn",
        "modalities.mnist.latent_dim": 16, "modalities.mnist.options.arch": "mlp",
        "modalities.svhn.latent_dim": 64, "modalities.svhn.options.arch": "conv",
        "modalities.mnist.train.lr": 1e-3, "modalities.mnist.train.epochs": 150,
        "modalities.svhn.train.lr": 1e-3, "modalities.svhn.train.epochs": 150,
        "modalities.mnist.train.batch_size": 128, "modalities.svhn.train.batch_size": 128,
        "diffusion.d": 0.5, "diffusion.train.lr": 1e-4, "diffusion.train.batch_size": 128,
        "diffusion.train.epochs": 150, "diffusion.score_net.width": 512, "diffusion.score_net.blocks": 2,
        "diffusion.score_net.time_embed": 256,
    },
    "cub": {
        "data.dataset": "cub", "data.options.image_size": 64,
        "modalities.caption.kind": "text", "modalities.caption.latent_dim": 32,
        "modalities.caption.train.lr": 1e-3, "modalities.caption.train.epochs": 500,
        "modalities.caption.train.weight_decay": 1e-6,
        "modalities.image.kind": "image", "modalities.image.latent_dim": 64,
        "modalities.image.options.arch": "resnet", "modalities.image.options.size": 64,
        "modalities.image.options.augment": True,
        "modalities.image.train.lr": 1e-4, "modalities.image.train.epochs": 300,
        "modalities.image.train.weight_decay": 1e-6,
        "diffusion.d": 0.7, "diffusion.train.batch_size": 64, "diffusion.train.epochs": 3000,
        "diffusion.score_net.width": 1024, "diffusion.score_net.blocks": 2, "diffusion.score_net.time_embed": 512,
    },
    "polymnist": {
        "data.dataset": "polymnist", "diffusion.d": 0.2,
        **{f"modalities.m{i}.latent_dim": 160 for i in range(5)},
        **{f"modalities.m{i}.options.arch": "conv" for i in range(5)},
        **{f"modalities.m{i}.options.channels": 3 for i in range(5)},
        **{f"modalities.m{i}.options.size": 28 for i in range(5)},
    },
}
PAPER["cub_star"] = {**PAPER["cub"], "modalities.image.options.arch": "ldm", "modalities.image.options.loss": "mse"}


def _get(mapping: dict, dotted: str):
    node = mapping
    for part in dotted.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("name", DATASET_RECIPES)
def test_recipe_has_the_paper_hyperparameters(name: str):
    recipe = load_recipe(recipe_path(name))
    resolved = recipe.model_dump(mode="json")
    wrong = {key: (_get(resolved, key), want) for key, want in PAPER[name].items() if _get(resolved, key) != want}
    assert not wrong, f"{name}: (found, expected) {wrong}"
    assert resolved["diffusion"]["sde"] == {"beta_min": 0.1, "beta_max": 20.0, "T": 1.0}
    assert resolved["diffusion"]["train"]["ema"] == 0.999
    if name == "polymnist":
        assert list(recipe.modalities) == [f"m{i}" for i in range(5)]
    # the recommended sampler, for now: stochastic DDIM at 20 NFE
    assert (recipe.sampling.sampler, recipe.sampling.steps, recipe.sampling.options) == ("ddim", 20, {"eta": 1.0})


# ------------------------------------------------------------------------------ end to end
def _mnist_svhn_data(root: Path) -> list[str]:
    from mmlatent_image.testing import write_mnist, write_svhn

    write_mnist(root)
    write_svhn(root)
    return [f"data.options.root={root}", "data.options.k=2", "data.options.k_test=1",
            "modalities.svhn.options.conv_channels=[8,16,16]",
            "evaluation.limit=10", "evaluation.classifier_epochs=1"]


def _cub_data(root: Path) -> list[str]:
    from mmlatent_image.testing import write_cub

    write_cub(root / "birds")
    return [f"data.options.root={root / 'birds'}", "data.options.image_size=32",
            "modalities.image.options.size=32", "modalities.image.options.conv_channels=[4,8,8,8]",
            "modalities.caption.options.min_frequency=1", "modalities.caption.options.channels=16",
            "modalities.caption.options.embed_dim=8",
            "evaluation.limit=8", "evaluation.classifier_epochs=1"]


def _polymnist_data(root: Path) -> list[str]:
    from mmlatent_image.testing import write_polymnist

    write_polymnist(root / "PolyMNIST")
    return [f"data.options.root={root / 'PolyMNIST'}",
            *[f"modalities.m{i}.options.conv_channels=[4,8,8]" for i in range(5)],
            "evaluation.enabled=false"]


DATA: dict[str, Callable[[Path], list[str]]] = {
    "mnist_svhn": _mnist_svhn_data, "cub": _cub_data, "cub_star": _cub_data, "polymnist": _polymnist_data,
}


def _tiny(name: str) -> list[str]:
    """Overrides that shrink any recipe to a few steps (the recipe's epochs are switched off)."""
    recipe = load_recipe(recipe_path(name))
    sets = []
    for modality in recipe.modalities:
        sets += [f"modalities.{modality}.train.epochs=null", f"modalities.{modality}.train.steps=3",
                 f"modalities.{modality}.train.batch_size=16"]
    return sets + ["diffusion.train.epochs=null", "diffusion.train.steps=5", "diffusion.train.batch_size=16",
                   "diffusion.score_net.width=32", "diffusion.score_net.time_embed=16", "evaluation.samples=4"]


@pytest.mark.parametrize("name", DATASET_RECIPES)
def test_recipe_trains_end_to_end(name: str, tmp_path: Path, capsys):
    overrides = _tiny(name) + DATA[name](tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", str(recipe_path(name)), "--output", str(run), "--no-progress"]
    for item in overrides:
        args += ["--set", item]
    assert cli_main(args) == 0, capsys.readouterr().err
    log_file = str((run / "train.log").resolve())
    assert "done in" in (run / "train.log").read_text()
    # the run's log file is closed when training returns (later runs in this process do not write to it)
    assert not [h for h in logging.getLogger("mmlatent.train").handlers
                if str(Path(getattr(h, "baseFilename", "")).resolve()) == log_file]

    original = load_recipe(recipe_path(name))
    resolved = load_recipe(run / "recipe.yaml")
    names = list(original.modalities)
    assert list(resolved.modalities) == names
    assert resolved.diffusion.train.steps == 5 and resolved.diffusion.train.epochs is None
    assert resolved.diffusion.d == original.diffusion.d  # the recipe's own values are kept
    assert [m.latent_dim for m in resolved.modalities.values()] == [m.latent_dim for m in original.modalities.values()]
    for path in ["score_net.safetensors", "latent_stats.safetensors", "latents/train.safetensors",
                 "latents/test.safetensors", "plugins.json", "history.json"]:
        assert (run / path).is_file(), path
    for modality in names:
        assert (run / "autoencoders" / f"{modality}.safetensors").is_file()
        assert list((run / "samples").glob(f"joint_{modality}.*")), modality
    history = json.loads((run / "history.json").read_text())
    assert history, "no training curve recorded"

    if resolved.evaluation.enabled:
        metrics = json.loads((run / "metrics.json").read_text())
        expected = {"joint"} | {f"{a}->{b}" for a in names for b in names if a != b}
        assert expected <= set(metrics["coherence"])
        assert all(0.0 <= value <= 1.0 for value in metrics["coherence"].values())
        assert metrics["nfe"] == 20 and metrics["sampler"]["name"] == "ddim"
    else:
        assert not (run / "metrics.json").exists()

    pipe = MLDPipeline.load(run)
    assert pipe.names == names
    joint = pipe.generate(n=3, seed=1)
    assert pipe.last_nfe == 20  # the recipe's sampler: ddim, 20 steps
    for modality in names:
        assert tuple(joint[modality].shape) == (3, *pipe.modalities[modality].item_shape), modality
        if joint[modality].is_floating_point():
            assert torch.isfinite(joint[modality]).all(), modality

    test_items = [pipe.dataset("test")[i] for i in range(2)]
    batch = pipe.collate(test_items)
    first = names[0]
    out = pipe.generate(given={first: batch[first]}, seed=2)
    assert torch.equal(out[first], batch[first])
    for modality in names[1:]:
        assert tuple(out[modality].shape) == (2, *pipe.modalities[modality].item_shape), modality
    assert not torch.equal(pipe.generate(n=3, seed=1)[names[-1]], pipe.generate(n=3, seed=3)[names[-1]])
    # another sampler than the recipe's: the recipe's ddim options (eta) are not handed to it
    pipe.generate(given={first: batch[first]}, sampler="repaint", steps=4, jump_length=2, resamplings=2)
    assert pipe.last_nfe == 6

    samples = tmp_path / "samples"
    assert cli_main(["sample", str(run), "--n", "2", "--out", str(samples)]) == 0, capsys.readouterr().err
    for modality in names:
        assert list(samples.glob(f"{modality}.*")), modality


def test_readme_recipe_example_validates():
    import re

    import yaml

    from mmlatent.recipe import parse_recipe

    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    recipes = [yaml.safe_load(block) for block in blocks]
    recipes = [raw for raw in recipes if isinstance(raw, dict) and "modalities" in raw]
    assert recipes, "README.md shows no recipe"
    for raw in recipes:
        recipe = parse_recipe(raw, "README.md")
        shipped = load_recipe(recipe_path(recipe.name))
        # the shortened example shows the shipped recipe's values
        assert recipe.diffusion.d == shipped.diffusion.d
        assert recipe.diffusion.score_net == shipped.diffusion.score_net
        assert {n: m.latent_dim for n, m in recipe.modalities.items()} == \
            {n: m.latent_dim for n, m in shipped.modalities.items()}


@pytest.mark.parametrize("damage", ["no root", "no captions", "no split", "no image"])
def test_cub_missing_data_says_what_to_download_and_leaves_no_run(tmp_path, capsys, damage):
    """`mmlatent train recipes/cub_star.yaml` without (all of) the data: exit 2, one message that
    names the missing part and what to download, no traceback, no run directory."""
    from mmlatent_image.testing import write_cub

    root = tmp_path / "birds"
    if damage != "no root":
        names = write_cub(root, images_per_class=1)
        if damage == "no captions":
            (root / "text_c10" / names["train"][0]).with_suffix(".txt").unlink()
        elif damage == "no split":
            (root / "test" / "filenames.pickle").unlink()
        else:
            (root / "CUB_200_2011" / "images" / f"{names['test'][0]}.jpg").unlink()
    recipe = recipe_path("cub_star")
    run = tmp_path / "run"
    code = cli_main(["train", str(recipe), "--output", str(run), "--no-progress", "--set", f"data.options.root={root}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "CUB_200_2011.tgz" in err and "text_c10" in err and "filenames.pickle" in err
    expected = {"no root": "root folder", "no captions": "missing captions", "no split": "missing",
                "no image": "missing image"}[damage]
    assert expected in err
    assert not run.exists()
