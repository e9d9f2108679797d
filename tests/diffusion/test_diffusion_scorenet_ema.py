"""ScoreNet shapes and initialisation; EMA of weights."""

from __future__ import annotations

import pytest
import torch

from mmlatent.diffusion import EMA, VPSDE, ScoreNet


def test_scorenet_shapes_zero_output_and_time_dependence():
    net = ScoreNet(latent_dim=7, num_modalities=3, width=32, blocks=2, time_embed=16)
    x, tau = torch.randn(5, 7), torch.rand(5, 3)
    out = net(x, tau)
    assert out.shape == (5, 7)
    assert torch.equal(out, torch.zeros(5, 7))  # zero-initialised output layer
    assert net.config() == {"latent_dim": 7, "num_modalities": 3, "width": 32, "blocks": 2, "time_embed": 16}
    torch.nn.init.normal_(net.output.weight)
    a = net(x, tau)
    b = net(x, tau.flip(-1))  # per-modality times matter, not only their set
    assert not torch.allclose(a, b)
    loss = net(x, tau).square().sum()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    assert ScoreNet(7, 3, width=8, blocks=0, time_embed=4)(x, tau).shape == (5, 7)


def test_scorenet_rejects_wrong_shapes():
    net = ScoreNet(4, 2, width=8, blocks=1, time_embed=8)
    with pytest.raises(ValueError, match=r"x must be \(B, 4\)"):
        net(torch.zeros(3, 5), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="tau must be"):
        net(torch.zeros(3, 4), torch.zeros(3, 3))


def test_v_prediction_returns_the_noise_per_modality_time():
    """eps_hat = alpha(tau_i) v_hat + sigma(tau_i) x on modality i's dims; given dims (tau = 0) get v_hat."""
    torch.manual_seed(0)
    sde = VPSDE(0.1, 20.0)
    net = ScoreNet(10, 3, width=32, blocks=2, time_embed=16, prediction="v", modality_dims=(3, 5, 2),
                   sde={"beta_min": 0.1, "beta_max": 20.0, "T": 1.0})
    torch.nn.init.normal_(net.output.weight)
    plain = ScoreNet(10, 3, width=32, blocks=2, time_embed=16)
    plain.load_state_dict(net.state_dict())  # the same layers: the plain network outputs v_hat
    x = torch.randn(3, 10)
    tau = torch.tensor([[0.0, 0.5, 0.5], [0.3, 0.0, 1.0], [1.0, 1.0, 1.0]])
    v_hat = plain(x, tau)
    tau_dims = tau.repeat_interleave(torch.tensor([3, 5, 2]), dim=1)
    torch.testing.assert_close(net(x, tau), sde.alpha(tau_dims) * v_hat + sde.sigma(tau_dims) * x)
    assert torch.equal(net(x, tau)[0, :3], v_hat[0, :3])  # a given modality: alpha = 1, sigma = 0
    rebuilt = ScoreNet(**net.config())
    rebuilt.load_state_dict(net.state_dict())
    assert torch.equal(rebuilt(x, tau), net(x, tau))
    assert "prediction" not in plain.config()  # eps networks keep their stored config
    with pytest.raises(ValueError, match="needs modality_dims and sde"):
        ScoreNet(10, 3, prediction="v")
    with pytest.raises(ValueError, match="summing to 10"):
        ScoreNet(10, 3, prediction="v", modality_dims=(3, 5, 3), sde={})


def test_ema_tracks_the_exponential_average_and_round_trips():
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, decay=0.9)
    ema.update()  # the first update copies
    torch.testing.assert_close(ema.module.weight, net.weight)
    expected = net.weight.detach().clone()
    for step in range(5):
        with torch.no_grad():
            net.weight.add_(1.0)
        ema.update()
        expected = 0.9 * expected + 0.1 * net.weight.detach()
    torch.testing.assert_close(ema.module.weight, expected)
    assert ema.num_updates == 6
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in net.parameters())

    state = ema.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    other = EMA(torch.nn.Linear(3, 2), decay=0.9)
    other.load_state_dict(state)
    torch.testing.assert_close(other.module.weight, ema.module.weight)
    assert other.num_updates == 6
    with pytest.raises(ValueError):
        EMA(net, decay=1.5)
