"""The built-in dataset `paired`: registered datasets joined by label (and DatasetSpec.splits_for).

Most checks use `toy`, a dataset registered for the test whose items name themselves
(``{"x": "train:7", "label": 1}``), so that every joined item can be traced back to its sources;
the rest use the built-in `tensors` dataset and whole recipes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

import numpy as np
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch.utils.data import Dataset

from mmlatent.build import build_dataset, dataset_splits
from mmlatent.builtin.paired_join import join_by_label, read_labels
from mmlatent.cli import main as cli_main
from mmlatent.modality import DatasetSpec
from mmlatent.plugins import get_registry
from mmlatent.recipe import parse_recipe
from mmlatent.testing import DatasetContract


# ------------------------------------------------------------------------- the `toy` dataset
class ToyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field("x", description="the one field's name")
    sizes: dict[str, int] = Field({"train": 24, "test": 12}, description="items per split (the keys are the splits)")
    classes: int = Field(3, ge=1, description="item i has label first_class + i % classes")
    first_class: int = 0
    labelled: bool = True
    labels_attribute: bool = Field(True, description="expose `labels` (else paired reads the items)")
    numbers: bool = Field(False, description="values are float32 vectors [i] instead of strings")


class ToyDataset(Dataset):
    """Item i of split s: ``{field: "s:i", "label": first_class + i % classes}``; counts its reads."""

    def __init__(self, options: ToyOptions, split: str) -> None:
        self.options, self.split = options, split
        self.item_labels = [options.first_class + i % options.classes for i in range(options.sizes[split])]
        if options.labels_attribute:
            self.labels = np.array(self.item_labels)
        self.reads = 0

    def __len__(self) -> int:
        return len(self.item_labels)

    def __getitem__(self, i: int) -> dict:
        self.reads += 1
        item = {self.options.field: np.array([i], np.float32) if self.options.numbers else f"{self.split}:{i}"}
        if self.options.labelled:
            item["label"] = self.item_labels[i]
        return item


TOY = DatasetSpec(name="toy", build=ToyDataset, fields=lambda options: [options.field], options=ToyOptions,
                  has_labels=lambda options: options.labelled, splits_for=lambda options: tuple(options.sizes))


@pytest.fixture
def paired(monkeypatch):
    """The `paired` spec, with `toy` registered next to it for this test."""
    registry = get_registry()
    monkeypatch.setitem(registry.datasets, "toy", TOY)
    return registry.dataset("paired")


def toy(**options) -> dict:
    return {"dataset": "toy", "options": options}


def two_toys(k=1, k_test=1, seed=0, first=None, second=None) -> dict:
    return {"sources": [toy(**(first or {})), toy(field="y", **(second or {"sizes": {"train": 15, "test": 9}}))],
            "k": k, "k_test": k_test, "seed": seed}


def items(dataset) -> list[dict]:
    return [dataset[i] for i in range(len(dataset))]


def index_of(value: str) -> int:
    return int(value.split(":")[1])


# --------------------------------------------------------------------------------- pairing
def test_joined_items_share_the_first_sources_label(paired):
    options = paired.validate_options(two_toys(k=2))
    for split in ("train", "test"):
        for item in items(paired.build(options, split)):
            assert set(item) == {"x", "y", "label"} and type(item["label"]) is int
            assert item["label"] == index_of(item["x"]) % 3 == index_of(item["y"]) % 3
            assert item["x"].startswith(split) and item["y"].startswith(split)


def test_each_first_item_appears_k_times_in_train_and_k_test_elsewhere(paired):
    options = paired.validate_options(two_toys(k=3, k_test=2))
    train, test = paired.build(options, "train"), paired.build(options, "test")
    assert Counter(item["x"] for item in items(train)) == {f"train:{i}": 3 for i in range(24)}
    assert Counter(item["x"] for item in items(test)) == {f"test:{i}": 2 for i in range(12)}
    assert np.array_equal(train.labels, [item["label"] for item in items(train)]) and train.labels.dtype == np.int64


def test_the_other_source_is_used_evenly(paired):
    options = paired.validate_options(two_toys(k=3))  # class c: 24 requests for 5 items of y
    uses = Counter(item["y"] for item in items(paired.build(options, "train")))
    assert set(uses) == {f"train:{i}" for i in range(15)}
    for label in range(3):
        counts = [n for value, n in uses.items() if index_of(value) % 3 == label]
        assert max(counts) - min(counts) <= 1 and sum(counts) == 24


def test_the_pairing_is_fixed_by_the_seed(paired):
    def joined(seed):
        return [(item["x"], item["y"]) for item in items(paired.build(paired.validate_options(two_toys(2, 1, seed)),
                                                                      "train"))]

    assert joined(0) == joined(0)
    assert joined(1) != joined(0) and sorted(x for x, _ in joined(1)) == sorted(x for x, _ in joined(0))


def test_join_by_label_directly():
    rng = np.random.default_rng(0)
    rows = join_by_label([np.array([0, 1, 1, 2]), np.array([1, 0, 0]), np.array([0, 1])], 2, rng)
    assert rows.shape == (6, 3) and rows.dtype == np.int64
    assert sorted(rows[:, 0].tolist()) == [0, 0, 1, 1, 2, 2]  # item 3 (class 2) has no partner: left out
    assert all(row[0] in (1, 2) and row[1] == 0 and row[2] == 1 or row[0] == 0 and row[1] in (1, 2) and row[2] == 0
               for row in rows.tolist())
    assert join_by_label([np.zeros(0, np.int64), np.array([1])], 3, rng).shape == (0, 2)


def test_splits_stay_disjoint_when_the_sources_splits_are(paired, tmp_path):
    for name, n in (("a", 40), ("b", 30)):
        np.savez(tmp_path / f"{name}.npz", **{name: np.arange(n, dtype=np.float32)[:, None] + 1000 * (name == "b")},
                 label=np.arange(n) % 4)
    options = paired.validate_options({"sources": [{"dataset": "tensors", "options": {"path": str(tmp_path / f)}}
                                                   for f in ("a.npz", "b.npz")], "k": 2})
    values = {split: {(field, float(item[field])) for item in items(paired.build(options, split)) for field in "ab"}
              for split in ("train", "test")}
    assert values["train"] and values["test"] and not values["train"] & values["test"]


# ------------------------------------------------------------------------------------ fields
def test_fields_are_selected_and_renamed(paired, tmp_path):
    np.savez(tmp_path / "ab.npz", a=np.zeros((10, 2)), b=np.arange(10.0), label=np.arange(10) % 2)
    tensors = {"dataset": "tensors", "options": {"path": str(tmp_path / "ab.npz")}}
    options = paired.validate_options({"sources": [{**tensors, "fields": {"b": "number"}}, toy(classes=2)]})
    assert list(paired.fields(options)) == ["number", "x"]
    item = paired.build(options, "train")[0]
    assert set(item) == {"number", "x", "label"} and int(item["number"]) % 2 == item["label"]
    both = paired.validate_options({"sources": [tensors, {**toy(classes=2), "fields": {"x": "y"}}]})
    assert list(paired.fields(both)) == ["a", "b", "y"]


@pytest.mark.parametrize("sources, message", [
    ([toy(), toy()], "output field 'x' comes from both source 0 \\(dataset 'toy', field 'x'\\) and source 1"),
    ([toy(), {**toy(field="y"), "fields": {"y": "x"}}], "output field 'x' comes from both"),
    ([toy(), toy(field="y"), toy(field="x")], "output field 'x' .* and source 2 \\(dataset 'toy', field 'x'\\)"),
    ([{**toy(), "fields": {"x": "z"}}, {**toy(field="y"), "fields": {"y": "z"}}], "output field 'z' comes from"),
])
def test_clashing_output_fields_are_named(paired, sources, message):
    with pytest.raises(ValidationError, match=message):
        paired.validate_options({"sources": sources})


@pytest.mark.parametrize("fields, message", [
    ({}, "an empty mapping keeps no field"),
    ({"x": "label"}, "'label' is not a field"),
    ({"nope": "z"}, "source 0 \\(dataset 'toy'\\) has no field 'nope' \\(fields: x\\)"),
])
def test_bad_field_mappings_are_rejected(paired, fields, message):
    with pytest.raises(ValidationError, match=message):
        paired.validate_options({"sources": [{**toy(), "fields": fields}, toy(field="y")]})


# ---------------------------------------------------------------------------- source errors
def test_unknown_source_dataset_lists_the_known_ones(paired):
    with pytest.raises(ValidationError) as error:
        paired.validate_options({"sources": [toy(), {"dataset": "imagenet"}]})
    assert error.value.errors()[0]["loc"] == ("sources", 1, "dataset")
    assert "no installed plugin provides dataset 'imagenet' (installed: " in str(error.value)
    assert "tensors" in str(error.value) and "toy" in str(error.value)


def test_bad_source_options_name_the_source_and_its_dataset(paired):
    with pytest.raises(ValidationError) as error:
        paired.validate_options({"sources": [toy(), toy(field="y", classes=0, colour=1)]})
    assert error.value.errors()[0]["loc"] == ("sources", 1, "options")
    text = str(error.value)
    assert "dataset 'toy': classes: Input should be greater than or equal to 1 (got 0)" in text
    assert "colour: Extra inputs are not permitted" in text


def test_source_options_are_stored_with_their_defaults(paired):
    options = paired.validate_options(two_toys())
    assert options.sources[0].options == ToyOptions().model_dump(mode="json")
    assert paired.validate_options(options.model_dump(mode="json")) == options


def test_unlabelled_sources_are_rejected(paired):
    with pytest.raises(ValidationError, match="source 1 \\(dataset 'toy'\\) has no labels: paired joins items by"):
        paired.validate_options({"sources": [toy(), toy(field="y", labelled=False, labels_attribute=False)]})
    get_registry().datasets["toy"] = dataclasses.replace(TOY, has_labels=lambda options: True)  # says labelled
    options = paired.validate_options({"sources": [toy(), toy(field="y", labelled=False, labels_attribute=False)]})
    with pytest.raises(ValueError, match="source 1 \\(dataset 'toy'\\), split 'train': item 0 has no int 'label'"):
        paired.build(options, "train")


def test_labels_come_from_the_labels_attribute_without_reading_items(paired):
    options = paired.validate_options(two_toys(second={"labels_attribute": False, "sizes": {"train": 9, "test": 3}}))
    train = paired.build(options, "train")
    first, second = train.sources
    assert first.reads == 0 and second.reads == 9  # read once: only the source without `labels`
    with pytest.raises(ValueError, match="its `labels` must be 3 integers, got float64"):
        read_labels(type("Bad", (), {"labels": np.zeros(3), "__len__": lambda self: 3})(), "bad")


def test_classes_missing_from_another_source_leave_items_out(paired, caplog):
    options = paired.validate_options(two_toys(k=2, first={"classes": 4}))  # y has classes 0..2 only
    with caplog.at_level(logging.WARNING, logger="mmlatent.builtin.paired"):
        train = paired.build(options, "train")
    assert Counter(item["x"] for item in items(train)) == {f"train:{i}": 2 for i in range(24) if i % 4 != 3}
    assert "6 of 24 items of source 0 (dataset 'toy') are left out" in caplog.text
    disjoint = paired.validate_options(two_toys(second={"first_class": 10, "sizes": {"train": 6, "test": 6}}))
    with pytest.raises(ValueError, match="split 'train': no class of source 0 \\(dataset 'toy'\\) is in every"):
        paired.build(disjoint, "train")


# ------------------------------------------------------------------------------------ splits
def test_the_splits_are_those_every_source_has(paired):
    with_val = {"sizes": {"train": 12, "val": 6, "test": 6}}
    options = paired.validate_options(two_toys(first=with_val))
    assert paired.available_splits(options) == ("train", "test")
    with pytest.raises(ValueError, match="no 'val' split \\(the splits every source has: train, test\\)"):
        paired.build(options, "val")
    both = paired.validate_options(two_toys(first=with_val, second=with_val))
    assert paired.available_splits(both) == ("train", "val", "test")
    assert {item["x"] for item in items(paired.build(both, "val"))} == {f"val:{i}" for i in range(6)}
    empty_val = paired.validate_options(two_toys(first={"sizes": {"train": 12, "val": 0, "test": 6}},
                                                 second=with_val))
    assert len(paired.build(empty_val, "val")) == 0  # an empty split of the first source: an empty split
    with pytest.raises(ValidationError, match="the sources do not all have a 'test' split \\(source 0 \\('toy'\\): "
                                              "train, test; source 1 \\('toy'\\): train, val\\)"):
        paired.validate_options(two_toys(second={"sizes": {"train": 6, "val": 6}}))


def test_datasets_with_fixed_splits_are_unchanged():
    spec = DatasetSpec(name="fixed", build=lambda options, split: [], fields=lambda options: ["x"],
                       splits=("train", "val", "test"))
    assert spec.splits_for is None and spec.available_splits(None) == ("train", "val", "test")
    assert get_registry().dataset("tensors").available_splits({"path": "never-read.npz"}) == ("train", "test")


def test_recipes_load_the_splits_their_options_give(paired):
    def recipe(first_sizes):
        return parse_recipe({"name": "p", "data": {"dataset": "paired", "options": two_toys(first=first_sizes)},
                             "modalities": {"x": {"kind": "vector", "latent_dim": 2},
                                            "y": {"kind": "vector", "latent_dim": 2}}})

    without_val = recipe({"sizes": {"train": 12, "val": 6, "test": 6}})
    assert dataset_splits(without_val) == ("train", "test")
    with pytest.raises(ValueError, match="dataset 'paired' has no split 'val' \\(splits: train, test\\)"):
        build_dataset(without_val, "val")
    assert len(build_dataset(without_val, "train")) == 12


def test_training_encodes_every_split_the_sources_share(paired, tmp_path):
    sizes = {"sizes": {"train": 24, "val": 6, "test": 6}, "numbers": True}
    recipe = {"name": "paired_run", "data": {"dataset": "paired", "options": two_toys(2, 1, 0, sizes, sizes),
                                             "batch_size": 16},
              "modalities": {name: {"kind": "vector", "latent_dim": 1, "options": {"arch": "identity", "size": 1}}
                             for name in ("x", "y")},
              "diffusion": {"score_net": {"width": 16, "blocks": 1, "time_embed": 8},
                            "train": {"steps": 5, "batch_size": 16}},
              "sampling": {"steps": 2}, "evaluation": {"enabled": False}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert cli_main(["train", str(path), "--output", str(tmp_path / "run"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "run" / "latents").iterdir()) == [
        "test.safetensors", "train.safetensors", "val.safetensors"]


# ------------------------------------------------------------------------------ contract
class TestPairedContract(DatasetContract):
    name = "paired"

    def make_options(self, tmp_path):
        rng = np.random.default_rng(0)
        np.savez(tmp_path / "a.npz", a=rng.normal(size=(30, 3)), label=np.arange(30) % 3)
        np.savez(tmp_path / "b.npz", b=rng.normal(size=(20, 2)), c=np.arange(20), label=np.arange(20) % 3)
        return {"sources": [{"dataset": "tensors", "options": {"path": str(tmp_path / "a.npz")}},
                            {"dataset": "tensors", "options": {"path": str(tmp_path / "b.npz")},
                             "fields": {"b": "b"}}],
                "k": 2}


def test_paired_is_listed_as_part_of_mmlatent(capsys):
    assert cli_main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in __import__("json").loads(capsys.readouterr().out)}
    assert "paired" in rows["mmlatent"]["datasets"]


# ------------------------------------------------------------------------ mmlatent validate
def write_recipe(tmp_path, sources, modalities=("number", "b")) -> str:
    np.savez(tmp_path / "a.npz", a=np.arange(40, dtype=np.float32)[:, None], label=np.arange(40) % 4)
    np.savez(tmp_path / "b.npz", b=np.ones((30, 2), np.float32), label=np.arange(30) % 4)
    recipe = {"name": "paired_check",
              "data": {"dataset": "paired", "options": {"sources": sources, "k": 2}},
              "modalities": {name: {"kind": "vector", "latent_dim": 2} for name in modalities}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def sources_of(tmp_path, **second):
    return [{"dataset": "tensors", "options": {"path": str(tmp_path / "a.npz")}, "fields": {"a": "number"}},
            {"dataset": "tensors", "options": {"path": str(tmp_path / "b.npz")}, **second}]


def test_mmlatent_validate_accepts_a_paired_recipe(tmp_path, capsys):
    path = write_recipe(tmp_path, sources_of(tmp_path))
    assert cli_main(["validate", path]) == 0, capsys.readouterr().err
    assert "OK: paired_check: dataset paired" in capsys.readouterr().out


@pytest.mark.parametrize("second, modalities, message", [
    ({"dataset": "imagenet"}, ("number", "b"),
     "data.options.sources.1.dataset: no installed plugin provides dataset 'imagenet' (installed: "),
    ({"options": {"path": "b.h5"}}, ("number", "b"),
     "data.options.sources.1.options: dataset 'tensors': b.h5: expected a .safetensors or .npz file"),
    ({"options": {"path": "b.npz", "test_fraction": 2}}, ("number", "b"),
     "data.options.sources.1.options: dataset 'tensors': test_fraction: Input should be less than 1 (got 2)"),
    ({"fields": {"b": "number"}}, ("number", "b"),
     "data.options: output field 'number' comes from both source 0 (dataset 'tensors', field 'a') and source 1"),
    ({}, ("number", "c"), "modalities.c: dataset 'paired' has no field 'c' (fields: number, b)"),
])
def test_mmlatent_validate_names_errors_in_a_source(tmp_path, capsys, second, modalities, message):
    path = write_recipe(tmp_path, sources_of(tmp_path, **second), modalities)
    assert cli_main(["validate", path]) == 2
    assert message in capsys.readouterr().err
