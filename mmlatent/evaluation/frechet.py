"""Frechet distance between two sets of features (FMD, FID).

The Frechet distance between the Gaussians fitted to two feature sets is::

    d^2 = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))

It is the metric of FID (Inception features, :mod:`mmlatent.evaluation.fid`) and of the paper's
"FMD" (features of the coherence classifier, :func:`mmlatent.evaluation.classifiers.classifier_features`).

Numerics. ``tr((S1 S2)^(1/2))`` is computed from the eigenvalues of the symmetric positive
semi-definite matrix ``S1^(1/2) S2 S1^(1/2)`` (similar to ``S1 S2``, hence the same eigenvalues), in
float64, with eigenvalues below zero (round-off) clipped to zero. This needs no ``scipy``, is exact
for singular covariances (fewer samples than feature dimensions) and never produces the small
imaginary parts that a general matrix square root (``scipy.linalg.sqrtm``) does. ``method="sqrtm"``
gives the classic pytorch-fid computation for comparison (it needs scipy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["GaussianStatistics", "frechet_distance", "frechet_distance_from_features", "gaussian_statistics"]


@dataclass(frozen=True)
class GaussianStatistics:
    """Mean ``(F,)`` and covariance ``(F, F)`` of a feature set (float64 numpy arrays)."""

    mean: np.ndarray
    cov: np.ndarray
    count: int


def _as_numpy(features: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(features, Tensor):
        features = features.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        array = array.reshape(array.shape[0], -1)
    return array


def _as_matrix(matrix: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(matrix, Tensor):
        matrix = matrix.detach().to("cpu", torch.float64).numpy()
    return np.atleast_2d(np.asarray(matrix, dtype=np.float64))


def gaussian_statistics(features: Tensor | np.ndarray) -> GaussianStatistics:
    """Fit a Gaussian to features ``(N, F)`` (``N >= 2``; unbiased covariance, as pytorch-fid)."""
    array = _as_numpy(features)
    if array.shape[0] < 2:
        raise ValueError(f"a Frechet distance needs at least 2 feature vectors, got {array.shape[0]}")
    if not np.all(np.isfinite(array)):
        raise ValueError("features contain NaN or inf")
    mean = array.mean(axis=0)
    cov = np.cov(array, rowvar=False)
    return GaussianStatistics(mean=mean, cov=np.atleast_2d(cov), count=array.shape[0])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative eigenvalues clipped)."""
    sym = (matrix + matrix.T) / 2.0
    eigenvalues, eigenvectors = np.linalg.eigh(sym)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    return (eigenvectors * np.sqrt(eigenvalues)) @ eigenvectors.T


def _trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray, method: str, eps: float) -> float:
    """``tr((cov1 cov2)^(1/2))`` for symmetric PSD matrices."""
    if method == "eigh":
        root1 = _psd_sqrt(cov1)
        middle = root1 @ cov2 @ root1
        eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
        return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    if method == "sqrtm":
        from scipy import linalg

        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.all(np.isfinite(covmean)):  # singular product: regularise both, as pytorch-fid does
            offset = np.eye(cov1.shape[0]) * eps
            covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
        if np.iscomplexobj(covmean):
            imaginary = np.max(np.abs(covmean.imag)) if covmean.size else 0.0
            scale = max(1.0, float(np.max(np.abs(covmean.real))))
            if imaginary > 1e-3 * scale:
                raise ValueError(f"matrix square root has a large imaginary part ({imaginary:.3g})")
            covmean = covmean.real
        return float(np.trace(covmean))
    raise ValueError(f"unknown method {method!r} (expected 'eigh' or 'sqrtm')")


def frechet_distance(
    mean1: np.ndarray | Tensor,
    cov1: np.ndarray | Tensor,
    mean2: np.ndarray | Tensor,
    cov2: np.ndarray | Tensor,
    *,
    method: str = "eigh",
    eps: float = 1e-6,
) -> float:
    """Frechet distance between N(mean1, cov1) and N(mean2, cov2); means ``(F,)``, covariances ``(F, F)``.

    ``method``: ``"eigh"`` (default, see the module docstring) or ``"sqrtm"`` (scipy). The result
    is clipped at 0 (round-off can make it slightly negative for identical statistics).
    """
    mu1, mu2 = (np.atleast_1d(_as_numpy(m).reshape(-1)) for m in (mean1, mean2))
    s1, s2 = (_as_matrix(c) for c in (cov1, cov2))
    if mu1.shape != mu2.shape:
        raise ValueError(f"means have different shapes: {mu1.shape} and {mu2.shape}")
    if s1.shape != s2.shape or s1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(f"covariances {s1.shape} and {s2.shape} do not match means of size {mu1.shape[0]}")
    diff = mu1 - mu2
    trace_root = _trace_sqrt_product(s1, s2, method, eps)
    value = float(diff @ diff) + float(np.trace(s1)) + float(np.trace(s2)) - 2.0 * trace_root
    return max(value, 0.0)


def frechet_distance_from_features(
    features1: Tensor | np.ndarray | GaussianStatistics,
    features2: Tensor | np.ndarray | GaussianStatistics,
    *,
    method: str = "eigh",
) -> float:
    """Frechet distance between two feature sets ``(N1, F)`` and ``(N2, F)`` (or their statistics)."""
    stats1 = features1 if isinstance(features1, GaussianStatistics) else gaussian_statistics(features1)
    stats2 = features2 if isinstance(features2, GaussianStatistics) else gaussian_statistics(features2)
    return frechet_distance(stats1.mean, stats1.cov, stats2.mean, stats2.cov, method=method)
