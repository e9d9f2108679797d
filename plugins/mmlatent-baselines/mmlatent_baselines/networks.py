"""The VAE networks: each modality's MLD autoencoder trunk with a variational head.

For modality m with VAE latent size k (the shared latent of MVAE/MMVAE/MoPoE/MVTCAE, or Nexus's
bottom latent z_m), the networks are built by the modality's own plugin, exactly as for MLD:

- encoder: ``modality.build(name, options, 2k).build_autoencoder().encode``: data
  ``(B, *item_shape)`` -> ``(B, 2k)``, split into the posterior mean and log-variance (the last
  layer of the MLD encoder, widened to 2k, is the variational head);
- decoder: ``modality.build(name, options, k).build_autoencoder().decode``: ``(B, k)`` -> the
  decoder output (images in [0, 1], text logits ``(B, L, V)``, ...), turned into data by the
  autoencoder's ``to_data``.

Each autoencoder is built whole, then the half the VAE does not use (the encoder's decoder, the
decoder's encoder) is removed: a probe decode of a zero latent finds the decoder's parameters, and
every submodule made only of parameters on the wrong side is replaced by :class:`RemovedPart`. So
the state dict holds each weight once and every parameter gets a gradient (what DDP needs).

Nexus's upper level is three small MLP kinds (:class:`MessageEncoder`,
:class:`GaussianMLPEncoder`, :class:`MLPDecoder`). Every network wraps its output in pythae's
``ModelOutput`` as MultiVae expects and accepts any leading dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from mmlatent.modality import Autoencoder, Modality
from mmlatent.plugins import get_registry
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn.base_architectures import BaseDecoder, BaseEncoder
from torch import Tensor, nn

__all__ = [
    "GaussianMLPEncoder",
    "MLPDecoder",
    "MessageEncoder",
    "ModalityDecoder",
    "ModalityNetworks",
    "RemovedPart",
    "VariationalEncoder",
    "build_modality_networks",
    "modality_with_latent",
]


# ------------------------------------------------------------------------------ modality trunks

def _posterior(h: Tensor, k: int) -> ModelOutput:
    """``(..., 2k)`` -> ``ModelOutput(embedding=(..., k), log_covariance=(..., k))`` as plain slices
    (MultiVae writes into the log-variance of missing modalities in place, which the views of
    ``split`` refuse)."""
    return ModelOutput(embedding=h[..., :k], log_covariance=h[..., k:])

class VariationalEncoder(BaseEncoder):
    """Data ``(*lead, *item_shape)`` -> ``ModelOutput(embedding=(*lead, k), log_covariance=(*lead, k))``.

    ``autoencoder`` is the modality's autoencoder built with latent size ``2k`` (decoder removed);
    its ``encode`` output ``(B, 2k)`` is split into mean and log-variance.
    """

    def __init__(self, autoencoder: Autoencoder, latent_dim: int, item_ndim: int) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.latent_dim = int(latent_dim)
        self.item_ndim = int(item_ndim)

    def forward(self, x: Tensor) -> ModelOutput:
        lead = x.shape[: x.dim() - self.item_ndim]
        h = self.autoencoder.encode(x.reshape(-1, *x.shape[len(lead):]))
        h = h.reshape(*lead, 2 * self.latent_dim)
        return _posterior(h, self.latent_dim)


class ModalityDecoder(BaseDecoder):
    """Latents ``(*lead, k)`` -> ``ModelOutput(reconstruction=(*lead, *decoder output shape))``.

    ``autoencoder`` is the modality's autoencoder built with latent size ``k`` (encoder removed);
    :meth:`to_data` turns a reconstruction into a data-space batch.
    """

    def __init__(self, autoencoder: Autoencoder, latent_dim: int) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.latent_dim = int(latent_dim)

    def forward(self, z: Tensor) -> ModelOutput:
        lead = z.shape[:-1]
        out = self.autoencoder.decode(z.reshape(-1, self.latent_dim))
        return ModelOutput(reconstruction=out.reshape(*lead, *out.shape[1:]))

    def to_data(self, reconstruction: Tensor) -> Tensor:
        """Decoder output ``(B, ...)`` -> data-space batch ``(B, *item_shape)`` (``Autoencoder.to_data``)."""
        return self.autoencoder.to_data(reconstruction)


class RemovedPart(nn.Module):
    """Stands in for a part of a modality autoencoder that the VAE does not use."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        raise RuntimeError(f"{self.what} was removed: the VAE uses only the other half of this autoencoder")

    def extra_repr(self) -> str:
        return self.what


def _decoder_parameters(autoencoder: Autoencoder, latent_dim: int) -> tuple[set[int], Tensor]:
    """Ids of the parameters that ``decode`` uses (found by a backward pass through a decode of
    zeros ``(2, latent_dim)``), and that decode's output."""
    params = list(autoencoder.parameters())
    was_training = autoencoder.training
    requires = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    autoencoder.eval()
    try:
        for p in params:
            p.requires_grad_(True)
            p.grad = None
        with torch.enable_grad():
            decoded = autoencoder.decode(torch.zeros(2, latent_dim))
            if decoded.requires_grad:
                decoded.float().sum().backward()
        used = {id(p) for p in params if p.grad is not None}
    finally:
        for p, flag, grad in zip(params, requires, grads):
            p.requires_grad_(flag)
            p.grad = grad
        autoencoder.train(was_training)
    return used, decoded.detach()


def _remove(module: nn.Module, removable: set[int], what: str, prefix: str = "") -> None:
    """Replace every submodule whose parameters are all in ``removable`` by a :class:`RemovedPart`;
    freeze removable parameters held directly by a kept module."""
    for name, child in list(module.named_children()):
        params = list(child.parameters())
        if params and all(id(p) in removable for p in params):
            module._modules[name] = RemovedPart(f"{what} {prefix}{name}")
        else:
            _remove(child, removable, what, f"{prefix}{name}.")
    for p in module.parameters(recurse=False):
        if id(p) in removable:
            p.requires_grad_(False)


def modality_with_latent(name: str, kind: str, options: Any, fitted: Modality, latent_dim: int) -> Modality:
    """A modality object like ``fitted`` (same plugin, options and fitted state, e.g. a text
    vocabulary) whose autoencoder has latent size ``latent_dim``."""
    spec = get_registry().modality(kind)
    try:
        modality = spec.build(name, options, latent_dim)
        modality.load_state_dict(fitted.state_dict())
    except ValueError as error:
        raise ValueError(f"modality {name!r} (kind {kind}) cannot have an autoencoder with latent size "
                         f"{latent_dim}, which the VAE networks need: {error}") from None
    return modality


@dataclass
class ModalityNetworks:
    """One modality's VAE networks. ``decoded``: the decoder output of zero latents ``(2, ...)``
    and ``data``: its data-space version ``(2, *item_shape)`` (dtype and shape of the data, e.g.
    to fill in absent modalities)."""

    encoder: VariationalEncoder
    decoder: ModalityDecoder
    decoded: Tensor
    data: Tensor


def build_modality_networks(name: str, kind: str, options: Any, fitted: Modality, latent_dim: int) -> ModalityNetworks:
    """Encoder (latent ``2 * latent_dim``, decoder half removed) and decoder (latent ``latent_dim``,
    encoder half removed) of modality ``name`` from its plugin; ``fitted``: the recipe's modality
    with its fitted preprocessing state."""
    decoder_ae = modality_with_latent(name, kind, options, fitted, latent_dim).build_autoencoder()
    encoder_ae = modality_with_latent(name, kind, options, fitted, 2 * latent_dim).build_autoencoder()
    if not (encoder_ae.has_parameters and decoder_ae.has_parameters):
        raise ValueError(f"modality {name!r} (kind {kind}): its autoencoder has no parameters (a fixed map such "
                         "as vector's arch: identity); the VAE baselines need a trainable encoder and decoder")
    used_by_decoder, decoded = _decoder_parameters(decoder_ae, latent_dim)
    _remove(decoder_ae, {id(p) for p in decoder_ae.parameters()} - used_by_decoder, f"{name} encoder part")
    decoder_side, _ = _decoder_parameters(encoder_ae, 2 * latent_dim)
    _remove(encoder_ae, decoder_side, f"{name} decoder part")
    with torch.no_grad():
        data = decoder_ae.to_data(decoded)
    return ModalityNetworks(encoder=VariationalEncoder(encoder_ae, latent_dim, data.dim() - 1),
                            decoder=ModalityDecoder(decoder_ae, latent_dim), decoded=decoded, data=data)


# ----------------------------------------------------------------------------- Nexus upper level
def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of widths ``sizes``, LeakyReLU between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.LeakyReLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


class MessageEncoder(BaseEncoder):
    """Nexus top encoder: bottom latent z_m ``(*lead, d_m)`` -> ``ModelOutput(embedding=message (*lead, msg))``.

    One linear map (MultiVae's Nexus set-up); Nexus reads only ``embedding`` (a log-variance head
    would get no gradient).
    """

    def __init__(self, in_dim: int, msg_dim: int) -> None:
        super().__init__()
        self.net = nn.Linear(in_dim, msg_dim)

    def forward(self, z: Tensor) -> ModelOutput:
        return ModelOutput(embedding=self.net(z))


class GaussianMLPEncoder(BaseEncoder):
    """Nexus joint encoder: mean message ``(*lead, msg)`` -> ``ModelOutput(embedding=(*lead, d),
    log_covariance=(*lead, d))`` through two hidden layers of width ``hidden``."""

    def __init__(self, in_dim: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.body = nn.Sequential(_mlp([in_dim, hidden, hidden]), nn.LeakyReLU())
        self.head = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: Tensor) -> ModelOutput:
        return _posterior(self.head(self.body(x)), self.latent_dim)


class MLPDecoder(BaseDecoder):
    """Nexus top decoder: joint latent ``(*lead, d)`` -> ``ModelOutput(reconstruction=z_m (*lead, d_m))``
    through two hidden layers of width ``hidden``."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = _mlp([in_dim, hidden, hidden, out_dim])

    def forward(self, z: Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.net(z))
