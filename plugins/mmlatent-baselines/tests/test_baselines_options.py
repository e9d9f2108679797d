"""Options per family, registration, and the import budget of listing plugins."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mmlatent.plugins import get_registry
from mmlatent.recipe import RecipeError, parse_recipe
from mmlatent_baselines.options import FAMILY_OPTIONS, MMVAEOptions, MVAEOptions, MVTCAEOptions, NexusOptions
from mmlatent_baselines.testing import tiny_recipe
from pydantic import ValidationError


def test_defaults():
    mvae = MVAEOptions()
    assert (mvae.latent_dim, mvae.beta, mvae.likelihood_scale, mvae.epochs, mvae.batch_size, mvae.lr) == (
        20, 5.0, 0.75, 150, 256, 1e-3)
    assert MMVAEOptions().K == 10 and MMVAEOptions().prior == "laplace"
    assert MVTCAEOptions().alpha == pytest.approx(5 / 6)
    nexus = NexusOptions()
    assert (nexus.joint_latent_dim, nexus.beta_modalities, nexus.beta_joint) == (20, 1.0, 5.0)
    assert nexus.modality_latent_dims == {} and not hasattr(nexus, "latent_dim")


@pytest.mark.parametrize("family, options", [
    ("mvae", {"K": 10}),               # another family's option
    ("mopoe", {"warmup": 5}),
    ("nexus", {"latent_dim": 20}),     # Nexus names its latents joint_latent_dim / modality_latent_dims
    ("mvtcae", {"alpah": 0.5}),        # misspelled
    ("mmvae", {"prior": "cauchy"}),
    ("mvae", {"likelihood": {"gray": "poisson"}}),
])
def test_unknown_or_invalid_options_are_rejected(family, options):
    with pytest.raises(ValidationError):
        FAMILY_OPTIONS[family].model_validate(options)


def test_families_are_registered():
    registry = get_registry()
    for family, options in FAMILY_OPTIONS.items():
        spec = registry.model(family)
        assert spec.options is options and spec.options.model_config["extra"] == "forbid"
        assert registry.provider_of_model(family).name == "mmlatent-baselines"


def test_recipe_errors_name_the_option():
    with pytest.raises(RecipeError) as error:
        parse_recipe(tiny_recipe("mopoe", K=3))
    assert "model.options.K" in error.value.render()
    recipe = parse_recipe(tiny_recipe("mvtcae"))
    assert recipe.model.options["alpha"] == pytest.approx(5 / 6)  # resolved with the family's defaults


def test_listing_plugins_imports_neither_multivae_nor_torchvision():
    code = ("import sys; from mmlatent.plugins import get_registry; r = get_registry(); "
            "assert 'nexus' in r.models, r.models; "
            "print(sorted(m for m in ('multivae', 'pythae', 'torchvision', 'mmlatent_baselines.train') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
