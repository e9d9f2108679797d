"""Coherence classifiers: feature convention, training, storage in the run directory, reuse."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mmlatent.evaluation.classifiers import (
    ClassifierSettings,
    classifier_features,
    load_or_train_classifiers,
)
from mmlatent.evaluation.data import EvaluationError, load_split


def test_features_are_the_input_of_the_last_linear():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))
    x = torch.randn(5, 4)
    expected = model[3](model[2](model[1](model[0](x))))
    assert torch.allclose(classifier_features(model, x, num_classes=3), expected)


def test_a_features_method_wins():
    class WithFeatures(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 7)
            self.head = nn.Linear(7, 3)
            self.extra = nn.Linear(3, 3)  # registered last: would be picked without features()

        def features(self, x):
            return torch.relu(self.body(x))

        def forward(self, x):
            return self.extra(self.head(self.features(x)))

    model = WithFeatures()
    x = torch.randn(2, 4)
    assert torch.equal(classifier_features(model, x, num_classes=3), torch.relu(model.body(x)))


def test_a_features_submodule_is_not_taken_for_the_method():
    """torchvision-style ``self.features = nn.Sequential(...)`` is a module, not the convention."""

    class ConvLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
            self.classifier = nn.Linear(5, 3)

        def forward(self, x):
            return self.classifier(self.features(x))

    model = ConvLike()
    out = classifier_features(model, torch.randn(2, 4), num_classes=3)
    assert out.shape == (2, 5)


def test_an_ambiguous_last_linear_is_refused():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5), nn.Softmax(dim=1))  # last Linear has 5 outputs
    with pytest.raises(EvaluationError, match="features"):
        classifier_features(model, torch.randn(2, 4), num_classes=3)
    with pytest.raises(EvaluationError, match="no nn.Linear"):
        classifier_features(nn.Sequential(nn.Flatten()), torch.randn(2, 4))


def test_train_store_and_reuse(tmp_path, fake_pipeline):
    pipe = fake_pipeline()
    test = load_split(pipe, "test")
    settings = ClassifierSettings(epochs=4, lr=1e-2, batch_size=64)
    calls = []

    def train_split():
        calls.append(1)
        return load_split(pipe, "train")

    trained = load_or_train_classifiers(pipe, tmp_path, test, train_split, settings, progress=False)
    assert set(trained) == {"a", "b"} and calls == [1]
    for name, classifier in trained.items():
        assert classifier.trained_now and classifier.num_classes == pipe.NUM_CLASSES
        assert classifier.accuracy > 0.95, name
        assert (tmp_path / "classifiers" / f"{name}.safetensors").is_file()
        info = json.loads((tmp_path / "classifiers" / f"{name}.json").read_text())
        assert info["num_classes"] == pipe.NUM_CLASSES and info["accuracy"] == pytest.approx(classifier.accuracy)
        assert info["train_items"] == 400 and info["settings"]["epochs"] == 4

    def must_not_load():
        raise AssertionError("the training split must not be read when every classifier is stored")

    reloaded = load_or_train_classifiers(pipe, tmp_path, test, must_not_load, settings, progress=False)
    for name in trained:
        assert not reloaded[name].trained_now
        assert reloaded[name].accuracy == pytest.approx(trained[name].accuracy)
        assert torch.equal(reloaded[name].predict(test[name]), trained[name].predict(test[name]))
        assert torch.allclose(reloaded[name].features(test[name]), trained[name].features(test[name]))
        assert reloaded[name].features(test[name]).shape == (200, 16)


def test_corrupt_classifier_is_trained_again_and_retrain_forces(tmp_path, fake_pipeline):
    pipe = fake_pipeline()
    test = load_split(pipe, "test")
    settings = ClassifierSettings(epochs=1)
    load_or_train_classifiers(pipe, tmp_path, test, lambda: load_split(pipe, "train"), settings, progress=False)
    (tmp_path / "classifiers" / "a.safetensors").write_bytes(b"not a safetensors file")
    again = load_or_train_classifiers(pipe, tmp_path, test, lambda: load_split(pipe, "train"), settings, progress=False)
    assert again["a"].trained_now and not again["b"].trained_now
    forced = load_or_train_classifiers(
        pipe, tmp_path, test, lambda: load_split(pipe, "train"), ClassifierSettings(epochs=1, retrain=True),
        progress=False,
    )
    assert forced["a"].trained_now and forced["b"].trained_now


def test_modalities_without_classifier_are_skipped(tmp_path, fake_pipeline):
    pipe = fake_pipeline(no_classifier=("b",))
    test = load_split(pipe, "test")
    trained = load_or_train_classifiers(pipe, None, test, load_split(pipe, "train"), ClassifierSettings(epochs=1),
                                        progress=False)
    assert set(trained) == {"a"}


def test_splits_need_labels(fake_pipeline):
    pipe = fake_pipeline()
    for items in pipe.splits.values():
        for item in items:
            del item["label"]
    with pytest.raises(EvaluationError, match="no labels"):
        load_split(pipe, "test")
    with pytest.raises(EvaluationError, match="no 'val' split"):
        load_split(pipe, "val")


def test_limited_split_is_a_fixed_subset(fake_pipeline):
    pipe = fake_pipeline()
    first = load_split(pipe, "test", limit=50)
    second = load_split(pipe, "test", limit=50)
    assert first["a"].shape == (50, 4) and torch.equal(first["a"], second["a"])
    full = load_split(pipe, "test")
    assert not torch.equal(first["a"], full["a"][:50])  # drawn, not the first 50


def _with_autoencoders(fake_pipeline, offset: float = 5.0):
    """A fake pipeline whose 'autoencoders' reconstruct x as x + offset (a decoder's systematic error)."""

    class WithAutoencoders(fake_pipeline):
        def encode(self, batch):
            self.encoded = getattr(self, "encoded", 0) + sum(x.shape[0] for x in batch.values())
            return {name: x.clone() for name, x in batch.items()}

        def decode(self, latents):
            return {name: z + offset for name, z in latents.items()}

    return WithAutoencoders()


def test_a_classifier_trained_on_reconstructions_too_reads_both(tmp_path, fake_pipeline):
    pipe = _with_autoencoders(fake_pipeline)
    test = load_split(pipe, "test")
    settings = ClassifierSettings(epochs=6, lr=1e-2, batch_size=64, with_reconstructions=("a",))
    trained = load_or_train_classifiers(pipe, tmp_path, test, lambda: load_split(pipe, "train"), settings,
                                        progress=False)
    assert pipe.encoded == 400  # only a's 400 training items were reconstructed
    info = {name: json.loads((tmp_path / "classifiers" / f"{name}.json").read_text()) for name in ("a", "b")}
    assert info["a"]["with_reconstructions"] and info["a"]["train_items"] == 800
    assert not info["b"]["with_reconstructions"] and info["b"]["train_items"] == 400
    shifted = test["a"] + 5.0
    read = float((trained["a"].predict(shifted) == test["label"]).float().mean())
    assert trained["a"].accuracy > 0.95 and read > 0.95
    # stored with reconstructions, asked without: trained again (and the other way round for b)
    again = load_or_train_classifiers(pipe, tmp_path, test, lambda: load_split(pipe, "train"),
                                      ClassifierSettings(epochs=1, with_reconstructions=("b",)), progress=False)
    assert again["a"].trained_now and again["b"].trained_now
    assert json.loads((tmp_path / "classifiers" / "b.json").read_text())["with_reconstructions"]


def test_reconstructions_need_known_modalities_and_autoencoders(fake_pipeline):
    pipe = _with_autoencoders(fake_pipeline)
    test, train = load_split(pipe, "test"), load_split(pipe, "train")
    with pytest.raises(EvaluationError, match=r"unknown modalities \['c'\]"):
        load_or_train_classifiers(pipe, None, test, train, ClassifierSettings(epochs=1, with_reconstructions=("c",)),
                                  progress=False)
    plain = fake_pipeline()
    with pytest.raises(EvaluationError, match="needs a model with autoencoders"):
        load_or_train_classifiers(plain, None, load_split(plain, "test"), load_split(plain, "train"),
                                  ClassifierSettings(epochs=1, with_reconstructions=("a",)), progress=False)


def test_settings_from_a_recipe_section_take_a_list():
    settings = ClassifierSettings.from_mapping({"epochs": 2, "with_reconstructions": ["audio"]})
    assert settings.with_reconstructions == ("audio",) and settings.epochs == 2


def test_the_recipes_choice_holds_when_the_caller_sets_other_settings(tmp_path, fake_pipeline):
    from mmlatent.evaluation.command import evaluate_run

    pipe = _with_autoencoders(fake_pipeline)
    pipe.recipe.evaluation.classifier_reconstructions = ["a"]
    evaluate_run(tmp_path, sampler="ddim", steps=4, limit=20, pipeline=pipe, progress=False, write=False,
                 classifier_settings={"epochs": 1})
    stored = {name: json.loads((tmp_path / "classifiers" / f"{name}.json").read_text()) for name in ("a", "b")}
    assert stored["a"]["with_reconstructions"] and stored["a"]["train_items"] == 800
    assert not stored["b"]["with_reconstructions"]
    # an explicit choice of the caller wins over the recipe's
    evaluate_run(tmp_path, sampler="ddim", steps=4, limit=20, pipeline=pipe, progress=False, write=False,
                 classifier_settings={"epochs": 1, "with_reconstructions": []})
    assert not json.loads((tmp_path / "classifiers" / "a.json").read_text())["with_reconstructions"]
