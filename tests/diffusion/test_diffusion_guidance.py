"""Guidance per conditioning modality and clipping of the predicted clean latent, both inside
MaskedEpsModel (so every sampler gets them): one batched forward pass, honest NFE, the guided
formula, absent branches (tau = T, pure noise), per-row weights; clipping never triggers with the
exact score and brings back the samples that an eps error near t = T sends far off."""

from __future__ import annotations

import pytest
import torch

from mmlatent.diffusion import SAMPLERS, VPSDE, LatentLayout, MaskedEpsModel, generate_latents

SDE = VPSDE()
LAYOUT = LatentLayout([3, 2, 4], names=["a", "b", "c"])


class Recorder:
    """A deterministic 'network' that records every call: eps = sin(x) * (1 + tau per dim)."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, tau):
        self.calls.append((x.clone(), tau.clone()))
        return torch.sin(x) * (1.0 + LAYOUT.expand(tau))


def _model(given, guidance, seed=0, clip=None, n=4):
    known = torch.randn(n, LAYOUT.total_dim, generator=torch.Generator().manual_seed(99))
    net = Recorder()
    model = MaskedEpsModel(net, SDE, LAYOUT, given.expand(n, -1), known, guidance=guidance,
                           clip_denoised=clip, generator=torch.Generator().manual_seed(seed))
    return model, net, known


def test_guided_eps_is_one_batched_pass_with_the_formula():
    given = torch.tensor([True, True, False])
    model, net, known = _model(given, {0: 1.5, "b": 0.5})
    x = model.impose(torch.randn(4, 9, generator=torch.Generator().manual_seed(1)))
    eps = model.eps(x, 0.6)
    assert model.calls == 1 and len(net.calls) == 1 and model.nfe == 3
    xs, taus = net.calls[0]
    assert xs.shape == (12, 9) and taus.shape == (12, 3)
    cond_x, cond_tau = xs[:4], taus[:4]
    assert torch.equal(cond_x, x) and torch.equal(cond_tau, torch.tensor([[0.0, 0.0, 0.6]]).expand(4, 3))
    gen = torch.Generator().manual_seed(0)  # the branches' noise, in branch order
    for branch, (index, other) in enumerate([(0, 1), (1, 0)]):
        bx, btau = xs[4 * (branch + 1): 4 * (branch + 2)], taus[4 * (branch + 1): 4 * (branch + 2)]
        part, keep = LAYOUT.slices[index], LAYOUT.slices[other]
        assert torch.equal(bx[:, part], torch.randn(4, 9, generator=gen)[:, part])  # absent: noise
        assert torch.equal(bx[:, keep], x[:, keep]) and torch.equal(bx[:, 5:], x[:, 5:])
        assert (btau[:, index] == SDE.T).all() and (btau[:, other] == 0).all()
        assert torch.allclose(btau[:, 2], torch.tensor(0.6))
    out = net(xs, taus)
    cond, unc_a, unc_b = out[:4], out[4:8], out[8:]
    expected = cond + 1.5 * (cond - unc_a) + 0.5 * (cond - unc_b)
    assert torch.allclose(eps[:, 5:], expected[:, 5:])
    assert torch.equal(eps[:, :5], cond[:, :5])  # known dims: the conditional output


def test_inactive_guidance_changes_nothing():
    given = torch.tensor([True, False, False])
    known = torch.randn(6, 9)
    plain = generate_latents(Recorder(), SDE, LAYOUT, 6, known=known, given=given, sampler="ddim", steps=5,
                             eta=1.0, generator=torch.Generator().manual_seed(3))
    for guidance in [None, {}, {0: 0.0}, {1: 2.0}, {"c": 1.0}]:  # zero weight, or not a given modality
        other = generate_latents(Recorder(), SDE, LAYOUT, 6, known=known, given=given, sampler="ddim", steps=5,
                                 eta=1.0, generator=torch.Generator().manual_seed(3), guidance=guidance)
        assert torch.equal(other.latents, plain.latents) and other.nfe == plain.nfe == other.calls == 5


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_counts_guided_evaluations(sampler):
    calls = []

    def eps_model(x, tau):
        calls.append(x.shape[0])
        return torch.zeros_like(x)

    given = torch.tensor([True, False, True])
    plain = generate_latents(eps_model, SDE, LAYOUT, 3, known=torch.zeros(3, 9), given=given, sampler=sampler,
                             steps=6)
    calls.clear()
    guided = generate_latents(eps_model, SDE, LAYOUT, 3, known=torch.zeros(3, 9), given=given, sampler=sampler,
                              steps=6, guidance={0: 1.0, 2: 0.3})
    assert guided.nfe == 3 * plain.nfe and guided.calls == plain.nfe == len(calls)
    assert set(calls) == {9}  # every call carries the three branches of the 3 samples


def test_weights_apply_to_the_rows_that_condition_on_the_modality():
    given = torch.tensor([[True, False, False], [False, True, False], [True, True, False]])
    known = torch.randn(3, 9)
    net = Recorder()
    model = MaskedEpsModel(net, SDE, LAYOUT, given, known, guidance={0: 1.0},
                           generator=torch.Generator().manual_seed(0))
    x = model.impose(torch.randn(3, 9))
    eps = model.eps(x, 0.5)
    xs, taus = net.calls[0]
    assert xs.shape[0] == 3 + 2  # the branch holds only rows 0 and 2
    assert torch.equal(eps[1], net(x, model.tau(0.5, x))[1])  # row 1 is not guided
    assert model.nfe == 2


def test_bad_guidance_is_rejected():
    with pytest.raises(ValueError, match="modality index 5"):
        _model(torch.tensor([True, False, False]), {5: 1.0})
    with pytest.raises(ValueError, match="unknown modality 'z'"):
        _model(torch.tensor([True, False, False]), {"z": 1.0})
    with pytest.raises(ValueError, match="finite"):
        _model(torch.tensor([True, False, False]), {0: float("nan")})


def test_guidance_pushes_the_gaussian_conditional_beyond_its_mean(gaussian_problem):
    """With the exact score, the absent branch is (nearly) the marginal: guidance moves the sample
    mean of b | a from the conditional mean further away from the marginal mean, more for larger w."""
    problem = gaussian_problem
    given = torch.tensor([True, False])
    cond_mean, _, unknown = problem.data.conditional(given, problem.value)
    direction = cond_mean - problem.data.mean[unknown]
    shifts = []
    for w in [0.0, 1.0, 2.0]:
        result = generate_latents(problem.data.eps_model(problem.sde), problem.sde, problem.layout, 2000,
                                  known=problem.value.expand(2000, -1), given=given, sampler="ddpm", steps=30,
                                  guidance={0: w}, generator=torch.Generator().manual_seed(0))
        mean = result.latents[:, unknown].double().mean(0)
        shifts.append(float((mean - problem.data.mean[unknown]) @ direction / (direction @ direction)))
        assert result.nfe == (30 if w == 0 else 60)
    assert abs(shifts[0] - 1) < 0.05 and 1.2 < shifts[1] < shifts[2]


def test_combined_guidance_is_one_branch_with_every_guided_modality_absent():
    given = torch.tensor([[True, True, False], [True, False, False], [False, True, False], [False, False, False]])
    known = torch.randn(4, 9)
    net = Recorder()
    model = MaskedEpsModel(net, SDE, LAYOUT, given, known, guidance={"a": 1.5, "b": -2.0}, combine_guidance=True,
                           generator=torch.Generator().manual_seed(0))
    x = model.impose(torch.randn(4, 9, generator=torch.Generator().manual_seed(1)))
    eps = model.eps(x, 0.4)
    assert model.nfe == 2 and model.calls == 1
    xs, taus = net.calls[0]
    assert xs.shape[0] == 4 + 3  # rows 0, 1, 2 condition on a guided modality; row 3 is joint
    btau = taus[4:]
    assert torch.equal(btau[:, :2] == SDE.T, given[:3, :2])  # each row's guided modalities absent together
    assert torch.allclose(btau[:, 2], torch.tensor(0.4))
    out = net(xs, taus)
    cond, uncond = out[:4], out[4:]
    weight = torch.tensor([[-2.0], [1.5], [-2.0]])  # the largest weight in size among the absent ones
    expected = cond[:3] + weight * (cond[:3] - uncond)
    unknown = ~model.known_dims
    assert torch.allclose(eps[:3][unknown[:3]], expected[unknown[:3]])
    assert torch.equal(eps[3], cond[3])


def test_joint_guidance_pulls_the_other_modalities_of_joint_rows():
    given = torch.tensor([[False, False, False], [True, False, False]])
    known = torch.randn(2, 9)
    net = Recorder()
    model = MaskedEpsModel(net, SDE, LAYOUT, given, known, joint_guidance={"a": 2.0},
                           generator=torch.Generator().manual_seed(0))
    x = model.impose(torch.randn(2, 9, generator=torch.Generator().manual_seed(1)))
    eps = model.eps(x, 0.7)
    assert model.nfe == 2 and model.calls == 1
    xs, taus = net.calls[0]
    assert xs.shape[0] == 3 and taus[2].tolist() == pytest.approx([SDE.T, 0.7, 0.7])  # only the joint row
    out = net(xs, taus)
    cond, uncond = out[:2], out[2]
    assert torch.equal(eps[0, :3], cond[0, :3])  # the guiding modality itself: the joint eps
    assert torch.allclose(eps[0, 3:], cond[0, 3:] + 2.0 * (cond[0, 3:] - uncond[3:]))
    assert torch.equal(eps[1], cond[1])  # the conditional row is not touched


def test_guidance_interval_guides_only_inside_and_counts_only_those_branches():
    net = Recorder()
    given = torch.tensor([True, False, False])
    result = generate_latents(net, SDE, LAYOUT, 3, known=torch.zeros(9), given=given, sampler="ddim", steps=10,
                              guidance={"a": 1.0}, guidance_interval=[0.3, 0.6])
    times = [float(tau[0, 1]) for _, tau in net.calls]
    inside = [0.3 <= t <= 0.6 for t in times]
    assert 0 < sum(inside) < len(times) and result.nfe == 10 + sum(inside)
    assert [x.shape[0] for x, _ in net.calls] == [6 if i else 3 for i in inside]
    with pytest.raises(ValueError, match="guidance_interval"):
        generate_latents(net, SDE, LAYOUT, 3, sampler="ddim", steps=2, guidance_interval=[0.6, 0.3])


def test_joint_steps_apply_only_when_nothing_is_given():
    net = Recorder()
    joint = generate_latents(net, SDE, LAYOUT, 2, sampler="ddim", steps=4, joint_steps=9)
    given = torch.tensor([True, False, False])
    conditional = generate_latents(net, SDE, LAYOUT, 2, known=torch.zeros(9), given=given, sampler="ddim", steps=4,
                                   joint_steps=9)
    assert (joint.nfe, joint.steps, conditional.nfe, conditional.steps) == (9, 9, 4, 4)


# ----------------------------------------------------------------------------------- clipping
def test_clipping_replaces_eps_only_where_x0_is_out_of_range():
    given = torch.tensor([True, False, False])
    model, net, known = _model(given, None, clip=1.0)
    x = model.impose(torch.randn(4, 9, generator=torch.Generator().manual_seed(2)) * 3)
    raw = net(x, model.tau(0.3, x))
    eps = model.eps(x, 0.3)
    alpha, sigma = float(SDE.alpha(torch.tensor(0.3, dtype=torch.float64))), float(
        SDE.sigma(torch.tensor(0.3, dtype=torch.float64)))
    x0 = (x - sigma * raw) / alpha
    out = (x0.abs() > 1.0) & ~model.known_dims
    assert out.any() and (~out & ~model.known_dims).any()
    assert torch.equal(eps[~out], raw[~out])  # untouched entries are bit-identical
    clipped_x0 = (x - sigma * eps) / alpha
    assert torch.allclose(clipped_x0[out].abs(), torch.tensor(1.0), atol=1e-4)
    assert model.clipped == int(out.sum())


def test_clipping_brings_back_far_off_samples(gaussian_problem):
    """An eps error of 0.1 at t > 0.9 (amplified ~150 times in x0 = (x - sigma eps) / alpha) sends
    ~0.7% of Heun's samples beyond 6 units; clipping x0 at 5 brings them all back."""
    problem = gaussian_problem
    exact = problem.data.eps_model(problem.sde)

    def faulty(x, tau):
        eps = exact(x, tau)
        noise = torch.randn(eps.shape, generator=torch.Generator().manual_seed(int(tau.max() * 1e6)))
        return torch.where((tau.max(-1).values > 0.9)[:, None], eps + 0.1 * noise, eps)

    far = {}
    for clip in [None, 5.0]:
        x = generate_latents(faulty, problem.sde, problem.layout, 4000, sampler="heun", steps=5, clip_denoised=clip,
                             generator=torch.Generator().manual_seed(0)).latents
        far[clip] = float(((x - problem.data.mean).abs() > 6).any(-1).float().mean())
    assert far[None] > 0.002 and far[5.0] == 0.0
