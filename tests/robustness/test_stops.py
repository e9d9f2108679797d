"""One writer per run (two real processes), clean stops on SIGTERM/SIGINT, and a bit-identical resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from fault_fixtures import start_training, subprocess_env, tiny_recipe, wait_for, write_yaml
from safetensors.torch import load_file

from mmlatent.stopping import StopSignals, TrainingStopped


def _long_recipe(gauss_data, tmp_path):
    """Stage 2 long enough (3,000 tiny steps) that a signal always lands inside it."""
    return write_yaml(tmp_path / "long.yaml", tiny_recipe(gauss_data, **{
        "diffusion.train": {"steps": 3000, "lr": 1e-3, "batch_size": 64, "checkpoint_every": 200}}))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)


def test_second_writer_is_refused_and_sigterm_resumes_bit_identically(gauss_data, tmp_path):
    recipe = _long_recipe(gauss_data, tmp_path)
    run = tmp_path / "run"
    first = start_training(recipe, run)
    wait_for(run / "checkpoints" / "score_net.safetensors", first)
    # paused (it keeps its lock) so that a fast machine cannot finish stage 2 while the other writers start
    first.send_signal(signal.SIGSTOP)

    # every other writer is refused while the first trains, naming the directory and the holder
    for extra in (["--resume"], ["--overwrite", "--set", "seed=1"]):
        other = _run("mmlatent.train", str(recipe), "--output", str(run), "--no-progress", *extra)
        assert other.returncode == 2, other.stderr
        assert f"run directory {run} is in use by another mmlatent process (pid {first.pid}" in other.stderr
    evaluating = _run("mmlatent", "evaluate", str(run))
    assert evaluating.returncode == 2 and "is in use" in evaluating.stderr
    assert first.poll() is None  # the first writer was not disturbed

    started = time.time()
    first.send_signal(signal.SIGTERM)  # pending while paused, delivered inside the training loop
    first.send_signal(signal.SIGCONT)
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 143, err
    assert time.time() - started < 10
    assert "Traceback" not in err
    assert "stopped by SIGTERM: score_net at step" in err and "--resume" in err
    stopped_at = int(err.split("score_net at step ")[1].split()[0])
    assert 0 < stopped_at < 3000
    assert not (run / "score_net.safetensors").exists()
    history = json.loads((run / "history.json").read_text())["score_net"]
    assert history[-1][0] <= stopped_at

    resumed = _run("mmlatent.train", str(recipe), "--output", str(run), "--no-progress", "--no-eval", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = _run("mmlatent.train", str(recipe), "--output", str(tmp_path / "straight"), "--no-progress",
                    "--no-eval")
    assert straight.returncode == 0, straight.stderr[-3000:]
    a, b = load_file(str(run / "score_net.safetensors")), load_file(str(tmp_path / "straight" / "score_net.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the loss records are complete and equal to the uninterrupted run's (none lost at the stop)
    assert json.loads((run / "history.json").read_text()) == json.loads((tmp_path / "straight" / "history.json").read_text())
    assert (run / "curves" / "score_net.png").is_file()


def test_ctrl_c_twice_stops_at_once_without_traceback(gauss_data, tmp_path):
    recipe = _long_recipe(gauss_data, tmp_path)
    run = tmp_path / "run"
    proc = start_training(recipe, run)
    wait_for(run / "checkpoints" / "score_net.safetensors", proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped by SIGINT" in err and "Traceback" not in err
    # the lock died with the process: the run resumes at once
    resumed = _run("mmlatent.train", str(recipe), "--output", str(run), "--no-progress", "--no-eval", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def test_stop_signals_defer_inside_loops_and_a_second_ctrl_c_stops_at_once():
    with StopSignals() as stop:
        with stop.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.requested == signal.SIGTERM  # a request only: the step goes on
            with pytest.raises(TrainingStopped) as caught:
                os.kill(os.getpid(), signal.SIGINT)
            assert caught.value.exit_code == 130
    with StopSignals():
        with pytest.raises(TrainingStopped) as caught:  # outside a loop nothing is saved by waiting
            os.kill(os.getpid(), signal.SIGTERM)
        assert caught.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.timeout(600)
def test_two_processes_stop_together_and_resume(gauss_data, tmp_path):
    """torchrun with 2 gloo processes: SIGTERM to both, every process stops at the same step, the main
    one writes the checkpoint, and --resume with 2 processes finishes."""
    recipe = _long_recipe(gauss_data, tmp_path)
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "mmlatent.train", str(recipe), "--output", str(run), "--no-progress", "--no-eval"]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    wait_for(run / "checkpoints" / "score_net.safetensors", proc, timeout=400)
    os.killpg(proc.pid, signal.SIGTERM)  # what a scheduler does: the whole process group
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    # every process stopped at the same step; only the main one says so (torchrun adds its own report)
    assert err.count("stopped by SIGTERM: score_net at step") == 1, err[-3000:]
    assert err.count("stopping after this step") == 1
    resumed = subprocess.run(cmd + ["--resume"], env=subprocess_env(), capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (run / "score_net.safetensors").is_file()
