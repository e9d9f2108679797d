"""benchmarks/coherence_vs_nfe.py: candidates at <= 24 NFE, selection on a split that is never
reported, the comparison against the paper sampler, rows, table and plot (on the fake pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from scripts import load_script

from mmlatent.diffusion import VPSDE, LatentLayout, generate_latents

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "coherence_vs_nfe.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def test_candidates_stay_within_24_nfe_and_cover_guidance(bench):
    from mmlatent.diffusion.sampling import SAMPLERS, sampler_options

    for quick in (False, True):
        configs = bench.candidates(["a", "b"], quick)
        for cfg in configs:
            assert cfg["sampler"] in SAMPLERS
            assert set(cfg["options"]) <= sampler_options(cfg["sampler"])
            assert cfg["options"].get("joint_steps", 0) <= bench.FAST_NFE
        assert any(cfg["guidance"] == {"a": 1.0, "b": 1.0} for cfg in configs)
        assert any("guidance_interval" in cfg["options"] for cfg in configs)
    label = bench.describe(bench.config("x", "ddim", 16, {"eta": 1.0, "grid": "logsnr", "guidance_interval": [0.1, 0.5],
                                                        "joint_guidance": {"a": 2.0}}, {"a": 2.0, "b": 1.0}))
    assert label == "ddim eta=1 16 logsnr guided a=2,b=1 in [0.1, 0.5] joint_guidance a=2"
    # every candidate runs (options, grids) and stays within 24 NFE, joint and conditional
    sde, layout = VPSDE(), LatentLayout([2, 3], names=["a", "b"])
    zero = lambda x, tau: torch.zeros_like(x)  # noqa: E731
    for cfg in bench.candidates(["a", "b"], quick=False):
        for given in (None, torch.tensor([True, False])):
            options = dict(cfg["options"])
            if "guidance_interval" in options:  # as tune_joint_guidance: joint generation guided in the interval
                options = {**options, "joint_guidance": {"a": 1.0}}
                options.pop("joint_steps")
            result = generate_latents(zero, sde, layout, 2, known=torch.zeros(5), given=given, sampler=cfg["sampler"],
                                      steps=cfg["steps"], guidance={layout.index(k): w for k, w in cfg["guidance"].items()},
                                      **options)
            assert result.nfe <= bench.FAST_NFE, cfg


def _row(coherence, fd):
    return {"coherence": coherence, "fd": fd}


def test_comparison_and_selection_order(bench):
    paper = _row({"joint": 0.9, "a->b": 0.8}, {"joint:a": 10.0, "a->b": 5.0})
    close = _row({"joint": 0.895, "a->b": 0.85}, {"joint:a": 11.0, "a->b": 6.0})
    c = bench.compare(close, paper)
    assert c["margins"] == pytest.approx({"joint": -0.005, "a->b": 0.05})
    assert c["coherence_ok"] and c["fd_ok"] and c["worst_fd_ratio"] == pytest.approx(1.2)
    assert c["shortfall"] == pytest.approx(-0.005)
    worse_fd = _row({"joint": 0.95, "a->b": 0.95}, {"joint:a": 13.0, "a->b": 5.0})
    short = _row({"joint": 0.7, "a->b": 0.95}, {"joint:a": 10.0, "a->b": 5.0})
    for row in (close, worse_fd, short):
        row["comparison"] = bench.compare(row, paper)
    assert not worse_fd["comparison"]["fd_ok"] and not short["comparison"]["coherence_ok"]
    ranked = sorted([worse_fd, short, close], key=bench.selection_key, reverse=True)
    assert ranked == [close, worse_fd, short]  # both targets met first, then the coherence shortfall


@pytest.mark.parametrize("select_on, n_val", [("val", 24), ("test-half", 0)])
def test_benchmark_selects_on_one_split_and_reports_on_another(bench, fake_pipeline, tmp_path, capsys,
                                                               select_on, n_val):
    pipe = fake_pipeline(n_test=40, n_val=n_val)
    cache = tmp_path / "rows.json"
    result = bench.run_benchmark(pipe, tmp_path, seeds=2, select_on="auto", quick=True, sweep=False,
                                 batch_size=64, cache_path=cache)
    json.dumps(result)  # printed as the last line
    reported = result["rows"][0]["num_items"]
    selected = result["selection"][0]["num_items"]
    assert (selected, reported) == ((24, 40) if select_on == "val" else (20, 20))
    assert select_on in result["selection_split"] or (select_on == "test-half" and "halves" in result["selection_split"])
    labels = [row["label"] for row in result["rows"]]
    assert labels[0] == bench.PAPER["label"] and labels[1].startswith("chosen: ") and "euler_maruyama 250" in labels
    assert all(row["seeds"] == 2 and set(row["coherence_sd"]) == set(row["coherence"]) for row in result["rows"])
    assert result["rows"][0]["nfe"] == 250 and result["chosen"]["nfe"] <= bench.FAST_NFE  # fake: NFE = steps
    chosen = result["chosen"]
    assert result["comparison"]["margins"] == pytest.approx(
        {k: chosen["coherence"][k] - v for k, v in result["rows"][0]["coherence"].items()})
    # the chosen configuration is the best of the selection rows, by the selection order
    best = max(result["selection"][1:], key=bench.selection_key)
    assert chosen["label"] == "chosen: " + best["label"]
    # the guided candidates passed their options and weights to the pipeline
    assert any(call["options"].get("combine_guidance") and call["guidance"] for call in pipe.calls)
    out = capsys.readouterr().out
    assert "chosen vs paper" in out and ("met" in out)
    assert Path(result["plot"]).is_file() and Path(result["plot"]).stat().st_size > 1000
    # a rerun takes every measured row from the cache: no generation at all, the same result
    calls = len(pipe.calls)
    again = bench.run_benchmark(pipe, tmp_path, seeds=2, select_on="auto", quick=True, sweep=False,
                                batch_size=64, cache_path=cache)
    assert len(pipe.calls) == calls and again["chosen"] == result["chosen"]
