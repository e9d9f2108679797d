"""LatentLayout, the conditioning-subset sampler nu(d) and the multi-time vector."""

from __future__ import annotations

import itertools
import time

import pytest
import torch
from scipy.stats import chisquare

from mmlatent.diffusion import LatentLayout, given_mask_probability, multitime_vector, sample_given_mask


def test_layout_slices_expand_and_masks():
    layout = LatentLayout([2, 3, 1], names=["a", "b", "c"])
    assert layout.total_dim == 6 and layout.num_modalities == 3
    assert layout.slices == (slice(0, 2), slice(2, 5), slice(5, 6))
    assert layout.modality_index.tolist() == [0, 0, 1, 1, 1, 2]
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert layout.expand(v).tolist() == [[1, 1, 2, 2, 2, 3], [4, 4, 5, 5, 5, 6]]
    given = torch.tensor([[True, False, True], [False, False, False]])
    assert layout.modality_mask(given).tolist() == [
        [True, True, False, False, False, True],
        [False] * 6,
    ]
    assert layout.given_dims(given).tolist() == [3.0, 0.0]
    x = torch.arange(12.0).reshape(2, 6)
    parts = layout.split(x)
    assert [p.shape[-1] for p in parts] == [2, 3, 1]
    assert torch.equal(layout.join(parts), x)
    assert layout.index("b") == 1
    assert layout.mask_from_names(["c"], batch_size=2).tolist() == [[False, False, True]] * 2
    with pytest.raises(ValueError, match="unknown modality 'z'"):
        layout.index("z")
    with pytest.raises(ValueError, match="one entry per modality"):
        layout.expand(torch.zeros(2, 4))
    with pytest.raises(ValueError):
        LatentLayout([2, 0])
    with pytest.raises(ValueError, match="unique"):
        LatentLayout([1, 1], names=["a", "a"])


def test_subset_frequencies_match_nu_d_for_three_modalities():
    """Chi-square goodness of fit over the 2^3 subsets: (1 - d) for the empty set, d/6 for each of
    the 6 non-empty proper subsets, and never the full set."""
    d, n = 0.7, 60_000
    given = sample_given_mask(n, 3, d, generator=torch.Generator().manual_seed(0))
    assert given.shape == (n, 3) and given.dtype == torch.bool
    codes = (given.long() * torch.tensor([1, 2, 4])).sum(-1)
    counts = torch.bincount(codes, minlength=8)
    assert counts[7] == 0  # the full set (nothing to diffuse) never appears
    subsets = torch.tensor(list(itertools.product([False, True], repeat=3)))[:, [2, 1, 0]]
    probs = given_mask_probability(subsets, d)
    assert probs.sum().item() == pytest.approx(1.0)
    observed, expected = counts[:7].double(), n * probs[:7]
    assert observed[0].item() == pytest.approx(n * (1 - d), rel=0.02)
    _, p_value = chisquare(observed.numpy(), expected.numpy())
    assert p_value > 1e-3


def test_subset_sampler_extremes_and_options():
    gen = torch.Generator().manual_seed(1)
    assert not sample_given_mask(100, 4, 0.0, generator=gen).any()  # d = 0: always joint
    always = sample_given_mask(5_000, 2, 1.0, generator=gen)  # d = 1: always conditional, M = 2
    assert (always.sum(-1) == 1).all()
    assert always[:, 0].float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert not sample_given_mask(10, 1, 1.0, generator=gen).any()  # one modality: joint only
    per_batch = sample_given_mask(64, 5, 0.5, generator=gen, per_batch=True)
    assert (per_batch == per_batch[0]).all()
    batches = torch.stack([sample_given_mask(4, 3, 0.5, generator=gen, per_batch=True)[0] for _ in range(2000)])
    assert (batches.sum(-1) == 0).float().mean().item() == pytest.approx(0.5, abs=0.04)
    a = sample_given_mask(50, 6, 0.5, generator=torch.Generator().manual_seed(7))
    b = sample_given_mask(50, 6, 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        sample_given_mask(4, 3, 1.5)


def test_sixty_four_modalities_are_fast_and_never_empty_or_full():
    gen = torch.Generator().manual_seed(0)
    n = 20_000

    def cost(m):
        sample_given_mask(n, m, 1.0, generator=gen)
        start = time.perf_counter()
        for _ in range(3):
            out = sample_given_mask(n, m, 1.0, generator=gen)
        return (time.perf_counter() - start) / 3, out

    seconds_64, given = cost(64)
    seconds_2, _ = cost(2)
    assert seconds_64 < 0.5
    # O(M) per sample: 32x the modalities may cost at most ~32x (plus slack for a noisy machine)
    assert seconds_64 < 64 * max(seconds_2, 1e-4)
    sizes = given.sum(-1)
    assert sizes.min() >= 1 and sizes.max() <= 63
    # uniform over proper subsets: the size is Binomial(64, 1/2) (truncation is negligible)
    assert sizes.float().mean().item() == pytest.approx(32.0, abs=0.2)
    assert given.float().mean(0).sub(0.5).abs().max().item() < 0.03
    mixed = sample_given_mask(n, 64, 0.5, generator=gen)
    assert (mixed.sum(-1) == 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert mixed.sum(-1).max() <= 63


def test_multitime_vector():
    given = torch.tensor([[True, False, False], [False, False, False]])
    tau = multitime_vector(torch.tensor([0.3, 0.8]), given)
    torch.testing.assert_close(tau, torch.tensor([[0.0, 0.3, 0.3], [0.8, 0.8, 0.8]]))
    tau = multitime_vector(0.5, given)
    torch.testing.assert_close(tau, torch.tensor([[0.0, 0.5, 0.5], [0.5, 0.5, 0.5]]))
