"""benchmarks/augmentation.py: a small real run times both paths and prints its JSON last."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from scripts import load_script
from torchvision.transforms import v2

REPO = Path(__file__).resolve().parents[2]
bench = load_script(REPO / "benchmarks" / "augmentation.py")


def test_quick_run_times_both_paths(capsys):
    summary = bench.main(["--sizes", "16,24", "--batch", "8", "--rounds", "2"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == summary and last["device"] == "cpu" and last["batch"] == 8
    assert set(last["sizes"]) == {"16", "24"}
    for figures in last["sizes"].values():
        assert figures["per_image_ms"] > 0 and figures["batched_ms"] > 0
        assert abs(figures["ratio_per_image_over_batched"] - figures["per_image_ms"] / figures["batched_ms"]) < 0.05


def test_per_image_path_keeps_shapes_and_threads():
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    threads = torch.get_num_threads()
    out = bench.per_image(images, v2.TrivialAugmentWide())
    assert out.shape == images.shape and out.dtype == torch.uint8 and torch.get_num_threads() == threads
