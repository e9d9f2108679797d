"""The masked multi-time loss: Omega, masking of the conditioning dims, agreement with Algorithm 1."""

from __future__ import annotations

import pytest
import torch

from mmlatent.diffusion import (
    VPSDE,
    LatentLayout,
    ScoreNet,
    masked_multitime_loss,
    masked_multitime_loss_terms,
)

LAYOUT = LatentLayout([2, 3, 4], names=["a", "b", "c"])


class Recorder(torch.nn.Module):
    """A fixed 'network' that records its inputs and returns a chosen output."""

    def __init__(self, output):
        super().__init__()
        self.output = output
        self.calls = []

    def forward(self, x, tau):
        self.calls.append((x.clone(), tau.clone()))
        return self.output


def test_loss_matches_algorithm_one_by_hand():
    sde = VPSDE()
    z = torch.randn(3, 9)
    t = torch.tensor([0.2, 0.5, 0.9])
    noise = torch.randn(3, 9)
    given = torch.tensor([[True, False, False], [False, True, True], [False, False, False]])
    out = torch.randn(3, 9)
    net = Recorder(out)
    terms = masked_multitime_loss_terms(net, z, sde, LAYOUT, given=given, t=t, noise=noise)
    x, tau = net.calls[0]
    expected_loss = []
    for b in range(3):
        known = LAYOUT.modality_mask(given[b : b + 1])[0]
        a, s = sde.alpha(t[b]), sde.sigma(t[b])
        torch.testing.assert_close(x[b][known], z[b][known])  # conditioning dims are clean
        torch.testing.assert_close(x[b][~known], a * z[b][~known] + s * noise[b][~known])
        torch.testing.assert_close(tau[b], torch.where(given[b], 0.0, t[b].item()))
        dim_given, dim_diffused = int(known.sum()), int((~known).sum())
        omega = 1 + dim_given / dim_diffused
        expected_loss.append(omega * (out[b][~known] - noise[b][~known]).square().sum())
    expected = torch.stack(expected_loss)
    torch.testing.assert_close(terms.omega, torch.tensor([1 + 2 / 7, 1 + 7 / 2, 1.0]))
    torch.testing.assert_close(terms.per_sample, expected)
    torch.testing.assert_close(terms.loss, expected.mean())


def test_loss_ignores_the_network_output_on_conditioning_dims():
    sde = VPSDE()
    gen = torch.Generator().manual_seed(0)
    net = ScoreNet(9, 3, width=16, blocks=1, time_embed=8)
    torch.nn.init.normal_(net.output.weight)
    z = torch.randn(64, 9, generator=gen)
    given = torch.rand(64, 3, generator=gen) < 0.4
    given[given.all(-1), 0] = False
    known = LAYOUT.modality_mask(given)

    class Perturbed(torch.nn.Module):
        def forward(self, x, tau):
            return torch.where(known, net(x, tau) + 100.0 * torch.randn_like(x), net(x, tau))

    kwargs = dict(given=given, t=torch.rand(64, generator=gen) * 0.9 + 0.05, noise=torch.randn(64, 9, generator=gen))
    base = masked_multitime_loss(net, z, sde, LAYOUT, **kwargs)
    perturbed = masked_multitime_loss(Perturbed(), z, sde, LAYOUT, **kwargs)
    assert torch.equal(base, perturbed)
    # ... and the gradient flowing to the output on given dims is exactly zero
    out = torch.zeros(64, 9, requires_grad=True)
    masked_multitime_loss(Recorder(out), z, sde, LAYOUT, **kwargs).backward()
    assert torch.equal(out.grad[known], torch.zeros(int(known.sum())))
    assert (out.grad[~known] != 0).any()


def test_joint_step_is_plain_denoising_and_sampling_is_reproducible():
    sde = VPSDE()
    z, noise, t = torch.randn(8, 9), torch.randn(8, 9), torch.rand(8) * 0.9 + 0.05
    out = torch.randn(8, 9)
    joint = masked_multitime_loss(Recorder(out), z, sde, LAYOUT, given=torch.zeros(3, dtype=torch.bool), t=t, noise=noise)
    torch.testing.assert_close(joint, (out - noise).square().sum(-1).mean())

    net = ScoreNet(9, 3, width=16, blocks=1, time_embed=8)
    torch.nn.init.normal_(net.output.weight)
    z = torch.randn(256, 9)
    a = masked_multitime_loss_terms(net, z, sde, LAYOUT, d=0.5, generator=torch.Generator().manual_seed(3))
    b = masked_multitime_loss_terms(net, z, sde, LAYOUT, d=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.loss, b.loss) and torch.equal(a.given, b.given)
    assert (a.t >= 1e-3).all() and (a.t <= 1.0).all()
    conditional = a.given.any(-1).float().mean().item()
    assert 0.35 < conditional < 0.65  # d = 0.5
    assert not a.given.all(-1).any()
    assert a.loss.shape == () and torch.isfinite(a.loss)


def test_loss_rejects_bad_inputs():
    sde = VPSDE()
    net = Recorder(torch.zeros(2, 9))
    with pytest.raises(ValueError, match=r"z must be \(B, 9\)"):
        masked_multitime_loss(net, torch.zeros(2, 8), sde, LAYOUT)
    with pytest.raises(ValueError, match="nothing is diffused"):
        masked_multitime_loss(net, torch.zeros(2, 9), sde, LAYOUT, given=torch.ones(3, dtype=torch.bool))
