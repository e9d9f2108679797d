"""The layers of the sampling engine: the denoiser (NFE counted in one place), the guidance and
clipping wrappers, the presets of general samplers, and the SDE as the one source of x0/eps/score."""

from __future__ import annotations

import inspect

import pytest
import torch

from mmlatent.diffusion import (
    SAMPLERS,
    VPSDE,
    Clipped,
    Denoiser,
    Guided,
    LatentLayout,
    MaskedEpsModel,
    sampler_options,
    time_grid,
)
from mmlatent.diffusion.options import COMMON_OPTIONS
from mmlatent.diffusion.samplers import sample_pf, sample_repaint

LAYOUT = LatentLayout([2, 3, 2], names=["a", "b", "c"])
SDE = VPSDE()


def net(x, tau):
    return torch.tanh(x) * (1.0 + LAYOUT.expand(tau))


def _denoiser(given=(True, False, False), n=3):
    given = torch.tensor(given).expand(n, -1)
    known = torch.randn(n, LAYOUT.total_dim, generator=torch.Generator().manual_seed(0))
    return Denoiser(net, SDE, LAYOUT, given, known)


def test_denoiser_counts_every_evaluation_and_imposes_the_given_dims():
    den = _denoiser()
    x = den.impose(torch.randn(3, LAYOUT.total_dim))
    assert torch.equal(x[:, :2], den.known[:, :2])
    eps_hat = den.eps(x, 0.5)
    assert den.nfe == 1 and den.calls == 1
    assert torch.equal(eps_hat, net(x, den.tau(0.5, x)))
    x0 = den.denoised(x, 0.5)
    assert den.nfe == 2
    t64 = torch.tensor(0.5, dtype=torch.float64)
    assert torch.equal(x0, den.impose(SDE.denoise(x, net(x, den.tau(0.5, x)), t64)))
    assert den.known_dims is den.given_dim_mask


def test_wrappers_compose_and_delegate():
    den = _denoiser()
    guided = Guided(den, {"a": 1.0}, generator=torch.Generator().manual_seed(1))
    clipped = Clipped(guided, 0.1)
    x = den.impose(3 * torch.randn(3, LAYOUT.total_dim, generator=torch.Generator().manual_seed(2)))
    clipped.eps(x, 0.9)
    assert den.nfe == 2 and den.calls == 1 and clipped.nfe == 2  # one batched pass, two NFE
    assert clipped.clipped > 0 and clipped.given_dim_mask is den.given_dim_mask
    stacked = MaskedEpsModel(net, SDE, LAYOUT, den.given, den.known, guidance={"a": 1.0}, clip_denoised=0.1,
                             generator=torch.Generator().manual_seed(1))
    assert isinstance(stacked, Clipped) and isinstance(stacked.inner, Guided)
    assert torch.equal(stacked.eps(x, 0.9), Clipped(Guided(_denoiser(), {"a": 1.0},
                       generator=torch.Generator().manual_seed(1)), 0.1).eps(x, 0.9))
    assert isinstance(MaskedEpsModel(net, SDE, LAYOUT, den.given, den.known), Denoiser)  # no layer unasked


@pytest.mark.parametrize(("name", "general", "fixed"), [
    ("euler", sample_pf, {"s_churn": 0.0, "order": 1, "rescale": False}),
    ("heun", sample_pf, {"s_churn": 0.0, "order": 2, "rescale": False}),
    ("churn", sample_pf, {"rescale": True}),
    ("repaint_ddpm", sample_repaint, {"renoise": "exact", "reverse_step": "ddpm", "jump_length": 3,
                                      "resamplings": 2}),
])
def test_presets_are_settings_of_the_general_samplers(name, general, fixed):
    ts = time_grid(SDE, 4, kind="uniform", t_min=1e-3)
    runs = []
    for fn, options in ((SAMPLERS[name], {}), (general, fixed)):
        den = _denoiser()
        x = den.impose(torch.randn(3, LAYOUT.total_dim, generator=torch.Generator().manual_seed(4)))
        runs.append((fn(den, x, ts, generator=torch.Generator().manual_seed(5), **options), den.nfe))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not set(fixed) & sampler_options(name) - {"jump_length", "resamplings"}


def test_presets_reject_the_options_they_fix():
    assert sampler_options("euler") == set(COMMON_OPTIONS)
    assert "rescale" not in inspect.signature(SAMPLERS["churn"]).parameters
    den = _denoiser()
    with pytest.raises(TypeError):
        SAMPLERS["euler"](den, torch.zeros(3, LAYOUT.total_dim), time_grid(SDE, 2), s_churn=1.0)
    with pytest.raises(TypeError):
        SAMPLERS["repaint_ddpm"](den, torch.zeros(3, LAYOUT.total_dim), time_grid(SDE, 2), renoise="euler_maruyama")


def test_sde_converts_between_eps_x0_and_score():
    x, eps_hat = torch.randn(4, 7, dtype=torch.float64), torch.randn(4, 7, dtype=torch.float64)
    t = torch.tensor([0.1, 0.3, 0.6, 0.9], dtype=torch.float64)
    x0 = SDE.denoise(x, eps_hat, t)
    torch.testing.assert_close(SDE.eps_from_denoised(x, x0, t), eps_hat)
    torch.testing.assert_close(SDE.score_from_eps(eps_hat, t), -eps_hat / SDE.sigma(t)[:, None])
    alpha, sigma = SDE.coefficients(0.3)
    assert alpha == float(SDE.alpha(torch.tensor(0.3, dtype=torch.float64)))
    assert sigma == float(SDE.sigma(torch.tensor(0.3, dtype=torch.float64)))
    z = torch.randn(4, 7)
    assert SDE.perturb(z, t, z).dtype == torch.float32  # coefficients applied in the state's dtype
