"""The built-in dataset `tensors` beyond the shared contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from mmlatent.plugins import get_registry


@pytest.fixture
def spec():
    return get_registry().dataset("tensors")


def write_npz(path, n=20, **extra):
    arrays = {"a": np.arange(n * 3, dtype=np.float32).reshape(n, 3), "b": np.arange(n) * 10, "label": np.arange(n) % 4}
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_fields_labels_and_items(spec, tmp_path):
    options = spec.validate_options({"path": str(write_npz(tmp_path / "d.npz"))})
    assert list(spec.fields(options)) == ["a", "b"] and spec.has_labels(options) is True
    train = spec.build(options, "train")
    item = train[0]
    row = int(train.indices[0])
    assert set(item) == {"a", "b", "label"}
    assert torch.equal(item["a"], torch.arange(row * 3, row * 3 + 3, dtype=torch.float32))
    assert int(item["b"]) == row * 10 and item["label"] == row % 4 and type(item["label"]) is int
    with pytest.raises(IndexError):
        train[len(train)]


def test_random_split_is_fixed_by_the_seed_and_partitions_the_data(spec, tmp_path):
    path = str(write_npz(tmp_path / "d.npz", n=40))

    def split_rows(**opts):
        options = spec.validate_options({"path": path, **opts})
        return {s: spec.build(options, s).indices.tolist() for s in options.splits()}

    a = split_rows(test_fraction=0.25, val_fraction=0.1, seed=3)
    assert split_rows(test_fraction=0.25, val_fraction=0.1, seed=3) == a
    assert split_rows(test_fraction=0.25, val_fraction=0.1, seed=4)["test"] != a["test"]
    assert (len(a["train"]), len(a["test"]), len(a["val"])) == (26, 10, 4)
    assert sorted(a["train"] + a["test"] + a["val"]) == list(range(40))
    assert set(split_rows()) == {"train", "test"}
    options = spec.validate_options({"path": path})
    with pytest.raises(ValueError, match="no 'val' split .*set val_fraction > 0"):
        spec.build(options, "val")


def test_split_files_and_optional_val(spec, tmp_path):
    for split, n in (("train", 5), ("test", 2), ("val", 3)):
        save_file({"x": torch.full((n, 2), float(n)), "label": torch.zeros(n, dtype=torch.int64)},
                  str(tmp_path / f"{split}.safetensors"))
    options = spec.validate_options({k: str(tmp_path / f"{k.split('_')[0]}.safetensors")
                                     for k in ("train_path", "test_path", "val_path")})
    assert [len(spec.build(options, s)) for s in ("train", "test", "val")] == [5, 2, 3]
    assert spec.build(options, "val")[0]["x"].tolist() == [3.0, 3.0]


def test_unlabelled_files_give_items_without_label(spec, tmp_path):
    path = tmp_path / "d.safetensors"
    save_file({"x": torch.randn(6, 2)}, str(path))
    options = spec.validate_options({"path": str(path), "test_fraction": 0.5})
    assert spec.has_labels(options) is False
    assert set(spec.build(options, "test")[0]) == {"x"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "set path .* or train_path and test_path"),
        ({"path": "a.npz", "train_path": "b.npz"}, "either path or train_path/test_path"),
        ({"train_path": "a.npz"}, "train_path and test_path go together"),
        ({"path": "a.h5"}, r"expected a .safetensors or .npz file"),
        ({"path": "a.npz", "test_fraction": 0.6, "val_fraction": 0.4}, "must be below 1"),
        ({"path": "a.npz", "test_fraction": 0}, "test_fraction"),
        ({"path": "a.npz", "fraction": 0.1}, "fraction"),
    ],
)
def test_bad_options_are_rejected(spec, options, message):
    with pytest.raises(ValidationError, match=message):
        spec.validate_options(options)


def test_missing_file_is_named(spec, tmp_path):
    options = spec.validate_options({"path": str(tmp_path / "nope.npz")})
    for call in (lambda: spec.fields(options), lambda: spec.has_labels(options), lambda: spec.build(options, "train")):
        with pytest.raises(FileNotFoundError, match="no such file: .*nope.npz"):
            call()


def test_mismatched_first_axis_is_named(spec, tmp_path):
    path = write_npz(tmp_path / "d.npz", n=10, b=np.zeros(9))
    options = spec.validate_options({"path": str(path)})
    with pytest.raises(ValueError, match=r"disagree on the number of samples .*a: 10, b: 9, label: 10"):
        spec.build(options, "train")


def test_split_file_missing_a_key_is_named(spec, tmp_path):
    save_file({"x": torch.randn(4, 2), "y": torch.randn(4)}, str(tmp_path / "train.safetensors"))
    save_file({"x": torch.randn(2, 2)}, str(tmp_path / "test.safetensors"))
    options = spec.validate_options({"train_path": str(tmp_path / "train.safetensors"),
                                     "test_path": str(tmp_path / "test.safetensors")})
    assert len(spec.build(options, "train")) == 4
    with pytest.raises(ValueError, match="different keys \\(missing y\\)"):
        spec.build(options, "test")


def test_bad_contents_are_clear_errors(spec, tmp_path):
    bad_label = write_npz(tmp_path / "l.npz", label=np.linspace(0, 1, 20))
    with pytest.raises(ValueError, match="'label' must be integers of shape \\(N,\\)"):
        spec.build(spec.validate_options({"path": str(bad_label)}), "train")
    only_label = tmp_path / "o.npz"
    np.savez(only_label, label=np.arange(5))
    with pytest.raises(ValueError, match="holds no field array"):
        spec.build(spec.validate_options({"path": str(only_label)}), "train")
    corrupt = tmp_path / "c.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read .*c.safetensors"):
        spec.fields(spec.validate_options({"path": str(corrupt)}))
    tiny = write_npz(tmp_path / "t.npz", n=2)
    with pytest.raises(ValueError, match="2 samples are too few"):
        spec.build(spec.validate_options({"path": str(tiny), "test_fraction": 0.5, "val_fraction": 0.3}), "train")
