"""VPSDE against its closed forms and a fine-step simulation of the forward SDE."""

from __future__ import annotations

import math

import pytest
import torch

from mmlatent.diffusion import VPSDE, append_dims


def test_schedule_closed_forms():
    sde = VPSDE(beta_min=0.1, beta_max=20.0)
    t = torch.tensor([0.0, 1e-3, 0.25, 0.5, 1.0], dtype=torch.float64)
    expected_alpha = torch.exp(-0.25 * t**2 * 19.9 - 0.5 * t * 0.1)
    torch.testing.assert_close(sde.alpha(t), expected_alpha)
    torch.testing.assert_close(sde.sigma(t) ** 2 + sde.alpha(t) ** 2, torch.ones_like(t))
    torch.testing.assert_close(sde.beta(t), 0.1 + t * 19.9)
    torch.testing.assert_close(sde.diffusion(t), torch.sqrt(0.1 + t * 19.9))
    assert sde.sigma(torch.tensor(0.0)).item() == 0.0
    # d/dt log alpha = -beta/2 (the mean of the forward SDE decays at rate beta/2)
    h = 1e-6
    dlog = (sde.log_alpha(t[1:] + h) - sde.log_alpha(t[1:] - h)) / (2 * h)
    torch.testing.assert_close(dlog, -0.5 * sde.beta(t[1:]), rtol=1e-6, atol=1e-6)
    # prior end: alpha(1) is tiny, the marginal is almost N(0, I)
    assert sde.alpha(1.0).item() < 0.01


def test_log_snr_and_inverses_round_trip():
    sde = VPSDE()
    t = torch.linspace(1e-3, 1.0, 50, dtype=torch.float64)
    lam = sde.log_snr(t)
    assert torch.all(lam[1:] < lam[:-1])  # decreasing
    torch.testing.assert_close(lam, torch.log(sde.alpha(t) ** 2 / sde.sigma(t) ** 2))
    torch.testing.assert_close(sde.t_from_log_snr(lam), t)
    torch.testing.assert_close(sde.t_from_log_alpha(sde.log_alpha(t)), t)
    torch.testing.assert_close(sde.t_from_sigma_ratio(sde.sigma(t) / sde.alpha(t)), t)
    constant = VPSDE(beta_min=1.0, beta_max=1.0)  # constant beta: the quadratic degenerates
    torch.testing.assert_close(constant.t_from_log_snr(constant.log_snr(t)), t)


def test_shapes_flat_latents_and_per_dimension_times():
    sde = VPSDE()
    x = torch.randn(4, 7)
    for t in (0.3, torch.tensor(0.3), torch.full((4,), 0.3), torch.full((4, 1), 0.3), torch.full((4, 7), 0.3)):
        mean, std = sde.marginal_prob(x, t)
        assert mean.shape == (4, 7)
        assert (mean + std * x).shape == (4, 7)
        torch.testing.assert_close(mean, sde.alpha(0.3) * x)
    per_dim = torch.rand(4, 7)
    mean, std = sde.marginal_prob(x, per_dim)
    torch.testing.assert_close(mean, sde.alpha(per_dim) * x)
    torch.testing.assert_close(std, sde.sigma(per_dim))
    drift, diffusion = sde.sde(x, torch.rand(4))
    assert drift.shape == (4, 7) and diffusion.shape == (4, 1)
    assert sde.prior_sampling((3, 5), generator=torch.Generator().manual_seed(0)).shape == (3, 5)
    assert append_dims(torch.zeros(4), 3).shape == (4, 1, 1)
    with pytest.raises(ValueError):
        append_dims(torch.zeros(4, 2, 2), 2)


def test_transition_kernels_compose():
    sde = VPSDE()
    s, t = torch.tensor(0.2, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64)
    a_st, std_st = sde.transition(s, t)
    a_0s, std_0s = sde.transition(0.0, s)
    torch.testing.assert_close(a_0s * a_st, sde.alpha(t))
    torch.testing.assert_close(a_st**2 * std_0s**2 + std_st**2, sde.sigma(t) ** 2)


@pytest.mark.parametrize("beta_min,beta_max", [(0.1, 20.0), (0.5, 5.0)])
def test_marginals_match_a_fine_euler_maruyama_simulation(beta_min, beta_max):
    """Simulate dR = -beta/2 R dt + sqrt(beta) dW with 1,000 steps from fixed starting points and
    compare the empirical mean/std at several times with alpha(t) x0 and sigma(t)."""
    sde = VPSDE(beta_min, beta_max)
    gen = torch.Generator().manual_seed(0)
    n, steps = 20_000, 1_000
    x0 = torch.tensor([2.0, -1.0, 0.0])
    x = x0.repeat(n, 1)
    h = 1.0 / steps
    checkpoints = {200: None, 500: None, 1000: None}  # t = 0.2, 0.5, 1.0
    for i in range(steps):
        t = i * h
        drift, g = sde.sde(x, t)
        x = x + drift * h + g * math.sqrt(h) * torch.randn(x.shape, generator=gen)
        if i + 1 in checkpoints:
            checkpoints[i + 1] = x.clone()
    for k, xt in checkpoints.items():
        mean, std = sde.marginal_prob(x0[None], k * h)
        # standard errors: std/sqrt(n) = 0.007 for the mean, std/sqrt(2n) for the std; EM bias O(h)
        torch.testing.assert_close(xt.mean(0), mean[0], atol=0.03, rtol=0)
        torch.testing.assert_close(xt.std(0), std.expand(3), atol=0.02, rtol=0.02)
