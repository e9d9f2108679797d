"""Same-class pairing of two labelled sets (the MMVAE MNIST-SVHN protocol, made reproducible).

The MMVAE protocol (Shi et al. 2019): per class, take ``n = min(#a, #b, max_per_class)`` instances
of each set, and pair them ``k`` times through random permutations, so every kept instance of
either set appears in exactly ``k`` pairs, each time with a random instance of the same class of
the other set. Here the kept instances are a random subset (not the first ``n`` in file order), all
draws come from one seeded generator, and the pair list is shuffled at the end so that a prefix of
the dataset holds every class.

``distinct=True`` is for two views of one pool (``a`` and ``b`` index the same items): an item is
then never paired with itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pair_same_class"]


def pair_same_class(
    labels_a: np.ndarray,
    labels_b: np.ndarray,
    k: int,
    seed: int | np.random.Generator,
    max_per_class: int | None = None,
    distinct: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(idx_a, idx_b)`` (int64, equal length) of same-class pairs.

    Every class present in both sets contributes ``k * n_c`` pairs, ``n_c = min(#a_c, #b_c,
    max_per_class)``. With ``distinct`` the two label arrays must be the same pool and ``idx_a[i] !=
    idx_b[i]`` always (classes with a single item are left out).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    labels_a, labels_b = np.asarray(labels_a), np.asarray(labels_b)
    if distinct and not np.array_equal(labels_a, labels_b):
        raise ValueError("distinct pairing needs the same pool on both sides")
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    for label in np.intersect1d(labels_a, labels_b):
        where_a = np.flatnonzero(labels_a == label)
        where_b = np.flatnonzero(labels_b == label)
        n = min(len(where_a), len(where_b), max_per_class or len(where_a))
        if distinct:
            if n < 2:
                continue
            pool = rng.permutation(where_a)[:n]
            for _ in range(k):
                order = rng.permutation(pool)
                shift = int(rng.integers(1, n))  # a nonzero cyclic shift: never oneself
                out_a.append(order)
                out_b.append(np.roll(order, -shift))
        else:
            keep_a = rng.permutation(where_a)[:n]
            keep_b = rng.permutation(where_b)[:n]
            for _ in range(k):
                out_a.append(rng.permutation(keep_a))
                out_b.append(rng.permutation(keep_b))
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    idx_a = np.concatenate(out_a).astype(np.int64)
    idx_b = np.concatenate(out_b).astype(np.int64)
    order = rng.permutation(len(idx_a))
    return idx_a[order], idx_b[order]
