"""Options of the masked multi-time loss: absent modalities (guidance's unconditional branch,
missing data), importance sampling of t and loss weighting; all off = the plain Algorithm 1."""

from __future__ import annotations

import pytest
import torch

from mmlatent.diffusion import VPSDE, LatentLayout, ScoreNet, masked_multitime_loss, masked_multitime_loss_terms

SDE = VPSDE()
LAYOUT = LatentLayout([2, 3, 4], names=["a", "b", "c"])


class Recorder(torch.nn.Module):
    def __init__(self, output=None):
        super().__init__()
        self.output = output
        self.calls = []

    def forward(self, x, tau):
        self.calls.append((x.clone(), tau.clone()))
        return torch.sin(x) if self.output is None else self.output


def test_defaults_are_the_plain_loss_and_draw_nothing_more():
    z = torch.randn(32, 9)
    gen_a, gen_b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    plain = masked_multitime_loss_terms(Recorder(), z, SDE, LAYOUT, d=0.5, generator=gen_a)
    explicit = masked_multitime_loss_terms(Recorder(), z, SDE, LAYOUT, d=0.5, generator=gen_b, absent_prob=0.0,
                                           t_sampling="uniform", weighting="none")
    assert torch.equal(plain.loss, explicit.loss) and torch.equal(plain.t, explicit.t)
    assert plain.absent is None and plain.weight is None
    assert torch.equal(torch.rand(3, generator=gen_a), torch.rand(3, generator=gen_b))  # same RNG position


def test_absent_modalities_are_noise_at_time_T_without_loss():
    z, noise = torch.randn(3, 9), torch.randn(3, 9)
    t = torch.tensor([0.2, 0.5, 0.9])
    given = torch.tensor([[True, False, False], [False, False, False], [False, True, False]])
    absent = torch.tensor([[False, True, False], [True, False, False], [False, False, False]])
    out = torch.randn(3, 9)
    net = Recorder(out)
    terms = masked_multitime_loss_terms(net, z, SDE, LAYOUT, given=given, t=t, noise=noise, absent=absent)
    x, tau = net.calls[0]
    absent_dims = LAYOUT.modality_mask(absent)
    assert torch.equal(x[absent_dims], noise[absent_dims])
    assert torch.equal(tau, torch.tensor([[0.0, 1.0, 0.2], [1.0, 0.5, 0.5], [0.9, 0.0, 0.9]]))
    assert torch.equal(terms.absent, absent)
    # loss over the diffused, present dims only, Omega = D / their number
    trained = ~LAYOUT.modality_mask(given | absent)
    expected = 9 / trained.sum(-1) * torch.where(trained, out - noise, 0.0).square().sum(-1)
    torch.testing.assert_close(terms.per_sample, expected)
    torch.testing.assert_close(terms.omega, torch.tensor([9 / 4, 9 / 7, 9 / 6]))
    # the network output on absent dims never enters the loss
    other = out.clone()
    other[absent_dims] += 100.0
    again = masked_multitime_loss(Recorder(other), z, SDE, LAYOUT, given=given, t=t, noise=noise, absent=absent)
    assert torch.equal(again, terms.loss)


def test_absent_prob_draws_among_the_conditioning_modalities_only():
    n = 40_000
    z = torch.zeros(n, 9)
    gen = torch.Generator().manual_seed(0)
    drawn = torch.rand(n, 3, generator=gen) < 0.5
    drawn[drawn.all(-1), 0] = False
    drawn[:1000] = False  # joint steps
    terms = masked_multitime_loss_terms(lambda x, tau: torch.zeros_like(x), z, SDE, LAYOUT, given=drawn,
                                        generator=gen, absent_prob=0.2)
    absent, given = terms.absent, terms.given
    assert not (absent & ~drawn).any()  # only conditioning modalities become absent
    assert torch.equal(given, drawn & ~absent)
    assert not absent[:1000].any()  # joint steps are left alone
    rate = absent.sum(0).float() / drawn.sum(0).float()
    assert ((rate > 0.19) & (rate < 0.21)).all(), rate
    assert (terms.tau[absent] == SDE.T).all() and (terms.tau[given] == 0).all()
    assert (~(absent | given)).any(-1).all()  # something is always diffused
    # the branches guidance needs: a modality absent next to another given one, and alone
    assert (given[:, 0] & absent[:, 1]).any() and (given[:, 2] & absent[:, 0]).any()
    assert (absent[:, 0] & ~given.any(-1)).any()
    # drawn from nu(d) as usual
    plain = masked_multitime_loss_terms(lambda x, tau: torch.zeros_like(x), z[:2000], SDE, LAYOUT, d=0.5,
                                        generator=torch.Generator().manual_seed(1), absent_prob=0.2)
    assert plain.absent.any() and not (plain.absent & plain.given).any()


def test_missing_modalities_as_a_forced_mask():
    z = torch.randn(4, 9)
    absent = torch.tensor([[True, True, False], [False, False, False], [True, False, False], [False, True, True]])
    given = torch.tensor([[False, False, True], [True, False, False], [False, True, False], [True, False, False]])
    terms = masked_multitime_loss_terms(Recorder(), z, SDE, LAYOUT, given=given, absent=absent,
                                        generator=torch.Generator().manual_seed(0))
    assert torch.equal(terms.absent, absent)
    # rows 0 and 3: every present modality was to be given: they become joint steps over them
    assert not terms.given[[0, 3]].any()
    assert torch.equal(terms.given[1:3], given[1:3])
    assert (~(terms.absent | terms.given)).any(-1).all()
    with pytest.raises(ValueError, match="every modality absent"):
        masked_multitime_loss(Recorder(), z, SDE, LAYOUT, absent=torch.tensor([True, True, True]))
    with pytest.raises(ValueError, match="absent_prob"):
        masked_multitime_loss(Recorder(), z, SDE, LAYOUT, absent_prob=1.0)


def test_logsnr_sampling_is_uniform_in_log_snr_and_reweighting_keeps_the_objective():
    z = torch.randn(100_000, 9, generator=torch.Generator().manual_seed(1))
    net = lambda x, tau: 0.5 * x  # noqa: E731  (a loss that depends on t)
    eps = 1e-3
    uniform = masked_multitime_loss_terms(net, z, SDE, LAYOUT, generator=torch.Generator().manual_seed(2))
    logsnr = masked_multitime_loss_terms(net, z, SDE, LAYOUT, generator=torch.Generator().manual_seed(2),
                                         t_sampling="logsnr")
    lam = SDE.log_snr(logsnr.t.double())
    lo, hi = float(SDE.log_snr(torch.tensor(1.0, dtype=torch.float64))), float(
        SDE.log_snr(torch.tensor(eps, dtype=torch.float64)))
    assert lam.min() >= lo - 1e-3 and lam.max() <= hi + 1e-3
    quartiles = torch.quantile(lam, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    torch.testing.assert_close(quartiles, lo + (hi - lo) * torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64),
                               atol=0.15, rtol=0)
    # same objective (weighting "none") in expectation, within a few standard errors
    se = (uniform.per_sample.std() ** 2 / 1e5 + logsnr.per_sample.std() ** 2 / 1e5).sqrt()
    assert abs(uniform.loss - logsnr.loss) < 4 * se
    # likelihood weighting with its importance sampling: every factor is exactly 1
    both = masked_multitime_loss_terms(net, z[:1000], SDE, LAYOUT, generator=torch.Generator().manual_seed(3),
                                       t_sampling="logsnr", weighting="likelihood")
    torch.testing.assert_close(both.weight, torch.ones(1000), rtol=1e-4, atol=1e-4)


def test_weightings():
    t = torch.tensor([1e-3, 0.05, 0.3, 1.0])
    z = torch.randn(4, 9)
    likelihood = masked_multitime_loss_terms(Recorder(), z, SDE, LAYOUT, d=0.0, t=t, weighting="likelihood")
    ml = SDE.beta(t.double()) / SDE.sigma(t.double()) ** 2
    assert likelihood.weight[0] > likelihood.weight[1] > likelihood.weight[2]  # heavier at low noise
    torch.testing.assert_close(likelihood.weight.double() / ml, (likelihood.weight[0] / ml[0]).expand(4))
    # scaled to mean 1 over U(eps, T)
    grid = torch.linspace(1e-3, 1.0, 200_001, dtype=torch.float64)
    w = masked_multitime_loss_terms(lambda x, tau: x, torch.zeros(grid.numel(), 9), SDE, LAYOUT, d=0.0,
                                    t=grid.float(), weighting="likelihood").weight
    assert abs(float(w.double().mean()) - 1.0) < 0.02
    min_snr = masked_multitime_loss_terms(Recorder(), z, SDE, LAYOUT, d=0.0, t=t, weighting="min_snr")
    snr = torch.exp(SDE.log_snr(t.double()))
    torch.testing.assert_close(min_snr.weight.double(), torch.clamp(5.0 / snr, max=1.0).float().double())
    v = masked_multitime_loss_terms(Recorder(), z, SDE, LAYOUT, d=0.0, t=t, weighting="v")
    torch.testing.assert_close(v.weight.double(), 1.0 / SDE.alpha(t.double()) ** 2)
    with pytest.raises(ValueError, match="weighting"):
        masked_multitime_loss(Recorder(), z, SDE, LAYOUT, weighting="snr")
    with pytest.raises(ValueError, match="t_sampling"):
        masked_multitime_loss(Recorder(), z, SDE, LAYOUT, t_sampling="cosine")


def test_v_weighting_of_a_v_predicting_network_is_the_v_prediction_loss():
    """eps_hat - eps = alpha (v_hat - v): with w = 1 / alpha^2 the loss is Omega * sum (v_hat - v)^2 over the
    diffused dims, v = alpha eps - sigma z (Salimans & Ho 2022), at every time including t near T."""
    torch.manual_seed(0)
    net = ScoreNet(9, 3, width=16, blocks=1, time_embed=8, prediction="v", modality_dims=LAYOUT.dims,
                   sde={"beta_min": SDE.beta_min, "beta_max": SDE.beta_max, "T": SDE.T})
    torch.nn.init.normal_(net.output.weight)
    z, noise = torch.randn(5, 9), torch.randn(5, 9)
    t = torch.tensor([1e-3, 0.2, 0.5, 0.8, 1.0])
    given = torch.tensor([[False, False, False], [True, False, False], [False, True, True],
                          [False, False, True], [True, True, False]])
    terms = masked_multitime_loss_terms(net, z, SDE, LAYOUT, t=t, noise=noise, given=given, weighting="v")
    a, s = SDE.alpha(t)[:, None], SDE.sigma(t)[:, None]
    x = torch.where(LAYOUT.modality_mask(given), z, a * z + s * noise)
    tau = torch.where(given, 0.0, t[:, None])
    outputs = {}
    net.output.register_forward_hook(lambda module, args, out: outputs.update(v_hat=out))
    net(x, tau)
    diffused = ~LAYOUT.modality_mask(given)
    expected = terms.omega * ((outputs["v_hat"] - (a * noise - s * z)) ** 2 * diffused).sum(1)
    torch.testing.assert_close(terms.per_sample, expected, rtol=1e-4, atol=1e-5)
