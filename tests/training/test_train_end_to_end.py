"""End to end on the built-in vector modality and tensors dataset: train, resume, 2 processes, API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from gaussian_fixtures import check_conditional, check_joint, gaussian_recipe
from safetensors.torch import load_file

from mmlatent import MLDPipeline
from mmlatent.checkpoint import CheckpointError
from mmlatent.cli import main as cli_main

RUN_FILES = ["recipe.yaml", "plugins.json", "state.json", "latent_stats.safetensors", "score_net.safetensors",
             "autoencoders/a.safetensors", "autoencoders/b.safetensors", "latents/train.safetensors",
             "latents/test.safetensors", "history.json", "train.log", "curves/score_net.png"]


def _train(recipe_path: Path, run_dir: Path, *extra: str) -> int:
    return cli_main(["train", str(recipe_path), "--output", str(run_dir), "--no-progress", *extra])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A Gaussian run trained long enough for its conditional to be checked against the closed form."""
    from gaussian_fixtures import write_gaussian_data
    import yaml

    root = tmp_path_factory.mktemp("gauss")
    data = write_gaussian_data(root / "gauss.safetensors", n=4000)
    recipe = gaussian_recipe(data, **{
        "modalities.b": {"kind": "vector", "latent_dim": 3,
                         "options": {"arch": "mlp", "size": 3, "hidden": [64, 64]},
                         "train": {"steps": 600, "lr": 3e-3, "batch_size": 256}},
        "diffusion.train": {"steps": 2000, "lr": 2e-3, "batch_size": 256, "ema": 0.995, "checkpoint_every": 1000},
        "diffusion.score_net": {"width": 128, "blocks": 2, "time_embed": 64},
    })
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert _train(path, root / "run") == 0
    return root / "run"


def test_run_directory_layout(trained_run: Path):
    for name in RUN_FILES:
        assert (trained_run / name).is_file(), name
    assert list((trained_run / "samples").glob("joint_*"))
    assert not list(trained_run.rglob("*.pt")) and not list(trained_run.rglob("*.pkl"))


def test_conditional_matches_closed_form(trained_run: Path):
    """b | a = a0 from the trained model vs the Gaussian conditional (mean and covariance)."""
    check_conditional(MLDPipeline.load(trained_run))


def test_joint_generation_matches_marginal(trained_run: Path):
    pipe = MLDPipeline.load(trained_run)
    check_joint(pipe)
    assert pipe.last_nfe == 200


def test_pipeline_rejects_bad_inputs(trained_run: Path):
    pipe = MLDPipeline.load(trained_run)
    with pytest.raises(ValueError, match=r"modality 'a': expected shape \(N, 2\)"):
        pipe.generate(given={"a": torch.zeros(4, 3)})
    with pytest.raises(ValueError, match="unknown modality 'c'"):
        pipe.generate(given={"c": torch.zeros(4, 3)})
    with pytest.raises(ValueError, match="every modality is given"):
        pipe.generate(given={"a": torch.zeros(4, 2), "b": torch.zeros(4, 3)})
    latents = pipe.encode({"a": torch.zeros(4, 2)})
    assert latents["a"].shape == (4, 2)
    assert pipe.decode(latents)["a"].shape == (4, 2)


def test_corrupt_weights_give_clear_error(trained_run: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    (copy / "score_net.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="score_net.safetensors was changed after the run wrote it"):
        MLDPipeline.load(copy)
    (copy / "score_net.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing score network"):
        MLDPipeline.load(copy)


def test_sample_command_writes_renderings(trained_run: Path, tmp_path: Path, capsys):
    given = tmp_path / "a.npy"
    np.save(given, np.zeros((5, 2), dtype=np.float32))
    out = tmp_path / "out"
    assert cli_main(["sample", str(trained_run), "--given", f"a={given}", "--sampler", "ddim", "--steps", "10",
                     "--out", str(out)]) == 0
    assert "10 NFE" in capsys.readouterr().out
    written = load_file(str(out / "b.safetensors"))
    assert next(iter(written.values())).shape == (5, 3)
    assert cli_main(["sample", str(trained_run), "--given", f"zz={given}", "--out", str(out)]) == 2
    assert "unknown modality 'zz'" in capsys.readouterr().err


def test_existing_run_directory_is_refused(trained_run: Path, capsys):
    recipe = trained_run / "recipe.yaml"
    assert _train(recipe, trained_run) == 2
    assert "--resume" in capsys.readouterr().err


def test_nan_loss_stops_with_message(gaussian_data, write_recipe, tmp_path, capsys):
    path = write_recipe(gaussian_recipe(gaussian_data, **{"diffusion.train.lr": 1e30, "diffusion.train.grad_clip": None,
                                                          "diffusion.train.steps": 200}))
    code = _train(path, tmp_path / "nan")
    assert code == 1
    err = capsys.readouterr().err
    assert "loss is" in err and "training stopped" in err


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() - start < timeout, "timed out waiting for a checkpoint"
        time.sleep(0.2)


def test_kill9_then_resume_matches_uninterrupted(gaussian_data, write_recipe, tmp_path):
    """kill -9 in stage 2, then --resume: it finishes, loads, and equals an uninterrupted run bit for bit."""
    recipe = gaussian_recipe(gaussian_data, **{"diffusion.train": {"steps": 600, "lr": 1e-3, "batch_size": 128,
                                                                   "checkpoint_every": 50}})
    path = write_recipe(recipe)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mmlatent.train", str(path), "--output", str(killed), "--no-progress", "--no-eval"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(killed / "checkpoints" / "score_net.safetensors", proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "score_net.safetensors").exists()
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from step" in (killed / "train.log").read_text()
    straight = tmp_path / "straight"
    plain = subprocess.run([*cmd[:5], str(straight), *cmd[6:]], env=env, capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr[-3000:]
    a, b = load_file(str(killed / "score_net.safetensors")), load_file(str(straight / "score_net.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    MLDPipeline.load(killed).generate(n=4, steps=5)


def test_two_processes_complete_and_load(gaussian_data, write_recipe, tmp_path):
    """Two gloo processes (torchrun), data sharded; only the main process writes; artifacts load."""
    recipe = gaussian_recipe(gaussian_data, **{"diffusion.train.steps": 60,
                                               "modalities.b.options": {"arch": "mlp", "size": 3, "hidden": [16]},
                                               "modalities.b.train": {"steps": 20}})
    path = write_recipe(recipe)
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "mmlatent.train", str(path), "--output", str(run), "--no-progress", "--no-eval"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    pipe = MLDPipeline.load(run)
    assert pipe.generate(n=3, steps=4)["b"].shape == (3, 3)
    assert (run / "train.log").read_text().count("stage 2") == 1  # one writer
