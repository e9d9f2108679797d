"""A plugin's dataset whose values its modality cannot take: ``mmlatent train`` ends with one message
(exit 2, no traceback) naming the item, the field, the modality and its kind, the expected shape and
what was got; caught before anything is written when a sample of the split shows it, and readable
when it only shows inside a DataLoader worker process."""

from __future__ import annotations

import pytest
import torch
import yaml

import mmlatent.plugins as plugins
from mmlatent.cli import main as cli_main
from mmlatent.data import DatasetItemError, ModalityBatches, check_dataset_items, collate_items
from mmlatent.modality import Modality

WRONG_VALUES = """
import numpy as np


class WrongOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bad_index: int = 3
    bad_value: str = "short"  # "short": 3 floats instead of 4; "text": a string


def build(options, split):
    items = [{"x": np.full(4, i, np.float32), "y": np.full(2, i % 2, np.float32), "label": i % 2} for i in range(64)]
    if split == "train":
        items[options.bad_index]["x"] = {"short": np.zeros(3, np.float32), "text": "four"}[options.bad_value]
    return items


@mmlatent.hookimpl
def register_datasets(register):
    register(mmlatent.DatasetSpec(name="wrong_values", build=build, fields=lambda options: ["x", "y"],
                                  options=WrongOptions))
"""


@pytest.fixture
def wrong_values(make_plugin):
    """The plugin ``mmlatent-wrong-values`` installed (dataset ``wrong_values``), the registry reloaded."""
    make_plugin("mmlatent-wrong-values", modules={"mmlatent_wrong_values": WRONG_VALUES})
    plugins.get_registry(reload=True)


def recipe(tmp_path, bad_index: int, bad_value: str = "short", num_workers: int = 0):
    value = {
        "name": "wrong_values", "seed": 0,
        "data": {"dataset": "wrong_values", "options": {"bad_index": bad_index, "bad_value": bad_value},
                 "batch_size": 16, "num_workers": num_workers},
        "modalities": {
            "x": {"kind": "vector", "latent_dim": 2, "options": {"arch": "mlp", "size": 4, "hidden": [8]},
                  "train": {"steps": 8}},
            "y": {"kind": "vector", "latent_dim": 2, "options": {"arch": "identity", "size": 2}},
        },
        "diffusion": {"score_net": {"width": 16, "blocks": 1, "time_embed": 8}, "train": {"steps": 2}},
        "sampling": {"sampler": "ddim", "steps": 2},
        "evaluation": {"enabled": False},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(value, sort_keys=False))
    return path


def train(path, run, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = cli_main(["train", str(path), "--output", str(run), "--no-progress", "--no-eval"])
    return code, capsys.readouterr().err


def assert_one_message(err: str, *needles: str) -> None:
    assert "Traceback" not in err and "Caught" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize("bad_index", [3, 63], ids=["sampled item", "last item"])
def test_a_wrong_shape_is_one_message_before_anything_is_written(wrong_values, tmp_path, capsys, bad_index):
    code, err = train(recipe(tmp_path, bad_index), tmp_path / "run", capsys)
    assert code == 2, err
    assert_one_message(err, "dataset 'wrong_values' (split 'train')", f"item {bad_index}", "field 'x'",
                       "modality 'x' (kind vector)", "expects shape (4,)",
                       "got a float32 NumPy array of shape (3,)")
    assert not (tmp_path / "run").exists()


def test_a_wrong_type_is_one_message(wrong_values, tmp_path, capsys):
    code, err = train(recipe(tmp_path, 5, bad_value="text"), tmp_path / "run", capsys)
    assert code == 2, err
    assert_one_message(err, "item 5", "field 'x'", "modality 'x' (kind vector)", "expects shape (4,)", "got a str")
    assert not (tmp_path / "run").exists()


def test_a_first_value_the_fit_refuses_is_one_message(wrong_values, tmp_path, capsys):
    code, err = train(recipe(tmp_path, 0), tmp_path / "run", capsys)
    assert code == 2, err
    assert_one_message(err, "dataset 'wrong_values' (split 'train')", "field 'x'", "modality 'x' (kind vector)",
                       "expects shape (4,)", "float32 NumPy array of shape (3,)")
    assert not (tmp_path / "run").exists()


def test_a_wrong_value_met_in_a_dataloader_worker_is_still_one_message(wrong_values, tmp_path, capsys):
    """Item 40 is outside the sample checked up front: stage 1 meets it in a worker process, after the
    preprocessing was fitted (a run that trained nothing yet leaves no directory behind)."""
    run = tmp_path / "run"
    code, err = train(recipe(tmp_path, 40, num_workers=2), run, capsys)
    assert code == 2, err
    assert_one_message(err, "dataset 'wrong_values' (split 'train') item 40", "field 'x'",
                       "modality 'x' (kind vector)", "expects shape (4,)", "got a float32 NumPy array of shape (3,)")
    assert not run.exists()  # only the preprocessing was fitted: nothing to keep


class Unfixed(Modality):
    """Item shape not fixed: preprocess passes values through; collate must refuse ragged items."""

    def preprocess(self, value):
        return torch.as_tensor(value, dtype=torch.float32)


def test_items_that_do_not_stack_name_the_modality_and_the_shapes():
    modality = Unfixed("seq", None, 2)
    view = ModalityBatches([{"s": [1.0, 2.0]}, {"s": [1.0, 2.0, 3.0]}], {"seq": modality}, {"seq": "s"},
                           kinds={"seq": "sequence"})
    with pytest.raises(DatasetItemError, match=r"modality 'seq' \(kind sequence\) cannot collate items of shapes "
                                               r"\(2,\), \(3,\)"):
        collate_items([view[0], view[1]], {"seq": modality}, {"seq": "sequence"})


def test_a_non_dict_item_and_a_preprocess_returning_no_tensor_are_named():
    class NoTensor(Unfixed):
        item_shape = (2,)

        def preprocess(self, value):
            return list(value)

    modality = NoTensor("v", None, 2)
    with pytest.raises(DatasetItemError, match=r"dataset item 1: items must be dicts .* got a tuple of 2 elements"):
        ModalityBatches([{"v": [1, 2]}, (1, 2)], {"v": modality}, {"v": "v"})[1]
    with pytest.raises(DatasetItemError, match=r"item 0, field 'v': modality 'v' \(NoTensor\) expects shape \(2,\), "
                                               r"got a list of 2 elements, which preprocess made a list"):
        ModalityBatches([{"v": [1, 2]}], {"v": modality}, {"v": "v"})[0]


def test_an_empty_split_passes_the_check():
    modality = Unfixed("seq", None, 2)
    check_dataset_items({"train": [{"s": [1.0]}], "val": []}, {"seq": modality}, {"seq": "s"}, "tiny")


def test_the_message_survives_a_dataloader_worker():
    """What torch's ExceptionWrapper re-raises in the main process: the worker's formatted traceback."""
    wrapped = ("Caught DatasetItemError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
               '  File "x.py", line 1, in f\nmmlatent.data.DatasetItemError: dataset item 7, field \'x\': bad\n')
    assert str(DatasetItemError(wrapped)) == "dataset item 7, field 'x': bad"
    assert DatasetItemError.exit_code == 2
