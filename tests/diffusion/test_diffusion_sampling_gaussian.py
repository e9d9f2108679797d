"""Every sampler against closed forms: with the exact noise predictor of Gaussian data plugged in,
it must reproduce the joint Gaussian and the Gaussian conditional of one modality given the other.

Data: modalities a (2 dims) and b (3 dims), correlated covariance (conftest.make_problem), a fixed
conditioning value 1-2 standard deviations off the mean. Tolerances, in whitened units (so they
mean the same for every direction, the thin ones included), for n = 4,000 samples:

- mean: max |L^{-1}(mean_hat - mean)| <= 0.10 (the standard error is 1/sqrt(n) = 0.016);
- covariance: max |L^{-1} cov_hat L^{-T} - I| <= 0.12 (standard errors 0.016 to 0.022).

Steps are chosen so that discretisation error sits well inside these bounds (first-order ODE
solvers need many steps; the paper's sampler runs at its defaults 250 / j=10 / r=10). Every case
runs with the default clipping of the predicted clean latent (5.0), which barely acts here
(measured: at most 11 of 4,000 joint samples change, moment errors unchanged to 0.001).
"""

from __future__ import annotations

import pytest
import torch

from mmlatent.diffusion import SAMPLERS, generate_latents

N = 4_000
MEAN_TOL = 0.10
COV_TOL = 0.12

CASES = {
    "euler_maruyama": {},
    "repaint": {},
    "euler": {"steps": 250},
    "heun": {"steps": 50},
    "ddim": {"steps": 250},
    "ddim_eta1": {"sampler": "ddim", "steps": 250, "eta": 1.0},
    "dpm_solver++": {"steps": 50},
    "repaint_exact_renoise": {"sampler": "repaint", "renoise": "exact"},
    "repaint_ddpm": {"steps": 250, "jump_length": 10, "resamplings": 2},
    "repaint_ddpm_large": {"sampler": "repaint_ddpm", "steps": 50, "jump_length": 5, "resamplings": 3,
                           "variance": "large"},
    "ddpm": {"steps": 250},
    "ddpm_large": {"sampler": "ddpm", "steps": 100, "variance": "large"},
    "pc": {"steps": 100, "variance": "large"},
    "pc_euler_maruyama": {"sampler": "pc", "steps": 100, "predictor": "euler_maruyama", "snr": 0.2},
    "churn": {"steps": 50},
}


def test_every_registered_sampler_is_covered():
    assert set(SAMPLERS) <= {case.get("sampler", name) for name, case in CASES.items()}


def _run(problem, case, given, seed, n=N):
    options = dict(CASES[case])
    sampler = options.pop("sampler", case)
    known = problem.value.expand(n, -1) if given.any() else None
    return generate_latents(
        problem.data.eps_model(problem.sde),
        problem.sde,
        problem.layout,
        n,
        known=known,
        given=given,
        sampler=sampler,
        generator=torch.Generator().manual_seed(seed),
        **options,
    )


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("mode", ["joint", "b|a", "a|b"])
def test_sampler_reproduces_gaussian_law(gaussian_problem, case, mode):
    given = {
        "joint": torch.tensor([False, False]),
        "b|a": torch.tensor([True, False]),
        "a|b": torch.tensor([False, True]),
    }[mode]
    result = _run(gaussian_problem, case, given, seed=11)
    x = result.latents
    assert x.shape == (N, 5) and torch.isfinite(x).all()
    known_dims = gaussian_problem.layout.modality_mask(given[None])[0]
    assert torch.equal(x[:, known_dims], gaussian_problem.value[known_dims].expand(N, -1))
    mean_err, cov_err = gaussian_problem.moments_check(x, given)
    assert mean_err <= MEAN_TOL, f"{case} {mode}: whitened mean error {mean_err:.3f}"
    assert cov_err <= COV_TOL, f"{case} {mode}: whitened covariance error {cov_err:.3f}"
    # clip_denoised (default 5) acts only on the tail of the joint law (dim a_0 reaches 5 at 3.7 of
    # its standard deviations), never on the conditionals
    assert result.clipped == 0 if mode != "joint" else result.clipped <= 1e-4 * x.numel() * result.nfe


def test_the_check_can_fail(gaussian_problem):
    """The tolerances discriminate: the joint law of b is not its law given a, and a sampler with
    too few steps or a wrong noise scale is caught."""
    joint = _run(gaussian_problem, "heun", torch.tensor([False, False]), seed=1).latents
    assert gaussian_problem.moments_check(joint, torch.tensor([True, False]))[0] > 5 * MEAN_TOL
    coarse = generate_latents(
        gaussian_problem.data.eps_model(gaussian_problem.sde), gaussian_problem.sde, gaussian_problem.layout,
        N, sampler="euler", steps=5, generator=torch.Generator().manual_seed(1),
    ).latents
    assert gaussian_problem.moments_check(coarse, torch.tensor([False, False]))[1] > 2 * COV_TOL
    exact = gaussian_problem.data.eps_model(gaussian_problem.sde)
    scaled = generate_latents(
        lambda x, tau: 0.9 * exact(x, tau), gaussian_problem.sde, gaussian_problem.layout, N,
        sampler="euler_maruyama", generator=torch.Generator().manual_seed(1),
    ).latents
    assert gaussian_problem.moments_check(scaled, torch.tensor([False, False]))[1] > 2 * COV_TOL


@pytest.mark.parametrize("sampler", ["heun", "euler_maruyama"])
def test_per_sample_conditioning_in_one_batch(gaussian_problem, sampler):
    """One batch mixing joint rows, b|a rows and a|b rows: each group follows its own law."""
    n = 3 * N
    given = torch.zeros(n, 2, dtype=torch.bool)
    given[N : 2 * N, 0] = True
    given[2 * N :, 1] = True
    result = generate_latents(
        gaussian_problem.data.eps_model(gaussian_problem.sde), gaussian_problem.sde, gaussian_problem.layout, n,
        known=gaussian_problem.value.expand(n, -1), given=given, sampler=sampler, steps=50 if sampler == "heun" else None,
        generator=torch.Generator().manual_seed(5),
    )
    for group in range(3):
        rows = slice(group * N, (group + 1) * N)
        mean_err, cov_err = gaussian_problem.moments_check(result.latents[rows], given[group * N])
        assert mean_err <= MEAN_TOL and cov_err <= COV_TOL, (group, mean_err, cov_err)


def test_final_denoising_step(gaussian_problem):
    """Tweedie's step at the last grid time moves samples to the posterior mean: one more NFE, a
    covariance that shrinks by about sigma(t_min)^2 only, known dims untouched."""
    given = torch.tensor([True, False])
    plain = _run(gaussian_problem, "dpm_solver++", given, seed=3)
    denoised = generate_latents(
        gaussian_problem.data.eps_model(gaussian_problem.sde), gaussian_problem.sde, gaussian_problem.layout, N,
        known=gaussian_problem.value.expand(N, -1), given=given, sampler="dpm_solver++", steps=50,
        generator=torch.Generator().manual_seed(3), denoise_final=True,
    )
    assert denoised.nfe == plain.nfe + 1
    assert torch.equal(denoised.latents[:, :2], plain.latents[:, :2])
    mean_err, cov_err = gaussian_problem.moments_check(denoised.latents, given)
    assert mean_err <= MEAN_TOL and cov_err <= COV_TOL
    assert 0 < (denoised.latents - plain.latents).abs().max() < 0.05


def test_default_clipping_does_not_hurt_the_exact_score(gaussian_problem):
    """Clipping x0 at 5 against no clipping, joint law (the only one whose tail reaches 5): a
    handful of samples move, the moment errors do not."""
    runs = {}
    for clip in [None, 5.0]:
        runs[clip] = generate_latents(
            gaussian_problem.data.eps_model(gaussian_problem.sde), gaussian_problem.sde, gaussian_problem.layout, N,
            sampler="ddim", steps=250, eta=1.0, clip_denoised=clip, generator=torch.Generator().manual_seed(11),
        )
    assert runs[None].clipped == 0 and runs[5.0].clipped > 0
    changed = (runs[None].latents != runs[5.0].latents).any(-1).float().mean()
    assert changed <= 0.005
    joint = torch.tensor([False, False])
    errors = [gaussian_problem.moments_check(runs[clip].latents, joint) for clip in (None, 5.0)]
    assert abs(errors[0][0] - errors[1][0]) < 0.005 and abs(errors[0][1] - errors[1][1]) < 0.005
