"""Small Gaussian multi-modal data in the real `tensors` dataset format, with its closed forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Joint Gaussian over a (2 dims) and b (3 dims), correlated across modalities.
GAUSS_MEAN = np.array([1.0, -1.0, 0.5, 0.0, 2.0])
_A = np.array([[1.0, 0.0, 0.0, 0.0, 0.0],
               [0.5, 0.8, 0.0, 0.0, 0.0],
               [0.7, -0.3, 0.5, 0.0, 0.0],
               [-0.4, 0.6, 0.2, 0.6, 0.0],
               [0.3, 0.2, -0.2, 0.1, 0.5]])
GAUSS_COV = _A @ _A.T


def gaussian_conditional(a_value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form mean (3,) and covariance (3, 3) of b given a = a_value."""
    s_aa, s_ab, s_bb = GAUSS_COV[:2, :2], GAUSS_COV[:2, 2:], GAUSS_COV[2:, 2:]
    gain = s_ab.T @ np.linalg.inv(s_aa)
    mean = GAUSS_MEAN[2:] + gain @ (a_value - GAUSS_MEAN[:2])
    return mean, s_bb - gain @ s_ab


def write_gaussian_data(path: Path, n: int = 4000, seed: int = 0) -> Path:
    """Write ``n`` samples of the joint Gaussian as a .safetensors file with fields a, b and label."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(GAUSS_MEAN, GAUSS_COV, size=n).astype(np.float32)
    label = (x[:, 0] > GAUSS_MEAN[0]).astype(np.int64) + 2 * (x[:, 1] > GAUSS_MEAN[1]).astype(np.int64)
    save_file({"a": np.ascontiguousarray(x[:, :2]), "b": np.ascontiguousarray(x[:, 2:]), "label": label}, str(path))
    return path


def gaussian_recipe(data_path: Path, **overrides) -> dict:
    """A small but real recipe over the Gaussian data (identity latents for a, MLP AE for b)."""
    recipe = {
        "name": "gaussian",
        "seed": 0,
        "data": {"dataset": "tensors", "options": {"path": str(data_path), "test_fraction": 0.1}, "batch_size": 128},
        "modalities": {
            "a": {"kind": "vector", "latent_dim": 2, "options": {"arch": "identity", "size": 2}},
            "b": {"kind": "vector", "latent_dim": 3, "options": {"arch": "identity", "size": 3}},
        },
        "diffusion": {
            "sde": {"beta_min": 0.1, "beta_max": 20.0},
            "d": 0.5,
            "score_net": {"width": 128, "blocks": 2, "time_embed": 64},
            "train": {"steps": 300, "lr": 2.0e-3, "batch_size": 128, "ema": 0.99, "checkpoint_every": 100},
        },
        "sampling": {"sampler": "euler_maruyama", "steps": 100},
        "evaluation": {"enabled": False},
    }
    for key, value in overrides.items():
        node = recipe
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return recipe
