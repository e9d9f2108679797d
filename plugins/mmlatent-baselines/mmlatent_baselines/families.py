"""Recipe + family options + fitted modalities -> a MultiVae model with our networks and likelihoods.

Every model is built from a fresh MultiVae config (the constructors mutate their config), so
training and loading build the same thing from the same recipe; nothing of MultiVae's own
saving (which pickles) is used. Family by family:

===========  =================================================================================
``mvae``     ``MVAE``: PoE with a prior expert; joint + unimodal ELBOs (``use_subsampling``);
             beta annealed over ``warmup`` epochs
``mmvae``    ``MMVAE``: mixture of experts, ``K`` importance samples, DReG estimator
             (``dreg_looser``), learned prior scale, Laplace (softmax-scaled) or normal
``mopoe``    ``MoPoE``: mixture over the PoE of every non-empty subset
``mvtcae``   ``MVTCAE``: PoE without a prior expert, total-correlation objective (``alpha``)
``nexus``    ``Nexus``: bottom VAEs per modality (latent ``modality_latent_dims``), messages,
             a joint latent (``joint_latent_dim``), forced perceptual dropout, mean aggregator
===========  =================================================================================

MultiVae is imported here, inside the functions: ``import multivae.models`` takes seconds and
pulls torchvision, which listing plugins must not pay for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mmlatent_baselines.likelihoods import check_likelihood, infer_likelihood, install
from mmlatent_baselines.networks import (
    GaussianMLPEncoder,
    MessageEncoder,
    MLPDecoder,
    ModalityNetworks,
    build_modality_networks,
)
from mmlatent_baselines.options import FAMILY_OPTIONS, BaselineOptions, NexusOptions

__all__ = ["BuiltModel", "build_model", "check_options", "latent_dims"]

#: MMVAE's ``prior`` option -> MultiVae's ``prior_and_posterior_dist``.
_MMVAE_PRIOR = {"laplace": "laplace_with_softmax", "normal": "normal"}


@dataclass
class BuiltModel:
    """A MultiVae model with the plugin's networks. ``likelihoods``: the resolved likelihood of each
    modality; ``networks``: each modality's encoder/decoder and data probe (:class:`ModalityNetworks`)."""

    model: Any
    likelihoods: dict[str, str]
    networks: dict[str, ModalityNetworks]


def check_options(family: str, recipe: Any, options: BaselineOptions) -> None:
    """Raise ``ValueError`` when ``options`` name modalities the recipe does not have."""
    if not isinstance(options, FAMILY_OPTIONS[family]):
        raise TypeError(f"family {family!r} takes {FAMILY_OPTIONS[family].__name__}, got {type(options).__name__}")
    names = list(recipe.modalities)
    keyed = {"likelihood": options.likelihood}
    if isinstance(options, NexusOptions):
        keyed["modality_latent_dims"] = options.modality_latent_dims
    for key, mapping in keyed.items():
        unknown = sorted(set(mapping) - set(names))
        if unknown:
            raise ValueError(f"model.options.{key}: unknown modality {', '.join(map(repr, unknown))} "
                             f"(modalities: {', '.join(names)})")


def latent_dims(recipe: Any, options: BaselineOptions) -> dict[str, int]:
    """The latent size of each modality's encoder/decoder: the shared ``latent_dim``, or for
    Nexus each bottom latent (``modality_latent_dims``, default the recipe's ``latent_dim``)."""
    if isinstance(options, NexusOptions):
        return {name: options.modality_latent_dims.get(name, cfg.latent_dim) for name, cfg in recipe.modalities.items()}
    return {name: options.latent_dim for name in recipe.modalities}


def build_model(family: str, recipe: Any, options: BaselineOptions, modalities: Mapping[str, Any]) -> BuiltModel:
    """A fresh (randomly initialised: seed torch first) MultiVae model of ``family`` on CPU.

    ``modalities``: the recipe's modality objects with their fitted preprocessing (a text
    vocabulary decides the decoder's output size). Raises ``ValueError`` for options that do not
    fit the recipe (unknown modality names, a likelihood the decoder output cannot feed, an
    autoencoder without parameters).
    """
    check_options(family, recipe, options)
    dims = latent_dims(recipe, options)
    networks = {name: build_modality_networks(name, cfg.kind, cfg.options, modalities[name], dims[name])
                for name, cfg in recipe.modalities.items()}
    likelihoods = {}
    for name, nets in networks.items():
        kind = options.likelihood.get(name) or infer_likelihood(nets.decoded, nets.data)
        try:
            check_likelihood(name, kind, nets.decoded, nets.data)
        except ValueError as error:
            raise ValueError(f"model.options.likelihood: {error}" if name in options.likelihood else str(error)) from None
        likelihoods[name] = kind
    common = dict(
        n_modalities=len(networks),
        decoders_dist=dict(likelihoods),
        decoder_dist_params={name: {"scale": options.likelihood_scale} for name in networks},
        uses_likelihood_rescaling=False,
    )
    encoders = {name: nets.encoder for name, nets in networks.items()}
    decoders = {name: nets.decoder for name, nets in networks.items()}
    model = _BUILDERS[family](options, common, encoders, decoders, dims)
    install(model, likelihoods, options.likelihood_scale)
    model.device = torch.device("cpu")
    return BuiltModel(model=model, likelihoods=likelihoods, networks=networks)


# --------------------------------------------------------------------------------- the families
def _mvae(options, common, encoders, decoders, dims):
    from multivae.models import MVAE, MVAEConfig

    config = MVAEConfig(**common, latent_dim=options.latent_dim, beta=options.beta, warmup=options.warmup,
                        use_subsampling=True, k=0)
    return MVAE(config, encoders=encoders, decoders=decoders)


def _mmvae(options, common, encoders, decoders, dims):
    from multivae.models import MMVAE, MMVAEConfig

    config = MMVAEConfig(**common, latent_dim=options.latent_dim, beta=options.beta, K=options.K,
                         prior_and_posterior_dist=_MMVAE_PRIOR[options.prior], learn_prior=True, loss="dreg_looser")
    return MMVAE(config, encoders=encoders, decoders=decoders)


def _mopoe(options, common, encoders, decoders, dims):
    from multivae.models import MoPoE, MoPoEConfig

    config = MoPoEConfig(**common, latent_dim=options.latent_dim, beta=options.beta)
    return MoPoE(config, encoders=encoders, decoders=decoders)


def _mvtcae(options, common, encoders, decoders, dims):
    from multivae.models import MVTCAE, MVTCAEConfig

    config = MVTCAEConfig(**common, latent_dim=options.latent_dim, beta=options.beta, alpha=options.alpha)
    return MVTCAE(config, encoders=encoders, decoders=decoders)


def _nexus(options, common, encoders, decoders, dims):
    from multivae.models import Nexus, NexusConfig

    config = NexusConfig(**common, latent_dim=options.joint_latent_dim, modalities_specific_dim=dict(dims),
                         msg_dim=options.msg_dim, aggregator="mean", dropout_rate=options.dropout_rate,
                         top_beta=options.beta_joint, bottom_betas={name: options.beta_modalities for name in dims},
                         warmup=max(1, options.warmup))  # MultiVae divides by warmup; 1 = no annealing
    hidden = options.top_hidden
    return Nexus(config, encoders=encoders, decoders=decoders,
                 top_encoders={name: MessageEncoder(d, options.msg_dim) for name, d in dims.items()},
                 joint_encoder=GaussianMLPEncoder(options.msg_dim, options.joint_latent_dim, hidden),
                 top_decoders={name: MLPDecoder(options.joint_latent_dim, d, hidden) for name, d in dims.items()})


_BUILDERS = {"mvae": _mvae, "mmvae": _mmvae, "mopoe": _mopoe, "mvtcae": _mvtcae, "nexus": _nexus}
