"""A tiny recipe for tests of the VAE families (this plugin's, and anyone's quick checks).

::

    from mmlatent_baselines.testing import tiny_recipe
    raw = tiny_recipe("mopoe", steps=4)        # a raw recipe mapping; parse_recipe(raw) or dump it to YAML

Offline data (``digits_pair``: scikit-learn's digits, gray and colour 16x16 with captions) and
networks small enough for a few CPU training steps in well under a second: a gray MLP, a colour
convolutional autoencoder and a bag-of-words caption autoencoder (images and text both covered).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["SMALL_OPTIONS", "TINY_RECIPE", "tiny_recipe"]

#: The tiny recipe without a ``model`` section (so: MLD), evaluation off.
TINY_RECIPE: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "data": {"dataset": "digits_pair", "options": {"k": 1, "captions": True, "test_size": 40}, "batch_size": 16},
    "modalities": {
        "gray": {"kind": "image", "latent_dim": 4,
                 "options": {"channels": 1, "size": 16, "arch": "mlp", "hidden": [32]}},
        "color": {"kind": "image", "latent_dim": 6,
                  "options": {"channels": 3, "size": 16, "arch": "conv", "conv_channels": [8, 16]}},
        "caption": {"kind": "text", "latent_dim": 4,
                    "options": {"max_length": 8, "min_frequency": 1, "embed_dim": 8, "channels": 16, "depth": 2,
                                "encoder": "bow"}},
    },
    "evaluation": {"enabled": False},
}

#: Small ``model.options`` per family (a few training steps still need ``steps``).
SMALL_OPTIONS: dict[str, dict[str, Any]] = {
    "mvae": {"latent_dim": 5, "warmup": 2},
    "mmvae": {"latent_dim": 5, "K": 3},
    "mopoe": {"latent_dim": 5},
    "nexus": {"joint_latent_dim": 5, "msg_dim": 8, "top_hidden": 16, "warmup": 2},
    "mvtcae": {"latent_dim": 5},
}


def tiny_recipe(family: str | None = None, **options: Any) -> dict[str, Any]:
    """A fresh copy of :data:`TINY_RECIPE`; with ``family``, a ``model`` section with that family's
    :data:`SMALL_OPTIONS` updated by ``options``."""
    recipe = copy.deepcopy(TINY_RECIPE)
    if family is not None:
        recipe["model"] = {"family": family, "options": {**SMALL_OPTIONS[family], **options}}
    return recipe
