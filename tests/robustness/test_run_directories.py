"""Safe run directories: nothing outside the run is ever written or deleted, and nothing is left behind
when nothing was trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_fixtures import tiny_recipe, train, write_yaml


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    """A current folder holding another run and a file that must survive every refused command."""
    work = tmp_path / "work"
    (work / "runs" / "other").mkdir(parents=True)
    (work / "runs" / "other" / "recipe.yaml").write_text("name: other\n")
    (work / "keep.txt").write_text("precious")
    monkeypatch.chdir(work)
    return work


def _untouched(work: Path) -> None:
    assert (work / "keep.txt").read_text() == "precious"
    assert (work / "runs" / "other" / "recipe.yaml").is_file()


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a" * 300])
def test_unsafe_recipe_names_are_refused_before_anything_is_written(workdir, gauss_data, capsys, name):
    recipe = write_yaml(workdir / "bad.yaml", tiny_recipe(gauss_data, name=name))
    assert train(recipe, None, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "name: a run name must start with a letter or digit" in err and "Traceback" not in err
    _untouched(workdir)
    assert sorted(p.name for p in (workdir / "runs").iterdir()) == ["other"]


@pytest.mark.parametrize("output", [".", "..", "/", "HOME"])
def test_outputs_that_are_the_current_folder_a_parent_or_home_are_refused(workdir, gauss_data, capsys,
                                                                          monkeypatch, output):
    if output == "HOME":
        monkeypatch.setenv("HOME", str(workdir / "runs"))
        output = str(workdir / "runs")
    recipe = write_yaml(workdir / "r.yaml", tiny_recipe(gauss_data))
    assert train(recipe, Path(output), "--overwrite") == 2
    err = capsys.readouterr().err
    assert "a run needs a folder of its own" in err and "Traceback" not in err
    _untouched(workdir)


def test_a_folder_with_foreign_files_is_never_overwritten(workdir, gauss_data, capsys):
    folder = workdir / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    recipe = write_yaml(workdir / "r.yaml", tiny_recipe(gauss_data))
    for flag in ("--overwrite", "--resume"):
        assert train(recipe, folder, flag) == 2
        err = capsys.readouterr().err
        assert "is not an mmlatent run directory" in err and "thesis.tex" in err
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_a_run_holding_a_foreign_file_is_not_overwritten(run_copy, gauss_data, capsys):
    (run_copy / "notes.txt").write_text("mine")
    assert train(run_copy / "recipe.yaml", run_copy, "--overwrite") == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (run_copy / "notes.txt").is_file() and (run_copy / "score_net.safetensors").is_file()


def test_overwrite_replaces_a_recognised_run(run_copy, tmp_path):
    before = json.loads((run_copy / "manifest.json").read_text())["run_id"]
    recipe = write_yaml(tmp_path / "r.yaml", {**__import__("yaml").safe_load((run_copy / "recipe.yaml").read_text())})
    assert train(recipe, run_copy, "--overwrite") == 0
    assert json.loads((run_copy / "manifest.json").read_text())["run_id"] != before
    assert (run_copy / "score_net.safetensors").is_file()


def test_existing_run_needs_resume_or_overwrite(run_copy, capsys):
    assert train(run_copy / "recipe.yaml", run_copy) == 2
    assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err


def test_output_name_too_long_for_the_file_system(workdir, gauss_data, capsys):
    recipe = write_yaml(workdir / "r.yaml", tiny_recipe(gauss_data))
    assert train(recipe, workdir / ("x" * 300)) == 2
    err = capsys.readouterr().err
    assert "longer than 200 bytes" in err and "Traceback" not in err


def test_missing_data_is_a_message_and_leaves_no_run_directory(workdir, capsys):
    recipe = write_yaml(workdir / "r.yaml", tiny_recipe(workdir / "no" / "such.safetensors"))
    assert train(recipe, None) == 2
    err = capsys.readouterr().err
    assert "cannot load the train split of dataset 'tensors'" in err and "such.safetensors" in err
    assert "Traceback" not in err
    assert not (workdir / "runs" / "gaussian").exists()


def test_unreadable_inception_weights_are_found_before_training(workdir, gauss_data, capsys):
    weights = workdir / "inception.safetensors"
    weights.write_bytes(b"\x00garbage")
    recipe = write_yaml(workdir / "r.yaml", tiny_recipe(gauss_data, **{
        "evaluation": {"enabled": True, "inception_weights": str(weights)}}))
    assert train(recipe, None) == 2
    err = capsys.readouterr().err
    assert "inception.safetensors" in err and "Traceback" not in err
    assert not (workdir / "runs" / "gaussian").exists()


def test_failure_before_any_stage_removes_the_directory_it_made(workdir, gauss_data, capsys, monkeypatch):
    """A fault in the first stage of a new run (here the disk) leaves no run directory behind."""
    import mmlatent.training as training_module

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device", "modalities/a.json")

    monkeypatch.setattr(training_module, "save_json", no_space)
    recipe = write_yaml(workdir / "r.yaml", tiny_recipe(gauss_data))
    assert train(recipe, None) == 2
    err = capsys.readouterr().err
    assert "no space left on the device while writing modalities/a.json" in err and "Traceback" not in err
    assert not (workdir / "runs" / "gaussian").exists()
    _untouched(workdir)


def test_disk_full_during_a_checkpoint_names_the_file_and_resumes(gauss_data, tmp_path, capsys, monkeypatch):
    """safetensors' own 'No space left on device' becomes one message naming the checkpoint."""
    import safetensors.torch
    from safetensors import SafetensorError

    import mmlatent.checkpoint as checkpoint

    real = safetensors.torch.save_file

    def full_disk(tensors, path, metadata=None):
        if "score_net" in str(path) or ".score_net" in Path(path).name:
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                  "message: \"No space left on device\" })")
        return real(tensors, path, metadata=metadata)

    recipe = write_yaml(tmp_path / "r.yaml", tiny_recipe(gauss_data))
    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    assert train(recipe, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "no space left on the device while writing" in err and "checkpoints/score_net.safetensors" in err
    assert "Traceback" not in err
    monkeypatch.setattr(checkpoint, "save_file", real)
    assert train(recipe, tmp_path / "run", "--resume") == 0
    assert (tmp_path / "run" / "score_net.safetensors").is_file()
