"""The score network: a residual MLP over the concatenated latent with a multi-time embedding.

``ScoreNet(x (B, D), tau (B, M)) -> eps_hat (B, D)`` predicts the noise added to the diffused
dims of ``x``; ``tau`` is the multi-time vector (one time per modality, 0 for the conditioning
modalities). Architecture (shared/DESIGN.md section 2)::

    tau (B, M) --Linear(M, E)-GELU-Linear(E, E)--> temb (B, E)
    x (B, D) --Linear(D, W)--> h0 (B, W)
    h = h0
    repeat `blocks` times (pre-activation residual block):
        u = Linear(SiLU(Norm(h))) + Linear_t(temb)        (additive time projection)
        u = Linear(SiLU(Norm(u)))
        h = h + u                                           (residual add)
    h = h + h0                                              (long skip from the input projection)
    eps_hat = Linear(SiLU(Norm(h)))                         (zero-initialised: eps_hat = 0 at init)

With ``prediction="v"`` (an addition to the paper's network) the last layer's output is read as
v = alpha eps - sigma z (Salimans & Ho 2022) and returned as the noise, per latent dimension at its
modality's time: ``eps_hat = alpha(tau) v_hat + sigma(tau) x``. Every caller still receives eps_hat;
what changes is the function the layers learn: at high noise v is about -z, so the class a given
modality fixes is read into a clean-signal estimate instead of into a correction of size alpha.

Paper sizes: MNIST-SVHN width 512, 2 blocks, time embedding 256; CUB width 1024, 2 blocks, 512.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from .masking import LatentLayout
from .sde import VPSDE

__all__ = ["ScoreNet", "ResidualBlock", "MultiTimeEmbedding"]


class MultiTimeEmbedding(nn.Module):
    """Embedding of the multi-time vector: ``tau (B, M) -> (B, E)`` by Linear-GELU-Linear."""

    def __init__(self, num_modalities: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(num_modalities, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, tau: Tensor) -> Tensor:
        return self.net(tau)


class ResidualBlock(nn.Module):
    """Pre-activation residual MLP block with an additive time projection.

    ``forward(h (B, W), temb (B, E)) -> (B, W)``:
    ``h + Linear(SiLU(Norm(Linear(SiLU(Norm(h))) + Linear_t(temb))))``.
    """

    def __init__(self, width: int, time_embed: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.linear1 = nn.Linear(width, width)
        self.time_proj = nn.Linear(time_embed, width)
        self.norm2 = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear2 = nn.Linear(width, width)
        self.act = nn.SiLU()

    def forward(self, h: Tensor, temb: Tensor) -> Tensor:
        u = self.linear1(self.act(self.norm1(h))) + self.time_proj(temb)
        u = self.linear2(self.dropout(self.act(self.norm2(u))))
        return h + u


class ScoreNet(nn.Module):
    """Noise-prediction network of masked multi-time diffusion.

    Args:
        latent_dim: D, the size of the concatenated latent.
        num_modalities: M, the length of the multi-time vector.
        width: hidden width W of the residual blocks.
        blocks: number of residual blocks.
        time_embed: size E of the multi-time embedding.
        dropout: dropout inside the blocks (0 disables it).
        prediction: ``"eps"`` (the output is eps_hat) or ``"v"`` (the output is v_hat, returned as
            eps_hat); ``"v"`` needs ``modality_dims`` and ``sde``.
        modality_dims: per-modality latent sizes ``(d_1, ..., d_M)`` summing to D.
        sde: the VP-SDE's arguments (``beta_min``, ``beta_max``, ``T``) for ``prediction="v"``.

    ``forward(x (B, D), tau (B, M)) -> eps_hat (B, D)``. The output layer is zero-initialised,
    so a fresh network predicts eps_hat = 0 (score 0), or v_hat = 0 (eps_hat = sigma x) with ``"v"``.
    """

    def __init__(
        self,
        latent_dim: int,
        num_modalities: int,
        width: int = 512,
        blocks: int = 2,
        time_embed: int = 256,
        dropout: float = 0.0,
        prediction: str = "eps",
        modality_dims: Sequence[int] | None = None,
        sde: Mapping[str, float] | None = None,
    ):
        super().__init__()
        if min(latent_dim, num_modalities, width, time_embed) < 1 or blocks < 0:
            raise ValueError(
                "ScoreNet needs positive latent_dim, num_modalities, width, time_embed and blocks >= 0"
            )
        self.latent_dim = int(latent_dim)
        self.num_modalities = int(num_modalities)
        self.width = int(width)
        self.num_blocks = int(blocks)
        self.time_embed_dim = int(time_embed)
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
        self.prediction = prediction
        self.modality_dims = None if modality_dims is None else tuple(int(d) for d in modality_dims)
        if self.modality_dims is not None and (len(self.modality_dims) != num_modalities
                                               or sum(self.modality_dims) != latent_dim):
            raise ValueError(f"modality_dims must be {num_modalities} sizes summing to {latent_dim}, "
                             f"got {self.modality_dims}")
        self.sde = None if sde is None else VPSDE(**sde)
        if prediction == "v" and (self.modality_dims is None or self.sde is None):
            raise ValueError("prediction='v' needs modality_dims and sde")
        # (B, M) per-modality times -> (B, D) per-dimension values, with a cached index per device
        self.layout = None if self.modality_dims is None else LatentLayout(self.modality_dims)
        self.time_embed = MultiTimeEmbedding(num_modalities, time_embed)
        self.input_proj = nn.Linear(latent_dim, width)
        self.blocks = nn.ModuleList(
            ResidualBlock(width, time_embed, dropout) for _ in range(blocks)
        )
        self.out_norm = nn.LayerNorm(width)
        self.out_act = nn.SiLU()
        self.output = nn.Linear(width, latent_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def config(self) -> dict[str, Any]:
        """Constructor arguments, to rebuild the network (e.g. next to a safetensors file)."""
        config: dict[str, Any] = {
            "latent_dim": self.latent_dim,
            "num_modalities": self.num_modalities,
            "width": self.width,
            "blocks": self.num_blocks,
            "time_embed": self.time_embed_dim,
        }
        if self.prediction != "eps":
            sde = {"beta_min": self.sde.beta_min, "beta_max": self.sde.beta_max, "T": self.sde.T}
            config.update(prediction=self.prediction, modality_dims=list(self.modality_dims), sde=sde)
        return config

    def forward(self, x: Tensor, tau: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[-1] != self.latent_dim:
            raise ValueError(f"x must be (B, {self.latent_dim}), got {tuple(x.shape)}")
        if tau.shape != (x.shape[0], self.num_modalities):
            raise ValueError(
                f"tau must be (B, M) = ({x.shape[0]}, {self.num_modalities}), got {tuple(tau.shape)}"
            )
        temb = self.time_embed(tau.to(x.dtype))
        h0 = self.input_proj(x)
        h = h0
        for block in self.blocks:
            h = block(h, temb)
        out = self.output(self.out_act(self.out_norm(h + h0)))
        if self.prediction == "eps":
            return out
        tau = tau.to(x.dtype)
        alpha, sigma = self.layout.expand(self.sde.alpha(tau)), self.layout.expand(self.sde.sigma(tau))  # (B, D)
        return alpha * out + sigma * x
