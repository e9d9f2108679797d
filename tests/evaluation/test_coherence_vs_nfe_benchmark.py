"""benchmarks/coherence_vs_nfe.py: its configurations and rows, on the fake pipeline."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mmlatent.evaluation.command import build_evaluator

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "coherence_vs_nfe.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("coherence_vs_nfe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configurations_cover_the_paper_and_fast_samplers(bench):
    names = ["euler_maruyama", "repaint", "euler", "heun", "ddim", "dpm_solver++", "newcomer"]
    for quick in (False, True):
        configs = bench.configurations(names, quick)
        assert ("repaint", 250) in configs and ("euler_maruyama", 250) in configs
        for name in ["euler", "ddim", "dpm_solver++", "newcomer"]:
            assert any(n == name and steps <= 24 for n, steps in configs)
        assert any(n == "heun" and 2 * steps <= 24 for n, steps in configs)  # heun: 2 NFE per step
        assert configs[0] == ("repaint", 250)


def test_rows_table_and_plot(bench, fake_pipeline, tmp_path):
    pipe = fake_pipeline(n_test=30)
    evaluator, _ = build_evaluator(pipe, tmp_path, classifier_settings={"epochs": 3, "lr": 1e-2, "batch_size": 64},
                                   progress=False)
    rows = [bench.run_configuration(evaluator, "repaint", 250, seeds=2),
            bench.run_configuration(evaluator, "heun", 12, seeds=2)]
    paper = rows[0]
    assert paper["sampler"] == "euler_maruyama" and paper["repaint"] is True and paper["steps"] == 250
    assert paper["nfe"] == 250 and paper["seeds"] == 2  # the fake reports steps as NFE
    assert set(paper["coherence"]) == {"joint", "a->b", "b->a"} and set(paper["fd"]) == {"joint:a", "joint:b",
                                                                                          "a->b", "b->a"}
    assert paper["joint_std"] is not None and paper["seconds"] >= 0
    assert rows[1]["sampler"] == "heun" and rows[1]["repaint"] is False
    json.dumps(rows)  # the last printed line must be JSON
    text = bench.table(rows)
    assert "EM + RePaint" in text and "heun" in text
    png = bench.plot(rows, tmp_path / "plot.png", "test")
    assert png.is_file() and png.stat().st_size > 1000
