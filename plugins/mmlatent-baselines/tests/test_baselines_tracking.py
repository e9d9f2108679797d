"""A VAE family logs through the same trackers as MLD (``train.log_with``): its one stage's loss and
learning rate, and the sample grids."""

from __future__ import annotations

import pytest
import yaml
from mmlatent.cli import main as cli_main
from mmlatent_baselines.testing import tiny_recipe

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_a_family_logs_its_stage_and_grids_to_tensorboard(tmp_path):
    recipe = tiny_recipe("mvae", steps=4, batch_size=32, log_every=2)
    recipe["train"] = {"log_with": ["tensorboard"]}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    run = tmp_path / "run"
    assert cli_main(["train", str(path), "--output", str(run), "--no-progress", "--no-eval"]) == 0

    (folder,) = {event.parent for event in (run / "logs").rglob("events.out.tfevents.*")}
    events = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0}).Reload()
    assert [event.step for event in events.Scalars("mvae/loss")] == [2, 4]
    assert [event.step for event in events.Scalars("mvae/lr")] == [2, 4]
    assert "samples/joint_gray" in events.Tags()["images"]
    assert events.Images("samples/joint_gray")[-1].step == 4
