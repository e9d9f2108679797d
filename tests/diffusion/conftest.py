"""Fixtures of the diffusion-engine tests: a correlated 2-modality Gaussian and one torch thread."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from mmlatent.diffusion import VPSDE, GaussianLatents, LatentLayout


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_thread):
    """Every diffusion-engine test runs on one torch thread (tests/conftest.py)."""


@dataclass
class GaussianProblem:
    """Modalities "a" (2 dims) and "b" (3 dims) with a correlated covariance (all dims coupled)."""

    sde: VPSDE
    layout: LatentLayout
    data: GaussianLatents
    value: torch.Tensor  # (5,) a fixed conditioning value, off the mean on both modalities

    def moments_check(self, samples: torch.Tensor, given: torch.Tensor) -> tuple[float, float]:
        """Whitened errors of ``samples (n, D)`` against the exact law given ``given (M,)``.

        Returns (mean error, covariance error): with L L^T the exact covariance of the unknown
        dims, max |L^{-1} (sample mean - mean)| (in units of the law's own spread) and
        max |L^{-1} sample_cov L^{-T} - I|. Both are ~N(0, 1/n)-sized for exact samples.
        """
        mean, cov, unknown = self.data.conditional(given, self.value)
        y = samples.double()[:, unknown]
        white = torch.linalg.inv(torch.linalg.cholesky(cov))
        mean_err = (white @ (y.mean(0) - mean)).abs().max().item()
        cov_err = (white @ torch.cov(y.T) @ white.T - torch.eye(len(mean), dtype=torch.float64))
        return mean_err, cov_err.abs().max().item()


def make_problem() -> GaussianProblem:
    layout = LatentLayout([2, 3], names=["a", "b"])
    mean = torch.tensor([0.5, -0.5, 0.25, 1.0, -0.25])
    mix = torch.tensor(
        [
            [1.0, 0.3, 0.5, -0.2, 0.1],
            [0.2, 0.8, -0.4, 0.3, 0.0],
            [0.5, -0.1, 0.9, 0.2, 0.3],
            [0.0, 0.4, 0.1, 0.7, -0.3],
            [0.3, 0.0, 0.2, -0.1, 0.6],
        ]
    )
    cov = mix @ mix.T + 0.1 * torch.eye(5)
    value = mean.clone()
    value[:2] += torch.tensor([1.0, -0.5])  # modality a, 1 to 2 std off its mean
    value[2:] += torch.tensor([-0.8, 0.6, 0.5])  # modality b
    return GaussianProblem(VPSDE(), layout, GaussianLatents(mean, cov, layout), value)


@pytest.fixture(scope="session")
def gaussian_problem() -> GaussianProblem:
    return make_problem()
