"""Guidance end to end on a trained vector run: recipe weights, the API, `mmlatent sample
--guidance`, honest NFE, and absent-modality training (diffusion.absent_prob) against a run
trained without it.

The reference is the exact guided sampler: the closed-form noise of the Gaussian data (in the
run's standardised latent space) through the same guided MaskedEpsModel. Measured with 2,000
training steps (b | a, ddpm 100 steps, whitened errors against that reference): at w = 1, mean
error 2.2 without absent training against 0.64 / 0.42 with absent_prob 0.1 / 0.2; w = -1 (the
absent branch alone, i.e. the marginal of b) covariance error 0.79 against 0.31 / 0.15; the
unguided conditional is unchanged (mean error 0.06 / 0.06 / 0.08).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from gaussian_fixtures import GAUSS_COV, GAUSS_MEAN, gaussian_recipe, write_gaussian_data

from mmlatent import MLDPipeline
from mmlatent.cli import main as cli_main
from mmlatent.diffusion import GaussianLatents, generate_latents

A0 = torch.tensor([[1.8, -0.3]])  # the conditioning value of a, off its mean


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[float, Path]:
    root = tmp_path_factory.mktemp("guidance")
    data = write_gaussian_data(root / "gauss.safetensors", n=4000)
    out = {}
    for prob in (0.0, 0.2):
        recipe = gaussian_recipe(data, **{
            "diffusion.absent_prob": prob,
            "diffusion.train": {"steps": 1200, "lr": 2e-3, "batch_size": 256, "ema": 0.995, "checkpoint_every": 5000},
            "diffusion.score_net": {"width": 128, "blocks": 2, "time_embed": 64},
            "sampling": {"sampler": "ddpm", "steps": 20, "guidance": {"a": 0.5}},
        })
        path = root / f"recipe{prob}.yaml"
        path.write_text(yaml.safe_dump(recipe))
        run = root / f"run{prob}"
        assert cli_main(["train", str(path), "--output", str(run), "--no-progress", "--no-eval"]) == 0
        out[prob] = run
    return out


def _guided_error(pipe: MLDPipeline, w: float, n: int = 3000) -> float:
    """Whitened mean error of b | a = A0 with guidance w against the exact guided sampler."""
    stats = pipe.stats
    m = torch.cat([stats.mean["a"], stats.mean["b"]]).double()
    s = torch.cat([stats.std["a"], stats.std["b"]]).double()
    cov = torch.tensor(GAUSS_COV) / s[:, None] / s[None, :]
    exact = GaussianLatents((torch.tensor(GAUSS_MEAN) - m) / s, 0.5 * (cov + cov.T), pipe.layout).eps_model(pipe.sde)
    known = torch.zeros(n, 5)
    known[:, :2] = ((A0.double() - m[:2]) / s[:2]).float()
    ref = generate_latents(exact, pipe.sde, pipe.layout, n, known=known, given=torch.tensor([True, False]),
                           sampler="ddpm", steps=50, guidance={0: w}, generator=torch.Generator().manual_seed(1))
    ref_b = ref.latents[:, 2:].double() * s[2:] + m[2:]
    out = pipe.generate(given={"a": A0.expand(n, -1)}, sampler="ddpm", steps=50, guidance={"a": w}, seed=2)["b"]
    white = torch.linalg.inv(torch.linalg.cholesky(torch.cov(ref_b.T)))
    return float((white @ (out.double().mean(0) - ref_b.mean(0))).abs().max())


def test_absent_training_learns_the_unconditional_branch(runs):
    errors = {prob: _guided_error(MLDPipeline.load(run), 1.0) for prob, run in runs.items()}
    assert errors[0.2] < 0.6 and errors[0.0] > 2 * errors[0.2], errors


def test_recipe_api_and_cli_weights_with_honest_nfe(runs, tmp_path, capsys):
    pipe = MLDPipeline.load(runs[0.2])
    given = {"a": A0.expand(8, -1)}
    pipe.generate(given=given)  # the recipe's sampler (ddpm, 20 steps) and guidance {a: 0.5}
    assert pipe.last_nfe == 40
    pipe.generate(given=given, guidance={"a": 0.0})  # the API overrides the recipe
    assert pipe.last_nfe == 20
    pipe.generate(n=8)  # nothing given: nothing to guide
    assert pipe.last_nfe == 20
    pipe.generate(given=given, recipe_defaults=False, steps=20)  # only the call's settings: no recipe weights
    assert pipe.last_nfe == 20
    pipe.generate(given=given, sampler="ddim", steps=20)  # the recipe's weights belong to the recipe's sampler
    assert pipe.last_nfe == 20
    pipe.generate(n=8, joint_guidance={"a": 1.0})  # joint generation guided by a co-generated modality
    assert pipe.last_nfe == 40
    a = pipe.generate(given=given, guidance={"a": 2.0}, seed=3)["b"]
    b = pipe.generate(given=given, guidance={"a": 0.5}, seed=3)["b"]
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown modality 'zz'"):
        pipe.generate(given=given, guidance={"zz": 1.0})
    file = tmp_path / "a.npy"
    np.save(file, A0.expand(5, -1).numpy())
    assert cli_main(["sample", str(runs[0.2]), "--given", f"a={file}", "--guidance", "a=1.5", "--sampler", "ddim",
                     "--steps", "10", "--out", str(tmp_path / "out")]) == 0
    assert "20 NFE" in capsys.readouterr().out
    # the recipe's sampler (ddpm) with its guidance {a: 0.5}, or without the recipe's settings
    for extra, nfe in [([], "40 NFE"), (["--no-recipe-defaults"], "20 NFE")]:
        assert cli_main(["sample", str(runs[0.2]), "--given", f"a={file}", "--sampler", "ddpm", "--steps", "20",
                         "--out", str(tmp_path / "out2"), *extra]) == 0
        assert nfe in capsys.readouterr().out
