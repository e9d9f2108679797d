"""The commands on VAE runs: ``mmlatent train`` (history, stop and --resume, option errors),
``sample`` and ``evaluate`` (every family's train/load/generate/evaluate: test_baselines_contract.py)."""

from __future__ import annotations

import json
import signal

import pytest
import torch
import yaml
from mmlatent.cli import main as cli_main
from mmlatent.model import load_model
from mmlatent_baselines.model import VAEModel
from mmlatent_baselines.testing import tiny_recipe
from mmlatent_baselines.train import VAETrainer
from safetensors.torch import load_file


def _write(tmp_path, recipe, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _train(recipe_path, run, *extra):
    return cli_main(["train", str(recipe_path), "--output", str(run), "--no-progress", *extra])


def test_train_load_sample_evaluate(tmp_path, capsys):
    family = "mopoe"
    recipe = tiny_recipe(family, steps=4, batch_size=32, log_every=1, checkpoint_every=2)
    recipe["evaluation"] = {"enabled": True, "classifier_epochs": 1, "limit": 40, "samples": 8}
    run = tmp_path / "run"
    assert _train(_write(tmp_path, recipe), run, "--no-eval") == 0
    weights = run / "model" / f"{family}.safetensors"
    assert weights.is_file() and (run / "samples" / "joint_gray.png").is_file()
    assert not list(run.rglob("*.pt")) and not list(run.rglob("*.pkl"))
    history = json.loads((run / "history.json").read_text())
    assert [step for step, _ in history[family]] == [1, 2, 3, 4]

    model = load_model(run)
    assert isinstance(model, VAEModel) and model.family == family
    first = model.generate(n=3, seed=7)
    again = load_model(run).generate(n=3, seed=7)
    for name in first:
        assert torch.equal(first[name], again[name]), name
    stored = load_file(str(weights))
    assert all(torch.equal(stored[k], v.cpu()) for k, v in model.vae.state_dict().items())

    capsys.readouterr()
    assert cli_main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "samples")]) == 0
    assert "1 NFE per sample" in capsys.readouterr().out
    assert cli_main(["sample", str(run), "--n", "2", "--steps", "5", "--out", str(tmp_path / "s2")]) == 2
    assert "no steps" in capsys.readouterr().err

    assert cli_main(["evaluate", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["nfe"] == 1 and metrics["sampler"]["name"] == family
    assert set(metrics["coherence"]) >= {"joint", "gray->color", "caption->gray", "gray+color->caption"}
    assert all(0.0 <= value <= 1.0 for value in metrics["coherence"].values())


def test_stop_and_resume_is_bit_identical(tmp_path, monkeypatch):
    """A SIGTERM at step 3 of 6 checkpoints; --resume then ends with the weights of an uninterrupted run."""
    recipe = _write(tmp_path, tiny_recipe("nexus", steps=6, batch_size=16, checkpoint_every=4))
    assert _train(recipe, tmp_path / "straight", "--no-eval") == 0

    reseed = VAETrainer._reseed

    def stop_at_step_2(self, seed, step):
        if step == 2 and self.stop.requested is None:
            self.stop.requested = signal.SIGTERM
        reseed(self, seed, step)

    monkeypatch.setattr(VAETrainer, "_reseed", stop_at_step_2)
    assert _train(recipe, tmp_path / "resumed", "--no-eval") == 128 + signal.SIGTERM
    assert (tmp_path / "resumed" / "checkpoints" / "nexus.safetensors").is_file()
    monkeypatch.setattr(VAETrainer, "_reseed", reseed)
    assert _train(recipe, tmp_path / "resumed", "--no-eval", "--resume") == 0

    straight = load_file(str(tmp_path / "straight" / "model" / "nexus.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model" / "nexus.safetensors"))
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_option_errors_leave_nothing_behind(tmp_path, capsys):
    recipe = _write(tmp_path, tiny_recipe("mvae", likelihood={"depth": "laplace"}))
    assert _train(recipe, tmp_path / "run") == 2
    assert "model.options.likelihood: unknown modality 'depth'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    recipe = _write(tmp_path, tiny_recipe("mvae", K=3), "bad.yaml")
    assert _train(recipe, tmp_path / "run") == 2
    assert "model.options.K" in capsys.readouterr().err


def test_tampered_weights_are_refused(tmp_path):
    from mmlatent.checkpoint import CheckpointError

    run = tmp_path / "run"
    assert _train(_write(tmp_path, tiny_recipe("mvtcae", steps=2, batch_size=16)), run, "--no-eval") == 0
    weights = run / "model" / "mvtcae.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(CheckpointError, match="mvtcae.safetensors"):
        load_model(run)


def test_a_diverging_run_stops_cleanly_with_a_message(tmp_path, capsys):
    """A diverged model (NaN parameters, which MultiVae's distributions refuse) stops the run with exit 1
    and one message, no traceback."""
    recipe = tiny_recipe("mvtcae", steps=40, lr=1e30, checkpoint_every=2)
    assert _train(_write(tmp_path, recipe), tmp_path / "run", "--no-eval") == 1
    err = capsys.readouterr().err
    assert "mvtcae: the loss is" in err and "training stopped" in err and "Traceback" not in err


def test_two_processes_train_a_family_and_it_loads(tmp_path):
    """Two gloo processes (torchrun): the global batch is split, one process writes, the run loads."""
    import os
    import subprocess
    import sys

    path = _write(tmp_path, tiny_recipe("mvae", steps=6, batch_size=32, checkpoint_every=3))
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541",
           "-m", "mmlatent.train", str(path), "--output", str(run), "--no-progress", "--no-eval"]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    model = load_model(run)
    assert model.generate(n=3, seed=0)["color"].shape == (3, 3, 16, 16)
    assert json.loads((run / "history.json").read_text())["mvae"][-1][0] == 6
