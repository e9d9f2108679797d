"""The reconstruction likelihoods against torch.distributions, with MMVAE's extra leading axis."""

from __future__ import annotations

import pytest
import torch
import torch.distributions as D
from mmlatent_baselines.likelihoods import (
    bernoulli_log_prob,
    categorical_log_prob,
    check_likelihood,
    infer_likelihood,
    install,
    laplace_log_prob,
    log_prob_function,
    normal_log_prob,
)


def _images(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("lead", [(), (3,)], ids=["batch", "K-batch"])
def test_laplace_and_normal_match_torch(lead):
    target = _images(4, 1, 5, 5)
    recon = _images(*lead, 4, 1, 5, 5, seed=1)
    got = laplace_log_prob(0.75)(recon, target)
    assert got.shape == (*lead, 4, 1, 5, 5)
    torch.testing.assert_close(got, D.Laplace(recon, 0.75).log_prob(target))
    torch.testing.assert_close(normal_log_prob(0.3)(recon, target), D.Normal(recon, 0.3).log_prob(target))


@pytest.mark.parametrize("lead", [(), (2,)], ids=["batch", "K-batch"])
def test_bernoulli_reads_probabilities(lead):
    target = (_images(4, 3, 2, 2) > 0.5).float()
    recon = _images(*lead, 4, 3, 2, 2, seed=2).clamp(0.01, 0.99)
    got = bernoulli_log_prob(recon, target)
    assert got.shape == (*lead, 4, 3, 2, 2)
    torch.testing.assert_close(got, D.Bernoulli(probs=recon).log_prob(target.expand_as(recon)), rtol=1e-4, atol=1e-5)
    # a saturated sigmoid output gives a finite log-probability
    assert torch.isfinite(bernoulli_log_prob(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]))).all()


@pytest.mark.parametrize("lead", [(), (3,)], ids=["batch", "K-batch"])
def test_categorical_gathers_token_ids(lead):
    ids = torch.randint(0, 7, (4, 6), generator=torch.Generator().manual_seed(0))
    logits = torch.randn(*lead, 4, 6, 7, generator=torch.Generator().manual_seed(1))
    got = categorical_log_prob(logits, ids)
    assert got.shape == (*lead, 4, 6)
    torch.testing.assert_close(got, D.Categorical(logits=logits).log_prob(ids.expand(*lead, 4, 6)))


def test_gradients_reach_the_decoder_output():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    categorical_log_prob(logits, torch.zeros(2, 3, dtype=torch.long)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_defaults_and_checks():
    images, ids, logits = torch.rand(2, 1, 4, 4), torch.zeros(2, 8, dtype=torch.long), torch.randn(2, 8, 11)
    assert infer_likelihood(images, images) == "laplace"
    assert infer_likelihood(logits, ids) == "categorical"
    check_likelihood("gray", "laplace", images, images)
    check_likelihood("caption", "categorical", logits, ids)
    with pytest.raises(ValueError, match="'gray'.*discrete data"):
        check_likelihood("gray", "categorical", images, images)
    with pytest.raises(ValueError, match="'caption'.*use the categorical"):
        check_likelihood("caption", "normal", logits, ids)
    with pytest.raises(ValueError, match="'caption'.*logits of shape"):
        check_likelihood("caption", "categorical", torch.randn(2, 7, 11), ids)
    with pytest.raises(ValueError, match="unknown likelihood"):
        log_prob_function("poisson", 1.0)


def test_install_replaces_every_modality():
    model = torch.nn.Module()
    model.recon_log_probs = {"a": None, "b": None}
    install(model, {"a": "laplace", "b": "categorical"}, 0.5)
    assert model.recon_log_probs["b"] is categorical_log_prob
    with pytest.raises(ValueError, match="no likelihood"):
        install(model, {"a": "laplace"}, 0.5)
