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
    repaint_schedule,
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
