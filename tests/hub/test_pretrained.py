"""Sharing a model: save_pretrained -> from_pretrained round trips, the folder's contents and model
card, its checks, push_to_hub and Hub ids (huggingface_hub monkeypatched: everything offline)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from fault_fixtures import tiny_recipe, train, write_yaml
from gaussian_fixtures import write_gaussian_data

from mmlatent import MLDPipeline
from mmlatent.cli import main as cli_main
from mmlatent.hub import PretrainedError
from mmlatent.manifest import ManifestMismatch
from mmlatent.model import load_model

METRICS = {"coherence": {"joint": 0.91, "a->b": 0.875}, "fd": {"joint:b": 12.25}, "nfe": 4,
           "sampler": {"name": "ddim", "steps": 4}}
#: Everything a pretrained folder of the tiny two-vector MLD run holds.
EXPECTED_FILES = {"README.md", "manifest.json", "recipe.yaml", "plugins.json", "metrics.json",
                  "modalities/a.json", "modalities/b.json", "autoencoders/a.safetensors", "autoencoders/b.safetensors",
                  "latent_stats.safetensors", "score_net.safetensors", "samples/joint_a.png", "samples/joint_b.png"}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A tiny finished MLD run (two Gaussian vectors, ~5 s) with a metrics.json (as `evaluate` writes)."""
    root = tmp_path_factory.mktemp("hub")
    data = write_gaussian_data(root / "gauss.safetensors", n=600)
    assert train(write_yaml(root / "recipe.yaml", tiny_recipe(data)), root / "run") == 0
    (root / "run" / "metrics.json").write_text(json.dumps(METRICS))
    return root / "run"


@pytest.fixture(scope="module")
def saved(trained_run, tmp_path_factory) -> Path:
    """The run's pretrained folder (tests copy it before changing anything)."""
    return MLDPipeline.load(trained_run).save_pretrained(tmp_path_factory.mktemp("saved") / "model")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _assert_same(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_what_a_run_carries(trained_run, tmp_path):
    """Students (recorded in the manifest) travel; training-only files never do."""
    from mmlatent.hub import pretrained_files
    from mmlatent.manifest import record_files

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "students").mkdir()
    (run / "students" / "fast.json").write_text('{"steps": 2}')
    (run / "students" / "fast.safetensors").write_bytes((run / "score_net.safetensors").read_bytes())
    (run / "classifiers").mkdir()
    (run / "classifiers" / "a.safetensors").write_bytes(b"x")
    record_files(run, [run / "students" / "fast.json", run / "students" / "fast.safetensors",
                       run / "classifiers" / "a.safetensors"])
    carried = set(pretrained_files(run))
    assert {"students/fast.json", "students/fast.safetensors"} <= carried
    assert carried == EXPECTED_FILES - {"README.md", "manifest.json"} | {"students/fast.json",
                                                                         "students/fast.safetensors"}


def test_round_trip_generates_identical_samples(trained_run, saved):
    pipe = MLDPipeline.load(trained_run)
    loaded = MLDPipeline.from_pretrained(saved)
    assert isinstance(loaded, MLDPipeline) and loaded.run_dir == saved and loaded.names == pipe.names
    _assert_same(pipe.generate(n=6, seed=11), loaded.generate(n=6, seed=11))
    given = {"a": torch.randn(5, 2, generator=torch.Generator().manual_seed(0))}
    _assert_same(pipe.generate(given=given, seed=3), loaded.generate(given=given, seed=3))
    assert loaded.generate(given=given, sampler="euler_maruyama", steps=3, seed=1)["b"].shape == (5, 3)


def test_the_folder_holds_only_what_inference_needs(trained_run, saved):
    files = _files(saved)
    assert files == EXPECTED_FILES
    assert {Path(f).suffix for f in files} <= {".safetensors", ".json", ".yaml", ".md", ".png"}
    assert (trained_run / "checkpoints").is_dir() and (trained_run / "latents").is_dir()  # left behind
    manifest = json.loads((saved / "manifest.json").read_text())
    assert set(manifest["files"]) == files - {"README.md", "manifest.json"}
    assert manifest["exported"]["family"] == "mld" and "mmlatent" in manifest["exported"]["requires"]
    for name in ["score_net.safetensors", "recipe.yaml", "samples/joint_a.png"]:
        assert (saved / name).read_bytes() == (trained_run / name).read_bytes(), name


def test_the_model_card(saved):
    card = huggingface_hub.ModelCard.load(saved / "README.md")
    assert card.data.library_name == "mmlatent"
    assert {"mmlatent", "mld", "latent-diffusion", "vector"} <= set(card.data.tags)
    text = card.text
    assert "MLDPipeline.from_pretrained(" in text and "pip install mmlatent" in text
    assert "| coherence: joint | 0.91 |" in text and "| fd: joint:b | 12.25 |" in text
    assert "| sampler | name ddim, steps 4 |" in text
    assert "![joint_a](samples/joint_a.png)" in text and "![joint_b](samples/joint_b.png)" in text
    assert (saved / "recipe.yaml").read_text().strip() in text


def test_no_metrics_no_table_and_saving_again_replaces_the_folder(trained_run, saved, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "metrics.json").unlink()
    target = tmp_path / "model"
    shutil.copytree(saved, target)
    (target / ".git").mkdir()  # a cloned Hub repository keeps its own entries
    MLDPipeline.load(run).save_pretrained(target)
    assert _files(target) == EXPECTED_FILES - {"metrics.json"} | {p for p in _files(target) if p.startswith(".git")}
    assert (target / ".git").is_dir() and "## Metrics" not in (target / "README.md").read_text()
    MLDPipeline.from_pretrained(target)


def test_loading_checks_every_file(saved, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    (folder / "README.md").write_text((folder / "README.md").read_text() + "\nEdited on the Hub.\n")
    MLDPipeline.from_pretrained(folder)  # the card is not checked: it may be edited
    (folder / "samples" / "joint_b.png").write_bytes(b"not a png")
    with pytest.raises(ManifestMismatch, match="joint_b.png was changed"):
        MLDPipeline.from_pretrained(folder)
    (folder / "samples" / "joint_b.png").unlink()
    with pytest.raises(ManifestMismatch, match="joint_b.png is missing"):
        MLDPipeline.from_pretrained(folder)


def test_a_changed_run_file_is_not_saved(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    pipe = MLDPipeline.load(run)
    weights = run / "score_net.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])
    with pytest.raises(ManifestMismatch, match="score_net.safetensors was changed"):
        pipe.save_pretrained(tmp_path / "model")
    assert not (tmp_path / "model").exists() and not list(tmp_path.glob(".model.*"))


def test_what_is_not_a_model_is_refused_clearly(trained_run, saved, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PretrainedError, match="not an mmlatent model: it has no recipe.yaml and no manifest.json"):
        MLDPipeline.from_pretrained(tmp_path / "empty")
    with pytest.raises(PretrainedError, match="no folder at"):
        MLDPipeline.from_pretrained(tmp_path / "no" / "such" / "model")
    with pytest.raises(PretrainedError, match="local folder"):
        MLDPipeline.from_pretrained(saved, revision="main")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    pipe = MLDPipeline.load(trained_run)
    with pytest.raises(PretrainedError, match="not a saved mmlatent model"):
        pipe.save_pretrained(tmp_path / "other")
    assert _files(tmp_path / "other") == {"notes.txt"}
    with pytest.raises(PretrainedError, match="folder of its own"):
        pipe.save_pretrained(trained_run / "shared")
    pipe.run_dir = None
    with pytest.raises(PretrainedError, match="built in memory"):
        pipe.save_pretrained(tmp_path / "model")


def test_a_model_of_a_family_not_installed_names_what_it_needs(saved, tmp_path):
    import yaml

    from mmlatent.manifest import record_files

    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
    recipe["model"] = {"family": "nosuch"}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    record_files(folder, [folder / "recipe.yaml"])
    with pytest.raises(PretrainedError, match=r"(?s)does not validate with the installed plugins \(it was trained "
                                              r"with mmlatent .*nosuch"):
        MLDPipeline.from_pretrained(folder)


def test_a_run_directory_loads_too(trained_run):
    _assert_same(MLDPipeline.from_pretrained(trained_run).generate(n=3, seed=2),
                 MLDPipeline.load(trained_run).generate(n=3, seed=2))


def test_push_to_hub_uploads_the_saved_folder(trained_run, monkeypatch):
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = (repo_id, kwargs)

    def create_branch(self, repo_id, **kwargs):
        calls["create_branch"] = (repo_id, kwargs)

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        calls["upload_folder"] = kwargs
        calls["files"] = _files(folder)
        calls["card"] = (folder / "README.md").read_text()
        return "commit-info"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", create_branch)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    pipe = MLDPipeline.load(trained_run)
    assert pipe.push_to_hub("someone/tiny-mld", private=True, revision="v1") == "commit-info"
    assert calls["create_repo"] == ("someone/tiny-mld", {"repo_type": "model", "private": True, "exist_ok": True})
    assert calls["create_branch"][1]["branch"] == "v1"
    upload = calls["upload_folder"]
    assert upload["repo_id"] == "someone/tiny-mld" and upload["revision"] == "v1" and upload["delete_patterns"] == "*"
    assert calls["files"] == EXPECTED_FILES
    assert 'MLDPipeline.from_pretrained("someone/tiny-mld")' in calls["card"]
    assert not Path(upload["folder_path"]).exists()  # the temporary folder is gone
    with pytest.raises(PretrainedError, match="owner/name"):
        pipe.push_to_hub("no slash")
    assert cli_main(["export", str(trained_run), "--push-to-hub", "someone/cli-mld", "--private"]) == 0
    assert calls["create_repo"] == ("someone/cli-mld", {"repo_type": "model", "private": True, "exist_ok": True})
    assert calls["files"] == EXPECTED_FILES and calls["upload_folder"]["revision"] is None


def test_from_pretrained_downloads_a_hub_repository(saved, monkeypatch, tmp_path):
    seen = {}

    def snapshot_download(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        return str(saved)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    model = MLDPipeline.from_pretrained("someone/tiny-mld", revision="v1", cache_dir=tmp_path / "cache",
                                        local_files_only=True)
    assert isinstance(model, MLDPipeline) and model.run_dir == saved
    assert seen["repo_id"] == "someone/tiny-mld" and seen["revision"] == "v1"
    assert seen["cache_dir"] == tmp_path / "cache" and seen["local_files_only"] is True
    assert seen["library_name"] == "mmlatent"

    def offline(repo_id, **kwargs):
        raise huggingface_hub.utils.LocalEntryNotFoundError("no cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(PretrainedError, match="not in the Hub cache"):
        MLDPipeline.from_pretrained("someone/tiny-mld", local_files_only=True)


def test_export_command(trained_run, tmp_path, capsys):
    out = tmp_path / "model"
    assert cli_main(["export", str(trained_run), "--out", str(out)]) == 0
    assert "model saved to" in capsys.readouterr().out and _files(out) == EXPECTED_FILES
    assert cli_main(["sample", str(out), "--n", "2", "--out", str(tmp_path / "samples")]) == 0
    _assert_same(load_model(out).generate(n=2, seed=5), MLDPipeline.load(trained_run).generate(n=2, seed=5))
    capsys.readouterr()
    assert cli_main(["export", str(trained_run)]) == 2
    assert "--out DIR" in capsys.readouterr().err
    assert cli_main(["export", str(tmp_path / "samples"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "is not an mmlatent model" in err and "Traceback" not in err and not (tmp_path / "x").exists()
