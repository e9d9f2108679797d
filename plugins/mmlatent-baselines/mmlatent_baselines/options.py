"""The options of the five VAE families (a recipe's ``model.options``), one pydantic model per family.

Every family shares :class:`BaselineOptions` (training schedule and reconstruction likelihoods);
each adds its own objective's settings, so that an option of another family (``K`` for ``mvae``)
or a misspelled one is an error of the recipe (``extra="forbid"``)::

    model:
      family: mopoe
      options: {latent_dim: 20, beta: 5.0, epochs: 150, likelihood: {caption: categorical}}

The defaults are the MLD paper's baseline settings where it gives them (latent size 20, beta 5,
Laplace likelihoods of scale 0.75, 150 epochs, batch 256, Adam 1e-3) and MultiVae's otherwise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

__all__ = [
    "FAMILY_OPTIONS",
    "LIKELIHOODS",
    "BaselineOptions",
    "MMVAEOptions",
    "MVAEOptions",
    "MVTCAEOptions",
    "MoPoEOptions",
    "NexusOptions",
    "SharedLatentOptions",
]

#: The reconstruction likelihoods p(x_m | z) a modality may use (:mod:`mmlatent_baselines.likelihoods`).
LIKELIHOODS = ("laplace", "normal", "bernoulli", "categorical")
Likelihood = Literal["laplace", "normal", "bernoulli", "categorical"]


class BaselineOptions(BaseModel):
    """What every VAE family takes: the likelihoods and the training schedule."""

    model_config = ConfigDict(extra="forbid")

    likelihood: dict[str, Likelihood] = Field(
        default_factory=dict,
        description="p(x_m | z) per modality name: laplace, normal, bernoulli or categorical; a modality left "
        "out gets categorical when its decoder gives logits over discrete data (text token ids) and laplace "
        "otherwise (decided from the modality's autoencoder when the model is built)",
    )
    likelihood_scale: float = Field(0.75, gt=0, description="scale of the laplace and normal likelihoods")
    epochs: PositiveInt = Field(150, description="passes over the training split (ignored when `steps` is set)")
    steps: PositiveInt | None = Field(None, description="optimiser steps; overrides `epochs`")
    batch_size: PositiveInt = Field(256, description="global batch size (split across processes)")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    checkpoint_every: PositiveInt = Field(1000, description="steps between resumable checkpoints")
    log_every: PositiveInt = Field(50, description="steps between loss records (history.json, curves)")


class SharedLatentOptions(BaselineOptions):
    """The families with one latent space shared by all modalities (all but Nexus)."""

    latent_dim: PositiveInt = Field(20, description="size of the shared latent z")
    beta: float = Field(5.0, ge=0, description="weight of the KL divergence(s) in the objective")


class MVAEOptions(SharedLatentOptions):
    """``mvae`` (Wu & Goodman 2018): product of experts with a prior expert, ELBO of the joint
    posterior plus the unimodal ELBOs; beta rises linearly over the first ``warmup`` epochs."""

    warmup: int = Field(10, ge=0, description="epochs over which the KL weight rises from 0 to beta")


class MMVAEOptions(SharedLatentOptions):
    """``mmvae`` (Shi et al. 2019): mixture of experts, DReG importance-weighted objective."""

    K: PositiveInt = Field(10, description="importance samples per item")
    prior: Literal["laplace", "normal"] = Field(
        "laplace", description="family of the prior and posteriors (laplace: MMVAE's softmax-scaled Laplace)"
    )


class MoPoEOptions(SharedLatentOptions):
    """``mopoe`` (Sutter et al. 2021): mixture of the products of experts of every subset."""


class MVTCAEOptions(SharedLatentOptions):
    """``mvtcae`` (Hwang et al. 2021): total-correlation objective on the product of experts."""

    alpha: float = Field(5 / 6, ge=0, le=1, description="weight of the conditional (cross-modal) KL terms")


class NexusOptions(BaselineOptions):
    """``nexus`` (Vasco et al. 2022): a VAE per modality (bottom latents z_m), and a joint latent
    inferred from the mean of per-modality messages, trained with forced perceptual dropout."""

    joint_latent_dim: PositiveInt = Field(20, description="size of the joint (top) latent")
    modality_latent_dims: dict[str, PositiveInt] = Field(
        default_factory=dict,
        description="size of each modality's bottom latent z_m; a modality left out gets its recipe "
        "`latent_dim` (the latent size MLD's autoencoder has)",
    )
    beta_modalities: float = Field(1.0, ge=0, description="weight of the bottom KL divergences")
    beta_joint: float = Field(5.0, ge=0, description="weight of the joint KL divergence")
    msg_dim: PositiveInt = Field(512, description="size of each modality's message")
    top_hidden: PositiveInt = Field(512, description="width of the joint encoder and of the top decoders")
    dropout_rate: float = Field(0.2, ge=0, lt=1, description="probability of dropping a random subset of "
                                                            "messages per training item (forced perceptual dropout)")
    warmup: int = Field(20, ge=0, description="epochs over which the KL weights rise to their values (0: none)")


#: Family name (a recipe's ``model.family``) -> its options model.
FAMILY_OPTIONS: dict[str, type[BaselineOptions]] = {
    "mvae": MVAEOptions,
    "mmvae": MMVAEOptions,
    "mopoe": MoPoEOptions,
    "nexus": NexusOptions,
    "mvtcae": MVTCAEOptions,
}
