"""Helpers of the fault tests (tests/robustness): a tiny real recipe, training in-process and as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from gaussian_fixtures import gaussian_recipe

from mmlatent.cli import main as cli_main


def tiny_recipe(data: Path, **overrides) -> dict:
    """Stage 2 of a few hundred steps of a width-32 network: a whole run in about a second."""
    return gaussian_recipe(data, **{
        "diffusion.score_net": {"width": 32, "blocks": 1, "time_embed": 16},
        "diffusion.train": {"steps": 60, "lr": 1e-3, "batch_size": 64, "checkpoint_every": 20},
        "sampling": {"sampler": "ddim", "steps": 4},
        **overrides,
    })


def write_yaml(path: Path, value: dict) -> Path:
    path.write_text(yaml.safe_dump(value, sort_keys=False))
    return path


def train(recipe: Path, run: Path | None, *extra: str) -> int:
    """``mmlatent train`` in this process (``run=None``: the default runs/<name>)."""
    output = ["--output", str(run)] if run is not None else []
    return cli_main(["train", str(recipe), *output, "--no-progress", *extra])


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start_training(recipe: Path, run: Path, *extra: str) -> subprocess.Popen:
    """``python -m mmlatent.train`` as a real process (its own lock, its own signal handlers)."""
    cmd = [sys.executable, "-m", "mmlatent.train", str(recipe), "--output", str(run), "--no-progress",
           "--no-eval", *extra]
    return subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() - start < timeout, f"timed out waiting for {path}"
        time.sleep(0.05)
