"""`mmlatent evaluate RUN` on a real (tiny) run of the built-in vector modality and tensors dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from gaussian_fixtures import gaussian_recipe, write_gaussian_data

from mmlatent.cli import main as cli_main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evalrun")
    data = write_gaussian_data(root / "gauss.safetensors", n=800)  # label = quadrant of modality a
    recipe = gaussian_recipe(data, **{
        "diffusion.score_net": {"width": 64, "blocks": 1, "time_embed": 32},
        "diffusion.train": {"steps": 150, "lr": 2e-3, "batch_size": 128, "ema": 0.9, "checkpoint_every": 150},
        "sampling": {"sampler": "euler", "steps": 8},
        "evaluation": {"enabled": False, "classifier_epochs": 10},
    })
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert cli_main(["train", str(path), "--output", str(root / "run"), "--no-progress"]) == 0
    assert not (root / "run" / "metrics.json").exists()
    return root / "run"


def test_mmlatent_evaluate_writes_metrics(tiny_run: Path, capsys):
    code = cli_main(["evaluate", str(tiny_run), "--sampler", "heun", "--steps", "4", "--limit", "40", "--seed", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert {"coherence", "fd", "nfe", "sampler", "classifier_accuracy", "timings", "seed", "limit"} <= set(metrics)
    assert set(metrics["coherence"]) == {"joint", "a->b", "b->a"}
    assert all(0.0 <= v <= 1.0 for v in metrics["coherence"].values())
    assert set(metrics["fd"]) == {"joint:a", "joint:b", "a->b", "b->a"}
    assert metrics["sampler"] == {"name": "heun", "steps": 4} and metrics["nfe"] >= 4
    assert metrics["seed"] == 1 and metrics["limit"] == 40 and metrics["num_items"] == 40
    # the label is the quadrant of a: a's classifier is nearly exact; b is correlated with a, so it beats chance
    assert metrics["classifier_accuracy"]["a"] > 0.8 and metrics["classifier_accuracy"]["b"] > 0.3
    assert (tiny_run / "classifiers" / "a.safetensors").is_file() and (tiny_run / "report.md").is_file()
    assert "a->b" in out and "NFE per sample" in out
    report = (tiny_run / "report.md").read_text()
    assert report.index("## Samples") < report.index("## Coherence")
    assert list((tiny_run / "samples" / "evaluation").glob("joint_*.png"))

    # a second evaluation reuses the stored classifiers, and --compare reads both metrics files
    again = cli_main(["evaluate", str(tiny_run), "--limit", "20"])
    assert again == 0
    second = json.loads((tiny_run / "metrics.json").read_text())
    assert second["classifier_accuracy"] == metrics["classifier_accuracy"]
    assert second["sampler"] == {"name": "euler", "steps": 8}  # the recipe's default sampler
    # without the recipe's settings: the sampler's own default steps (euler: 50), options from --option
    assert cli_main(["evaluate", str(tiny_run), "--limit", "20", "--no-recipe-defaults", "--option", "grid=logsnr",
                     "--split", "test"]) == 0
    third = json.loads((tiny_run / "metrics.json").read_text())
    assert third["sampler"] == {"name": "euler", "steps": None, "options": {"grid": "logsnr"}}
    assert third["nfe"] == 50 and third["split"] == "test"
    capsys.readouterr()
    assert cli_main(["evaluate", "--compare", str(tiny_run), str(tiny_run)]) == 0
    assert "joint" in capsys.readouterr().out
