"""The core's own model family ``mld`` passes the model-family contract like a plugin's would, and
recipes without a ``model`` section resolve exactly as before model families existed."""

from __future__ import annotations

from gaussian_fixtures import gaussian_recipe, write_gaussian_data

from mmlatent.families import DEFAULT_FAMILY
from mmlatent.recipe import parse_recipe
from mmlatent.testing import ModelFamilyContract


class TestMLDFamily(ModelFamilyContract):
    family = "mld"

    def make_recipe(self, tmp_path):
        data = write_gaussian_data(tmp_path / "gauss.safetensors", n=120)
        return gaussian_recipe(data, **{"diffusion.score_net": {"width": 16, "blocks": 1, "time_embed": 8},
                                        "diffusion.train": {"steps": 20, "batch_size": 32},
                                        "sampling": {"sampler": "ddim", "steps": 3}})


def test_a_recipe_without_model_section_is_mld_and_resolves_as_before(tmp_path):
    data = write_gaussian_data(tmp_path / "gauss.safetensors", n=50)
    recipe = parse_recipe(gaussian_recipe(data))
    assert recipe.model.family == DEFAULT_FAMILY and recipe.model.options == {}
    assert "\nmodel:" not in recipe.to_yaml()  # the run's recipe.yaml is the same text as before
    explicit = parse_recipe({**gaussian_recipe(data), "model": {"family": "mld"}})
    assert explicit.to_yaml() == recipe.to_yaml()


def test_an_unknown_family_names_the_installed_ones(tmp_path):
    import pytest

    from mmlatent.recipe import RecipeError

    data = write_gaussian_data(tmp_path / "gauss.safetensors", n=50)
    with pytest.raises(RecipeError, match=r"model.family: no installed plugin provides model family 'nope' "
                                          r"\(installed: .*mld"):
        parse_recipe({**gaussian_recipe(data), "model": {"family": "nope"}})
