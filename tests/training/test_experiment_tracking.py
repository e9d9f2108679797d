"""``train.log_with``: a run logs both stages' losses and learning rates and its sample grids to
TensorBoard under RUN/logs (read back offline), resumes with growing steps, and a tracker that is
not installed is one message, exit code 2, nothing written."""

from __future__ import annotations

import signal

import pytest
import yaml
from fault_fixtures import tiny_recipe, train, write_yaml
from gaussian_fixtures import write_gaussian_data

from mmlatent import extras, tracking
from mmlatent.recipe import parse_recipe
from mmlatent.training import StagedTrainer

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

STAGE_1_STEPS, STAGE_2_STEPS, LOG_EVERY, STOP_AFTER = 20, 60, 10, 35


def _recipe(data, **train_section) -> dict:
    """Tiny Gaussian run whose modality ``b`` has a trained MLP autoencoder (stage 1 has steps)."""
    return tiny_recipe(data, **{
        "modalities.b": {"kind": "vector", "latent_dim": 3, "options": {"arch": "mlp", "size": 3, "hidden": [16]},
                         "train": {"steps": STAGE_1_STEPS, "lr": 1e-3, "batch_size": 64}},
        "diffusion.train": {"steps": STAGE_2_STEPS, "lr": 1e-3, "batch_size": 64, "checkpoint_every": 1000,
                            "log_every": LOG_EVERY},
        "evaluation": {"enabled": False, "samples": 16},
        **({"train": train_section} if train_section else {}),
    })


def _events(run) -> event_accumulator.EventAccumulator:
    """Every TensorBoard event file of the run (one per start of the run), read offline."""
    folders = sorted({path.parent for path in (run / "logs").rglob("events.out.tfevents.*")})
    assert len(folders) == 1, folders
    events = event_accumulator.EventAccumulator(str(folders[0]), size_guidance={"scalars": 0, "images": 0})
    return events.Reload()


def _steps(events, tag: str) -> list[int]:
    return [event.step for event in events.Scalars(tag)]


@pytest.fixture(scope="module")
def gauss(tmp_path_factory):
    return write_gaussian_data(tmp_path_factory.mktemp("data") / "gauss.safetensors", n=600)


def test_stopped_and_resumed_run_logs_both_stages_and_the_grids(gauss, tmp_path, monkeypatch):
    recipe = write_yaml(tmp_path / "recipe.yaml", _recipe(gauss, log_with=["tensorboard"]))
    run = tmp_path / "run"
    check_finite = StagedTrainer.check_finite

    def stop_inside_stage_2(self, loss, stage, step):
        if stage == "score_net" and step == STOP_AFTER - 1 and self.stop.requested is None:
            self.stop.requested = signal.SIGTERM  # as a SIGTERM would: checkpoint after this step, then stop
        return check_finite(self, loss, stage, step)

    monkeypatch.setattr(StagedTrainer, "check_finite", stop_inside_stage_2)
    assert train(recipe, run, "--no-eval") == 128 + signal.SIGTERM
    monkeypatch.setattr(StagedTrainer, "check_finite", check_finite)
    assert train(recipe, run, "--no-eval", "--resume") == 0

    assert yaml.safe_load((run / "recipe.yaml").read_text())["train"] == {"log_with": ["tensorboard"]}
    events = _events(run)
    assert (run / "logs" / "gaussian").is_dir() and len(list((run / "logs" / "gaussian").glob("events.*"))) == 2
    stage_1 = list(range(LOG_EVERY, STAGE_1_STEPS + 1, LOG_EVERY))
    assert _steps(events, "autoencoder/b/loss") == _steps(events, "autoencoder/b/lr") == stage_1
    # stage 2 counts on from stage 1's steps; the resumed part continues after the checkpoint (step 35)
    stage_2 = [STAGE_1_STEPS + step for step in range(LOG_EVERY, STAGE_2_STEPS + 1, LOG_EVERY)]
    assert _steps(events, "score_net/loss") == _steps(events, "score_net/lr") == stage_2
    assert [event.value for event in events.Scalars("score_net/lr")] == pytest.approx([1e-3] * len(stage_2))
    history = yaml.safe_load((run / "history.json").read_text())
    logged = [event.value for event in events.Scalars("score_net/loss")]
    assert logged == pytest.approx([loss for _, loss in history["score_net"]], rel=1e-6)

    images = events.Tags()["images"]
    assert {"samples/joint_a", "samples/joint_b"} <= set(images)
    grid = events.Images("samples/joint_b")[-1]
    assert grid.step == STAGE_1_STEPS + STAGE_2_STEPS and grid.width > 100 and grid.height > 100
    assert grid.encoded_image_string.startswith(b"\x89PNG")


def test_without_trackers_nothing_is_logged_and_the_recipe_text_is_unchanged(gauss, tmp_path):
    recipe = _recipe(gauss)
    assert "train" not in yaml.safe_load(parse_recipe(recipe, check_plugins=False).to_yaml())
    empty = parse_recipe({**recipe, "train": {"log_with": []}}, check_plugins=False)
    assert empty.to_yaml() == parse_recipe(recipe, check_plugins=False).to_yaml()
    run = tmp_path / "run"
    assert train(write_yaml(tmp_path / "recipe.yaml", recipe), run, "--no-eval") == 0
    assert not (run / "logs").exists()


@pytest.mark.parametrize(("missing", "message"), [
    ("wandb", "logging with wandb (train.log_with) needs the package 'wandb', which is not installed: "
              "pip install wandb"),
    ("tensorboard", "TensorBoard logging (train.log_with: [tensorboard]) needs the package 'tensorboard', which "
                    "is not installed: pip install 'mmlatent[tensorboard]'"),
])
def test_a_tracker_that_is_not_installed_is_one_message_and_nothing_is_written(gauss, tmp_path, monkeypatch,
                                                                                capsys, missing, message):
    monkeypatch.setattr(extras, "is_installed", lambda module: module != missing)
    recipe = write_yaml(tmp_path / "recipe.yaml", _recipe(gauss, log_with=["tensorboard", "wandb"]))
    run = tmp_path / "run"
    assert train(recipe, run) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not run.exists()


def test_an_unknown_tracker_is_a_recipe_error(gauss, tmp_path, capsys):
    recipe = write_yaml(tmp_path / "recipe.yaml", _recipe(gauss, log_with=["tensorbored"]))
    assert train(recipe, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "train.log_with.0: Input should be 'tensorboard', 'wandb' or 'mlflow' (got 'tensorbored')" in err
    assert not (tmp_path / "run").exists()


def test_run_step_counts_across_stages():
    records = {"autoencoder:a": [[10, 1.0], [20, 0.5]], "autoencoder:b": [], "score_net": [[5, 2.0]]}
    assert tracking.run_step(records, "score_net", 7) == 27
    assert tracking.run_step(records) == 25
