"""``evaluation.embeddings``: recipe checks, and the core's handling of kinds without an embedding network."""

from __future__ import annotations

import pytest
import yaml
from gaussian_fixtures import gaussian_recipe, write_gaussian_data

from mmlatent.evaluation.command import load_embeddings
from mmlatent.evaluation.data import EvaluationError
from mmlatent.plugins import get_registry
from mmlatent.recipe import RecipeError, parse_recipe


def test_recipe_names_must_be_modalities_and_empty_is_not_written(tmp_path):
    recipe = gaussian_recipe(write_gaussian_data(tmp_path / "g.safetensors", n=50))
    assert "embeddings" not in yaml.safe_load(parse_recipe(recipe).to_yaml())["evaluation"]
    recipe["evaluation"]["embeddings"] = {"nope": "w.safetensors"}
    with pytest.raises(RecipeError, match="evaluation.embeddings.nope: no modality 'nope'"):
        parse_recipe(recipe)
    recipe["evaluation"]["embeddings"] = {"a": "w.safetensors"}
    assert yaml.safe_load(parse_recipe(recipe).to_yaml())["evaluation"]["embeddings"] == {"a": "w.safetensors"}


def test_kind_without_embedding_network_is_an_evaluation_error(tmp_path):
    vector = get_registry().modality("vector").build("a", {"arch": "identity", "size": 2}, 2)
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(EvaluationError, match="has no embedding network"):
        load_embeddings({"a": vector}, {"a": weights})
    assert load_embeddings({"a": vector}, {"a": None}) == {}


def test_classifier_reconstructions_name_modalities_and_empty_is_not_written(tmp_path):
    recipe = gaussian_recipe(write_gaussian_data(tmp_path / "g.safetensors", n=50))
    assert "classifier_reconstructions" not in yaml.safe_load(parse_recipe(recipe).to_yaml())["evaluation"]
    recipe["evaluation"]["classifier_reconstructions"] = ["nope"]
    with pytest.raises(RecipeError, match="evaluation.classifier_reconstructions.nope: no modality 'nope'"):
        parse_recipe(recipe)
    recipe["evaluation"]["classifier_reconstructions"] = ["a"]
    assert yaml.safe_load(parse_recipe(recipe).to_yaml())["evaluation"]["classifier_reconstructions"] == ["a"]
    recipe["model"] = {"family": "mvae"}
    with pytest.raises(RecipeError, match="classifier_reconstructions: needs MLD's autoencoders; model family 'mvae'"):
        parse_recipe(recipe, check_plugins=False)
