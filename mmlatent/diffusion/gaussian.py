"""Gaussian latents with an exact noise predictor: the closed-form oracle for samplers.

For data z ~ N(mu, Sigma) on the concatenated latent ``(D,)``, the masked multi-time process
gives dimension i its own time t_i (t_i = tau of its modality, 0 for conditioning modalities), and

    x = A z + S noise,    A = diag(alpha(t_i)),  S = diag(sigma(t_i)),
    x ~ N(A mu, K),       K = A Sigma A + S^2.

K is invertible (Sigma is positive definite and given dims have alpha = 1), so the score of the
diffused dims given the clean ones is the gradient of the joint log density, and the exact noise
prediction is ``eps(x, tau) = S K^{-1} (x - A mu)`` (0 on the given dims, where S = 0). The
sampled law of the diffused dims U given clean dims G = c is the Gaussian conditional
``N(mu_U + Sigma_UG Sigma_GG^{-1} (c - mu_G), Sigma_UU - Sigma_UG Sigma_GG^{-1} Sigma_GU)``.

Used by the tests to check every sampler against closed forms, and handy to check new ones.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .masking import LatentLayout
from .sde import VPSDE

__all__ = ["GaussianLatents"]


class GaussianLatents:
    """Gaussian data ``N(mean, cov)`` over a latent layout.

    Args:
        mean: ``(D,)``.
        cov: ``(D, D)`` symmetric positive definite.
        layout: the modality layout (D = layout.total_dim).

    Computations run in float64; outputs take the dtype of the inputs.
    """

    def __init__(self, mean: Tensor, cov: Tensor, layout: LatentLayout):
        d = layout.total_dim
        mean = torch.as_tensor(mean, dtype=torch.float64)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        if mean.shape != (d,) or cov.shape != (d, d):
            raise ValueError(f"need mean ({d},) and cov ({d}, {d}), got {tuple(mean.shape)}, {tuple(cov.shape)}")
        if not torch.allclose(cov, cov.T):
            raise ValueError("cov must be symmetric")
        self.mean, self.cov, self.layout = mean, cov, layout
        self._chol = torch.linalg.cholesky(cov)  # raises when not positive definite

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact samples ``(n, D)`` float32."""
        z = torch.randn(n, self.layout.total_dim, generator=generator, dtype=torch.float64)
        return (self.mean + z @ self._chol.T).float()

    def conditional(self, given: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Law of the other dims given the dims of ``given`` (bool ``(M,)``) equal to ``value (D,)``.

        Returns ``(mean (U,), cov (U, U), unknown_dims (D,) bool)`` in float64, U = number of
        unknown dims. With nothing given this is the joint law.
        """
        known = self.layout.modality_mask(given.reshape(1, -1).bool())[0]
        u, g = ~known, known
        value = torch.as_tensor(value, dtype=torch.float64)
        s_uu, s_ug, s_gg = self.cov[u][:, u], self.cov[u][:, g], self.cov[g][:, g]
        if int(g.sum()) == 0:
            return self.mean[u], s_uu, u
        gain = torch.linalg.solve(s_gg, s_ug.T).T  # Sigma_UG Sigma_GG^{-1}
        mean = self.mean[u] + gain @ (value[g] - self.mean[g])
        cov = s_uu - gain @ s_ug.T
        return mean, 0.5 * (cov + cov.T), u

    def eps_model(self, sde: VPSDE):
        """The exact noise predictor ``eps(x (B, D), tau (B, M)) -> (B, D)`` under ``sde``.

        Rows with equal tau share one solve, so a sampler step (one tau for the whole batch)
        costs a single D x D inversion.
        """
        layout, mean, cov = self.layout, self.mean, self.cov

        def eps(x: Tensor, tau: Tensor) -> Tensor:
            x64, tau64 = x.to(torch.float64), tau.to(torch.float64)
            if bool((tau64 == tau64[:1]).all()):
                rows, inverse = tau64[:1], None
            else:
                rows, inverse = torch.unique(tau64, dim=0, return_inverse=True)
            out = torch.empty_like(x64)
            for j in range(rows.shape[0]):
                t = layout.expand(rows[j])  # (D,) per-dimension times
                a, s = sde.alpha(t), sde.sigma(t)
                k_inv = torch.linalg.inv(a[:, None] * cov * a[None, :] + torch.diag(s * s))
                proj = k_inv * s[None, :]  # K^{-1} S (K^{-1} is symmetric)
                if inverse is None:
                    out = (x64 - a * mean) @ proj
                else:
                    sel = inverse == j
                    out[sel] = (x64[sel] - a * mean) @ proj
            return out.to(x.dtype)

        return eps
