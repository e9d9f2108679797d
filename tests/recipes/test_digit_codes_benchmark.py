"""benchmarks/digit_codes.py: the reference codes given the rendering, on a small real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from scripts import load_script

REPO = Path(__file__).resolve().parents[2]
codes = load_script(REPO / "benchmarks" / "digit_codes.py")


def test_shape_autoencoder_squeezes_through_the_code():
    model = codes.shape_autoencoder(5, 32)
    assert model(torch.rand(7, 64)).shape == (7, 64)
    assert min(layer.out_features for layer in model if isinstance(layer, torch.nn.Linear)) == 5


def test_quick_run(capsys):
    summary = codes.main(["--size", "16", "--latents", "12,24", "--steps", "300", "--width", "64"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == json.loads(json.dumps(summary)) and [row["latent"] for row in last["codes"]] == [12, 24]
    bench = codes.bench
    images = bench.load_images("digits", 16)
    ceiling = last["noise_ceiling_psnr"]
    mean_shape = bench.digit_shapes()[bench.digit_split(16, "train")].mean(0).expand(1797, 64)
    no_code = bench.rendered_shapes_psnr(images, 16, mean_shape)  # colours and shift alone
    for row in last["codes"]:
        assert row["linear_psnr"] == pytest.approx(list(bench.factorised_code_psnr(images, 16, row["latent"])))
        for test, noise_free in (row["linear_psnr"], row["mlp_psnr"]):
            assert no_code[0] < test < ceiling and noise_free > no_code[1]
        record = row["mlp"]
        assert record["best_step"] in (250, 300) and record["val_mse"] <= record["first_val_mse"]
    assert last["codes"][0]["linear_psnr"][0] < last["codes"][1]["linear_psnr"][0]


def test_latents_must_leave_numbers_for_the_shape():
    with pytest.raises(SystemExit) as exit_info:
        codes.main(["--latents", "8,16"])
    assert exit_info.value.code == 2
