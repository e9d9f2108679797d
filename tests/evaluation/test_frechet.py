"""Frechet distance: zero on identical sets, closed forms for shifted and scaled Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from mmlatent.evaluation.frechet import (
    frechet_distance,
    frechet_distance_from_features,
    gaussian_statistics,
)


def _random_cov(rng, dim, rank=None):
    a = rng.normal(size=(dim, rank or dim))
    return a @ a.T / dim + (0.0 if rank else 0.1 * np.eye(dim))


def _closed_form(mu1, s1, mu2, s2):
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) with scipy's general matrix square root."""
    root = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_identical_sets_give_zero(method):
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(0)) * 3 + 1
    assert frechet_distance_from_features(x, x, method=method) == pytest.approx(0.0, abs=1e-8)
    stats = gaussian_statistics(x)
    assert frechet_distance(stats.mean, stats.cov, stats.mean, stats.cov, method=method) == pytest.approx(0, abs=1e-8)


def test_shifted_gaussian_equals_squared_shift():
    rng = np.random.default_rng(1)
    mu, cov = rng.normal(size=8), _random_cov(rng, 8)
    shift = rng.normal(size=8)
    assert frechet_distance(mu, cov, mu + shift, cov) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_scaled_gaussian_equals_closed_form():
    """S2 = c^2 S1: d^2 = (1 - c)^2 tr(S1) (+ the mean shift)."""
    rng = np.random.default_rng(2)
    mu1, cov = rng.normal(size=6), _random_cov(rng, 6)
    mu2 = mu1 + 0.5
    for c in (0.3, 1.0, 2.5):
        expected = 6 * 0.25 + (1 - c) ** 2 * np.trace(cov)
        assert frechet_distance(mu1, cov, mu2, c**2 * cov) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_general_covariances_match_the_closed_form(method):
    """Non-commuting covariances: the formula with a general matrix square root."""
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    s1, s2 = _random_cov(rng, 10), _random_cov(rng, 10)
    assert not np.allclose(s1 @ s2, s2 @ s1)
    expected = _closed_form(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-7)
    # symmetric in its two arguments
    assert frechet_distance(mu2, s2, mu1, s1, method=method) == pytest.approx(expected, rel=1e-7)


def test_diagonal_closed_form_and_torch_inputs():
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, -2.0])
    expected = 5.0 + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    got = frechet_distance(torch.tensor(mu1), torch.diag(torch.tensor(var1)), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-12)


def test_samples_of_two_gaussians_approach_the_closed_form():
    """Feature sets drawn from N(mu1, S1) and N(mu2, S2): the estimate converges to the closed form."""
    rng = np.random.default_rng(4)
    mu1, mu2 = np.zeros(4), np.array([1.0, -1.0, 0.5, 0.0])
    s1, s2 = _random_cov(rng, 4), 2.0 * _random_cov(rng, 4)
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    assert frechet_distance_from_features(x, y) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=0.02)


def test_singular_covariances_fewer_samples_than_dims():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(10, 64)), rng.normal(size=(12, 64)) + 0.1
    value = frechet_distance_from_features(x, y)
    assert np.isfinite(value) and value > 0
    # singular but identical: still zero, no imaginary parts, no NaN
    assert frechet_distance_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    s = np.cov(x, rowvar=False)
    assert frechet_distance(x.mean(0), s, y.mean(0), np.cov(y, rowvar=False)) == pytest.approx(value)
    assert np.linalg.matrix_rank(s) < 64


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        gaussian_statistics(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="unknown method"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="magic")
