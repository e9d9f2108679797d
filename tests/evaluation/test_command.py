"""evaluate_run / `mmlatent evaluate`: metrics.json, report.md with pictures, --compare."""

from __future__ import annotations

import json
import re
from argparse import Namespace

import pytest

from mmlatent.cli import main as cli_main
from mmlatent.evaluation.command import (
    compare_table,
    evaluate_command,
    evaluate_run,
    format_metrics,
)

DOCUMENTED_KEYS = {"coherence", "fd", "nfe", "sampler", "classifier_accuracy", "timings", "seed", "limit"}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, fake_pipeline):
    tmp_path = tmp_path_factory.mktemp("run")
    pipe = fake_pipeline(n_test=80)
    (tmp_path / "curves").mkdir()
    pipe.modalities["a"].render(__import__("torch").rand(4, 4), tmp_path / "curves" / "score_net")  # a PNG curve
    metrics = evaluate_run(tmp_path, sampler="ddim", steps=12, limit=30, seed=5, pipeline=pipe, progress=False,
                           classifier_settings={"epochs": 4, "lr": 1e-2, "batch_size": 64})
    return tmp_path, metrics, pipe


def test_metrics_json(evaluated):
    run, metrics, _pipe = evaluated
    stored = json.loads((run / "metrics.json").read_text())
    assert stored == json.loads(json.dumps(metrics))
    assert DOCUMENTED_KEYS <= set(stored)
    assert stored["sampler"] == {"name": "ddim", "steps": 12} and stored["nfe"] == 12
    assert stored["seed"] == 5 and stored["limit"] == 30 and stored["num_items"] == 30
    assert set(stored["coherence"]) == {"joint", "a->b", "b->a"}
    assert all(0.0 <= value <= 1.0 for value in stored["coherence"].values())
    assert set(stored["fd"]) == {"joint:a", "joint:b", "a->b", "b->a"}
    assert set(stored["classifier_accuracy"]) == {"a", "b"}
    assert all(value > 0.9 for value in stored["classifier_accuracy"].values())
    assert {"classifiers_s", "generation_s", "total_s"} <= set(stored["timings"])
    assert (run / "classifiers" / "a.safetensors").is_file()
    assert json.loads((run / "classifiers" / "a.json").read_text())["settings"]["lr"] == 1e-2


def test_recipe_defaults_fill_the_sampler(tmp_path, fake_pipeline):
    pipe = fake_pipeline(n_test=20)
    metrics = evaluate_run(tmp_path, pipeline=pipe, progress=False, write=False)
    assert metrics["sampler"] == {"name": "heun", "steps": 10}
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "report.md").exists()
    assert {call["sampler"] for call in pipe.calls} == {"heun"}  # resolved once, from the recipe's default
    assert metrics["plan"] == {"sampler": "heun", "steps": 10, "grid": None, "options": {}, "guidance": {},
                               "denoise_final": False}


def test_report_opens_with_pictures(evaluated):
    run, metrics, _pipe = evaluated
    text = (run / "report.md").read_text()
    sections = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sections[0] == "Samples"
    assert sections[1:4] == ["Coherence", "Frechet distance in classifier features (FMD)", "Coherence classifiers"]
    assert "Training curves" in sections
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    sample_images = [link for link in images if link.startswith("samples/")]
    # joint + 2 conditions, 2 modalities each
    assert len(sample_images) == 6
    for link in images:
        assert (run / link).is_file(), link
    assert "### Given a" in text and "a (given)" in text
    assert "curves/score_net.png" in text
    assert "`a->b`" in text and f"{100 * metrics['coherence']['joint']:.2f}%" in text


def test_compare_table_and_command(evaluated, tmp_path_factory, capsys):
    run, metrics, _pipe = evaluated
    other = tmp_path_factory.mktemp("other")
    changed = dict(metrics, coherence={**metrics["coherence"], "joint": 0.5}, nfe=99)
    (other / "metrics.json").write_text(json.dumps(changed))
    table = compare_table([run, other])
    lines = table.splitlines()
    assert run.name in lines[0] and other.name in lines[0]
    joint = next(line for line in lines if line.startswith("joint "))
    assert "50.00%" in joint and f"{100 * metrics['coherence']['joint']:.2f}%" in joint
    assert re.search(r"^nfe\s+12\s+99$", table, flags=re.M)
    args = Namespace(run=None, compare=[str(run), str(other)], sampler=None, steps=None, guidance=[], limit=None,
                     seed=0)
    assert evaluate_command(args) == 0
    assert "fd[a->b]" in capsys.readouterr().out
    assert cli_main(["evaluate", "--compare", str(run), str(tmp_path_factory.mktemp("empty"))]) == 2
    assert "metrics.json not found" in capsys.readouterr().err


def test_command_errors(tmp_path, capsys):
    assert cli_main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "no run directory" in capsys.readouterr().err
    assert cli_main(["evaluate"]) == 2
    assert "needs a RUN directory" in capsys.readouterr().err
    assert cli_main(["evaluate", str(tmp_path), "--guidance", "a=strong"]) == 2
    assert "must be a number" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("mine")
    assert cli_main(["evaluate", str(tmp_path)]) == 2
    assert "is not an mmlatent run directory" in capsys.readouterr().err


def test_format_metrics(evaluated):
    _run, metrics, _pipe = evaluated
    text = format_metrics(metrics)
    assert text.startswith("sampler ddim (steps 12), NFE per sample 12")
    assert "coherence" in text and "a->b" in text and "classifier test accuracy" in text
