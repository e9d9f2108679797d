"""Sampler mechanics: known dims bit-for-bit, NFE accounting, the RePaint schedule, time grids,
the sampler table and input errors."""

from __future__ import annotations

import pytest
import torch

from mmlatent.diffusion import (
    SAMPLERS,
    VPSDE,
    LatentLayout,
    ScoreNet,
    generate_latents,
    register_sampler,
    repaint_nfe,
    repaint_schedule,
    sampler_options,
    time_grid,
)

SDE = VPSDE()
LAYOUT = LatentLayout([3, 2, 4], names=["a", "b", "c"])
SMALL = {  # cheap settings per sampler for mechanical checks
    "euler_maruyama": {"steps": 20},
    "repaint": {"steps": 20, "jump_length": 5, "resamplings": 3},
    "euler": {"steps": 6},
    "heun": {"steps": 6},
    "ddim": {"steps": 6, "eta": 1.0},
    "dpm_solver++": {"steps": 6},
    "ddpm": {"steps": 6},
    "pc": {"steps": 6, "corrector_steps": 2},
    "churn": {"steps": 6, "s_churn": 10.0},
    "repaint_ddpm": {"steps": 8},
}


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = ScoreNet(LAYOUT.total_dim, LAYOUT.num_modalities, width=32, blocks=2, time_embed=16).eval()
    torch.nn.init.normal_(net.output.weight, std=0.5)  # a network that does move the known dims
    return net


def test_small_settings_cover_every_sampler():
    assert set(SMALL) == set(SAMPLERS)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
@pytest.mark.parametrize("denoise_final", [False, True])
def test_known_dims_come_back_bit_identical(net, sampler, denoise_final):
    n = 12
    gen = torch.Generator().manual_seed(1)
    known = torch.randn(n, LAYOUT.total_dim, generator=gen) * torch.logspace(-20, 3, LAYOUT.total_dim)
    given = torch.rand(n, 3, generator=gen) < 0.5
    given[0] = torch.tensor([True, False, False])
    given[1] = torch.tensor([False, False, False])
    given[2] = torch.tensor([True, True, True])  # fully known rows pass through untouched
    seen = []
    result = generate_latents(
        net, SDE, LAYOUT, n, known=known, given=given, sampler=sampler, generator=gen,
        denoise_final=denoise_final, callback=lambda info: seen.append(info["x"].clone()), **SMALL[sampler],
    )
    mask = LAYOUT.modality_mask(given)
    assert torch.equal(result.latents[mask], known[mask])
    assert torch.equal(result.latents.view(torch.int32)[mask], known.view(torch.int32)[mask])
    assert torch.isfinite(result.latents).all()
    assert not torch.equal(result.latents[~mask], known[~mask])
    assert seen and all(torch.equal(x[mask], known[mask]) for x in seen)  # after every update
    assert torch.equal(result.given, given)


def test_repaint_schedule_and_nfe_match_the_reference_counts():
    walk = repaint_schedule(250, 10, 10)
    down = sum(1 for a, b in zip(walk, walk[1:]) if b < a)
    up = sum(1 for a, b in zip(walk, walk[1:]) if b > a)
    assert (down, up) == (2410, 2160)
    assert len(walk) == 4571 and walk[0] == 249 and walk[-1] == -1 and walk[-2] == 0
    assert all(abs(a - b) == 1 for a, b in zip(walk, walk[1:]))
    assert max(walk) == 249 and min(walk) == -1
    # the first block (249 -> 240) has no resampling; the last (9 -> 0) is redone 10 times
    assert walk[:11] == list(range(249, 238, -1))
    assert walk.count(0) == 10

    calls = []

    def eps_model(x, tau):
        calls.append(float(tau.max()))
        return torch.zeros_like(x)

    result = generate_latents(eps_model, SDE, LAYOUT, 2, sampler="repaint", generator=torch.Generator().manual_seed(0))
    assert result.nfe == 2410 == len(calls) and result.steps == 250
    assert calls[0] == pytest.approx(1.0) and calls[-1] == pytest.approx(1 / 250)


@pytest.mark.parametrize(
    "sampler,steps,options,nfe",
    [
        ("euler_maruyama", None, {}, 250),
        ("euler", 7, {}, 7),
        ("heun", 7, {}, 14),
        ("heun", 7, {"t_min": 0.0}, 13),
        ("ddim", 9, {}, 9),
        ("dpm_solver++", 8, {}, 8),
        ("repaint", 30, {"jump_length": 10, "resamplings": 2}, 30 + 2 * 10),
        ("repaint", 10, {"jump_length": 2, "resamplings": 2, "reverse_step": "ddpm", "renoise": "exact"}, 18),
        ("repaint_ddpm", None, {}, 21),
        ("repaint_ddpm", 8, {"jump_length": 4, "resamplings": 3}, 16),
        ("ddpm", 9, {}, 9),
        ("ddpm", 9, {"variance": "large"}, 9),
        ("pc", 9, {}, 9 + 8),
        ("pc", 9, {"corrector_steps": 2, "predictor": "euler_maruyama"}, 9 + 16),
        ("churn", 7, {}, 14),
        ("churn", 7, {"t_min": 0.0}, 13),
        ("churn", 7, {"order": 1}, 7),
    ],
)
def test_nfe_is_reported(sampler, steps, options, nfe):
    calls = []

    def eps_model(x, tau):
        calls.append(1)
        return torch.zeros_like(x)

    result = generate_latents(eps_model, SDE, LAYOUT, 3, sampler=sampler, steps=steps, **options)
    assert result.nfe == nfe == len(calls)
    assert result.sampler == sampler


def test_conditional_tau_is_zero_on_known_modalities():
    taus = []

    def eps_model(x, tau):
        taus.append(tau.clone())
        return torch.zeros_like(x)

    given = torch.tensor([False, True, False])
    generate_latents(eps_model, SDE, LAYOUT, 4, known=torch.zeros(4, 9), given=given, sampler="heun", steps=3)
    for tau in taus:
        assert (tau[:, 1] == 0).all() and (tau[:, 0] > 0).all() and torch.equal(tau[:, 0], tau[:, 2])


def test_euler_is_ddim_at_eta_zero_and_runs_are_reproducible(net):
    kwargs = dict(steps=8, grid="uniform")
    a = generate_latents(net, SDE, LAYOUT, 16, sampler="euler", generator=torch.Generator().manual_seed(2), **kwargs)
    b = generate_latents(net, SDE, LAYOUT, 16, sampler="ddim", generator=torch.Generator().manual_seed(2), eta=0.0, **kwargs)
    torch.testing.assert_close(a.latents, b.latents, rtol=1e-4, atol=1e-4)
    for sampler in SAMPLERS:
        x = generate_latents(net, SDE, LAYOUT, 4, sampler=sampler, generator=torch.Generator().manual_seed(9), **SMALL[sampler])
        y = generate_latents(net, SDE, LAYOUT, 4, sampler=sampler, generator=torch.Generator().manual_seed(9), **SMALL[sampler])
        assert torch.equal(x.latents, y.latents), sampler


@pytest.mark.parametrize("kind", ["uniform", "logsnr", "karras"])
def test_time_grids(kind):
    ts = time_grid(SDE, 10, kind=kind, t_min=1e-3)
    assert ts.shape == (11,) and ts.dtype == torch.float64
    assert ts[0] == 1.0 and ts[-1] == 1e-3
    assert torch.all(ts[1:] < ts[:-1])
    if kind == "logsnr":
        torch.testing.assert_close(SDE.log_snr(ts).diff(), SDE.log_snr(ts).diff()[:1].expand(10))
    assert time_grid(SDE, 4, t_min=0.0).tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(ValueError):
        time_grid(SDE, 4, kind="cosine")


def test_bad_inputs_name_the_problem(net):
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        generate_latents(net, SDE, LAYOUT, 2, sampler="nope")
    with pytest.raises(ValueError, match=r"given must have shape \(3,\) or \(2, 3\)"):
        generate_latents(net, SDE, LAYOUT, 2, given=torch.tensor([True, False]), known=torch.zeros(2, 9))
    with pytest.raises(ValueError, match=r"known latents .* needed for the given modalities \['b'\]"):
        generate_latents(net, SDE, LAYOUT, 2, given=torch.tensor([False, True, False]))
    with pytest.raises(ValueError, match=r"known latents must have shape \(2, 9\)"):
        generate_latents(net, SDE, LAYOUT, 2, given=torch.tensor([False, True, False]), known=torch.zeros(2, 8))
    with pytest.raises(ValueError, match="NaN"):
        generate_latents(net, SDE, LAYOUT, 2, given=torch.tensor([False, True, False]),
                         known=torch.full((2, 9), float("nan")))
    with pytest.raises(ValueError, match="renoise"):
        generate_latents(net, SDE, LAYOUT, 2, sampler="repaint", steps=5, renoise="magic")
    with pytest.raises(ValueError, match="reverse_step"):
        generate_latents(net, SDE, LAYOUT, 2, sampler="repaint", steps=5, reverse_step="magic")
    with pytest.raises(ValueError, match="variance"):
        generate_latents(net, SDE, LAYOUT, 2, sampler="ddpm", steps=5, variance="small")
    with pytest.raises(ValueError, match="predictor"):
        generate_latents(net, SDE, LAYOUT, 2, sampler="pc", steps=5, predictor="heun")
    with pytest.raises(ValueError, match="order"):
        generate_latents(net, SDE, LAYOUT, 2, sampler="churn", steps=5, order=3)
    with pytest.raises(ValueError, match="clip_denoised"):
        generate_latents(net, SDE, LAYOUT, 2, steps=2, clip_denoised=0.0)
    with pytest.raises(TypeError):
        generate_latents(net, SDE, LAYOUT, 2, sampler="heun", steps=2, eta=1.0)  # not a heun option
    known = torch.zeros(9)  # (D,) broadcasts to every sample
    out = generate_latents(net, SDE, LAYOUT, 3, given=torch.tensor([True, False, False]), known=known, steps=2)
    assert torch.equal(out.latents[:, :3], torch.zeros(3, 3))


def test_register_sampler_extends_the_table():
    @register_sampler("test_identity", steps=3)
    def sample_identity(model, x, ts, *, generator=None, callback=None, progress=False):
        for i in range(len(ts) - 1):
            x = model.impose(x + 0 * model.eps(x, float(ts[i])))
        return x

    try:
        result = generate_latents(lambda x, tau: torch.zeros_like(x), SDE, LAYOUT, 2, sampler="test_identity")
        assert result.nfe == 3 and sample_identity.defaults.steps == 3
        with pytest.raises(ValueError, match="already registered"):
            register_sampler("test_identity", steps=1)(sample_identity)
    finally:
        SAMPLERS.pop("test_identity")


def test_options_accepted_by_each_sampler():
    assert {"eta", "grid", "t_min", "rho", "clip_denoised", "denoise_final"} <= sampler_options("ddim")
    assert {"jump_length", "resamplings", "renoise", "reverse_step"} <= sampler_options("repaint")
    assert {"snr", "corrector_steps", "predictor"} <= sampler_options("pc")
    assert {"s_churn", "s_noise", "s_tmin", "s_tmax", "order"} <= sampler_options("churn")
    assert "eta" not in sampler_options("heun") and "generator" not in sampler_options("heun")
    for sampler in SAMPLERS:  # every listed option really is accepted
        generate_latents(lambda x, tau: torch.zeros_like(x), SDE, LAYOUT, 2, sampler=sampler, **SMALL[sampler],
                         grid="logsnr", t_min=1e-3, rho=5.0, clip_denoised=None)
    with pytest.raises(ValueError, match="unknown sampler"):
        sampler_options("nope")


def test_repaint_nfe_formula():
    for args in [(250, 10, 10), (10, 2, 2), (12, 3, 2), (8, 4, 3), (20, 10, 2), (5, 10, 3), (1, 1, 1)]:
        walk = repaint_schedule(*args)
        assert repaint_nfe(*args) == sum(1 for a, b in zip(walk, walk[1:]) if b < a), args
    assert repaint_nfe(10, 2, 2) == 18 <= 24


def test_ddpm_is_ddim_at_eta_one(net):
    kwargs = dict(steps=8, known=torch.randn(16, 9), given=torch.tensor([False, True, False]))
    a = generate_latents(net, SDE, LAYOUT, 16, sampler="ddpm", generator=torch.Generator().manual_seed(4), **kwargs)
    b = generate_latents(net, SDE, LAYOUT, 16, sampler="ddim", eta=1.0, generator=torch.Generator().manual_seed(4),
                         **kwargs)
    torch.testing.assert_close(a.latents, b.latents, rtol=1e-4, atol=1e-4)


def test_churn_without_churn_is_heun(net):
    def run(sampler, **options):
        return generate_latents(net, SDE, LAYOUT, 8, sampler=sampler, steps=6, grid="karras",
                                generator=torch.Generator().manual_seed(3), **options)

    a, b = run("churn", s_churn=0.0), run("heun")
    torch.testing.assert_close(a.latents, b.latents, rtol=1e-4, atol=1e-4)
    assert a.nfe == b.nfe == 12
    c, d = run("churn", s_churn=0.0, order=1), run("euler")
    torch.testing.assert_close(c.latents, d.latents, rtol=1e-4, atol=1e-4)


def test_churn_raises_the_noise_level_where_asked():
    """The network sees t_hat > t (the churned level) on every step inside [s_tmin, s_tmax] and the
    grid times elsewhere."""
    seen = []

    def eps_model(x, tau):
        seen.append(float(tau.max()))
        return torch.zeros_like(x)

    ts = time_grid(SDE, 5).tolist()
    generate_latents(eps_model, SDE, LAYOUT, 2, sampler="churn", steps=5, order=1, s_churn=100.0)
    assert seen[0] == pytest.approx(ts[0])  # never above T
    assert all(s > t + 1e-6 for s, t in zip(seen[1:], ts[1:-1]))
    seen.clear()
    ratio = lambda t: float(SDE.sigma(torch.tensor(t)) / SDE.alpha(torch.tensor(t)))  # noqa: E731
    generate_latents(eps_model, SDE, LAYOUT, 2, sampler="churn", steps=5, order=1, s_churn=100.0,
                     s_tmax=ratio(ts[2]) * 1.001)
    assert seen[1] == pytest.approx(ts[1]) and seen[2] > ts[2] + 1e-6


def test_langevin_corrector_only_moves_unknown_dims_and_counts(net):
    calls = []

    def eps_model(x, tau):
        calls.append(tau.clone())
        return net(x, tau)

    known = torch.randn(5, 9)
    given = torch.tensor([True, False, False])
    out = generate_latents(eps_model, SDE, LAYOUT, 5, known=known, given=given, sampler="pc", steps=4,
                           corrector_steps=3, generator=torch.Generator().manual_seed(0))
    assert out.nfe == len(calls) == 4 + 3 * 3
    assert torch.equal(out.latents[:, :3], known[:, :3])
    # corrector evaluations happen at the next grid time, predictor ones at the current
    ts = time_grid(SDE, 4).tolist()
    assert [float(c[0, 1]) for c in calls[:5]] == pytest.approx([ts[0], ts[1], ts[1], ts[1], ts[1]])
