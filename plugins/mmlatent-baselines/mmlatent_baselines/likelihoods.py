"""Reconstruction likelihoods log p(x_m | z) on the decoders' own outputs.

MultiVae builds ``model.recon_log_probs[m]`` from its config; we replace them with these
functions (:func:`install`), which read what mmlatent's modality decoders produce:

- continuous data (images in [0, 1], real vectors): the decoder output ``(..., *item_shape)`` is
  the location (image decoders end with a sigmoid, so it is already in data space);
  ``laplace`` and ``normal`` have a fixed ``scale``; ``bernoulli`` reads the output as the
  probability of a 1 (clamped to [1e-6, 1 - 1e-6]);
- discrete data (text token ids ``(B, L)`` long): the decoder output is logits
  ``(..., B, L, V)``; ``categorical`` is the log-softmax gathered at the ids.

Every function takes ``recon`` of shape ``(*lead, B, *item_shape[, V])`` (MMVAE decodes ``K``
importance samples at once: ``lead = (K,)``) and the data batch ``target`` ``(B, *item_shape)``,
and returns the element-wise log-probabilities ``(*lead, B, *item_shape)``; MultiVae sums them over
everything after the batch axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlatent_baselines.options import LIKELIHOODS

__all__ = [
    "BERNOULLI_EPS",
    "bernoulli_log_prob",
    "categorical_log_prob",
    "check_likelihood",
    "infer_likelihood",
    "install",
    "laplace_log_prob",
    "log_prob_function",
    "normal_log_prob",
]

LogProb = Callable[[Tensor, Tensor], Tensor]

#: Probabilities of the Bernoulli likelihood are clamped to [eps, 1 - eps] (decoders end with a sigmoid).
BERNOULLI_EPS = 1e-6


def laplace_log_prob(scale: float) -> LogProb:
    """Laplace(location = recon, scale): ``-|x - recon| / scale - log(2 scale)``, element-wise."""
    log_norm = math.log(2.0 * scale)

    def log_prob(recon: Tensor, target: Tensor) -> Tensor:
        return -(target - recon).abs() / scale - log_norm

    return log_prob


def normal_log_prob(scale: float) -> LogProb:
    """Normal(mean = recon, std = scale): ``-(x - recon)^2 / (2 scale^2) - log(scale) - log(2 pi) / 2``."""
    log_norm = math.log(scale) + 0.5 * math.log(2.0 * math.pi)

    def log_prob(recon: Tensor, target: Tensor) -> Tensor:
        return -(target - recon).pow(2) / (2.0 * scale * scale) - log_norm

    return log_prob


def bernoulli_log_prob(recon: Tensor, target: Tensor) -> Tensor:
    """Bernoulli(probs = recon clamped to [eps, 1 - eps]) of ``target`` in [0, 1] (soft targets allowed)."""
    logits = torch.logit(recon, eps=BERNOULLI_EPS)
    target = target.to(logits.dtype).expand_as(logits)
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def categorical_log_prob(recon: Tensor, target: Tensor) -> Tensor:
    """Categorical(logits = recon ``(*lead, B, *shape, V)``) of the ids ``target`` ``(B, *shape)``."""
    log_probs = F.log_softmax(recon.float(), dim=-1)
    ids = target.long().expand(recon.shape[:-1]).unsqueeze(-1)
    return log_probs.gather(-1, ids).squeeze(-1)


def log_prob_function(kind: str, scale: float) -> LogProb:
    """The element-wise log-probability of likelihood ``kind`` (one of :data:`LIKELIHOODS`)."""
    if kind == "laplace":
        return laplace_log_prob(scale)
    if kind == "normal":
        return normal_log_prob(scale)
    if kind == "bernoulli":
        return bernoulli_log_prob
    if kind == "categorical":
        return categorical_log_prob
    raise ValueError(f"unknown likelihood {kind!r} (expected one of {', '.join(LIKELIHOODS)})")


def _is_discrete(data: Tensor) -> bool:
    return not (data.is_floating_point() or data.is_complex())


def infer_likelihood(decoded: Tensor, data: Tensor) -> str:
    """The default likelihood of a modality from one decoded batch and its data-space version
    (``Autoencoder.to_data(decoded)``): ``categorical`` for discrete data, ``laplace`` otherwise."""
    return "categorical" if _is_discrete(data) else "laplace"


def check_likelihood(name: str, kind: str, decoded: Tensor, data: Tensor) -> None:
    """Raise ``ValueError`` (naming modality ``name``) when likelihood ``kind`` cannot read this
    decoder output ``decoded`` for data like ``data`` (both for the same batch)."""
    shapes = f"decoder output {tuple(decoded.shape)}, data {tuple(data.shape)} {data.dtype}"
    if kind == "categorical":
        if not _is_discrete(data):
            raise ValueError(f"modality {name!r}: the categorical likelihood needs discrete data (ids), but "
                             f"its data are {data.dtype}; use laplace, normal or bernoulli")
        if decoded.dim() != data.dim() + 1 or decoded.shape[:-1] != data.shape:
            raise ValueError(f"modality {name!r}: the categorical likelihood needs decoder logits of shape "
                             f"(B, *item_shape, classes), got {shapes}")
        return
    if _is_discrete(data):
        raise ValueError(f"modality {name!r}: its data are discrete ({data.dtype}) and its decoder gives "
                         f"{tuple(decoded.shape)}; use the categorical likelihood, not {kind}")
    if decoded.shape != data.shape:
        raise ValueError(f"modality {name!r}: the {kind} likelihood needs a decoder output shaped like the "
                         f"data, got {shapes}")


def install(model: torch.nn.Module, kinds: Mapping[str, str], scale: float) -> None:
    """Replace the MultiVae model's ``recon_log_probs`` by our functions for ``kinds`` ({name: kind})."""
    missing = set(model.recon_log_probs) - set(kinds)
    if missing:
        raise ValueError(f"no likelihood for modalities {sorted(missing)}")
    model.recon_log_probs = {name: log_prob_function(kinds[name], scale) for name in model.recon_log_probs}
