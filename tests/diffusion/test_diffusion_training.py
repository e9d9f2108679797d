"""End to end on Gaussian data: a ScoreNet trained with the masked multi-time loss for well under
a minute recovers the conditional law of each modality given the other.

Data: the correlated 2-modality Gaussian of conftest (a: 2 dims, b: 3 dims). Training: Adam,
batch 256, 2,000 steps (about 20-40 s on one shared core), d = 0.5, EMA 0.995. Sampling: the
paper's Euler-Maruyama (250 steps) with the EMA network, 3,000 samples per direction.

Tolerances (looser than with the exact score; whitened units, see conftest.moments_check):
mean error <= 0.2 and covariance error <= 0.3. For scale, the joint law of b misses its
conditional mean given a by > 1 whitened unit, so a network that ignores the conditioning fails.
"""

from __future__ import annotations

import pytest
import torch

from mmlatent.diffusion import EMA, ScoreNet, generate_latents, masked_multitime_loss

MEAN_TOL = 0.2
COV_TOL = 0.3


@pytest.fixture(scope="module")
def trained(gaussian_problem):
    problem = gaussian_problem
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    data = problem.data.sample(20_000, gen)
    net = ScoreNet(problem.layout.total_dim, problem.layout.num_modalities, width=128, blocks=2, time_embed=64)
    ema = EMA(net, decay=0.995)
    steps = 2_000
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        batch = data[torch.randint(0, data.shape[0], (256,), generator=gen)]
        loss = masked_multitime_loss(net, batch, problem.sde, problem.layout, d=0.5, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        ema.update()
    assert torch.isfinite(loss)
    return problem, ema.module


@pytest.mark.parametrize("mode", ["b|a", "a|b"])
def test_trained_network_recovers_the_conditional(trained, mode):
    problem, net = trained
    given = torch.tensor([True, False]) if mode == "b|a" else torch.tensor([False, True])
    n = 3_000
    result = generate_latents(
        net, problem.sde, problem.layout, n, known=problem.value.expand(n, -1), given=given,
        sampler="euler_maruyama", generator=torch.Generator().manual_seed(1),
    )
    mean_err, cov_err = problem.moments_check(result.latents, given)
    assert mean_err <= MEAN_TOL, f"{mode}: whitened mean error {mean_err:.3f}"
    assert cov_err <= COV_TOL, f"{mode}: whitened covariance error {cov_err:.3f}"
    # the conditioning matters: the same samples are far from the unconditional law
    joint = problem.data.sample(n, torch.Generator().manual_seed(2))
    assert problem.moments_check(joint, given)[0] > 5 * MEAN_TOL


def test_trained_network_generates_the_joint_law(trained):
    problem, net = trained
    given = torch.tensor([False, False])
    result = generate_latents(
        net, problem.sde, problem.layout, 3_000, sampler="euler_maruyama", generator=torch.Generator().manual_seed(3),
    )
    mean_err, cov_err = problem.moments_check(result.latents, given)
    assert mean_err <= MEAN_TOL and cov_err <= COV_TOL, (mean_err, cov_err)
