"""A run directory is checked, not trusted: changed, truncated or corrupt files are named, never used."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from fault_fixtures import train

from mmlatent import MLDPipeline
from mmlatent.cli import main as cli_main
from mmlatent.manifest import ManifestMismatch


def test_truncated_recipe_is_refused_by_sample_and_evaluate(run_copy, tmp_path, capsys):
    """A recipe.yaml cut at `sampling:` still validates (defaults); the manifest catches it."""
    text = (run_copy / "recipe.yaml").read_text()
    (run_copy / "recipe.yaml").write_text(text[: text.index("sampling:")])
    (run_copy / "metrics.json").write_text('{"kept": true}')
    assert cli_main(["sample", str(run_copy), "--n", "2", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "recipe.yaml was changed after the run wrote it" in err and "Traceback" not in err
    assert cli_main(["evaluate", str(run_copy)]) == 2
    assert "recipe.yaml was changed" in capsys.readouterr().err
    assert json.loads((run_copy / "metrics.json").read_text()) == {"kept": True}
    assert not (tmp_path / "out").exists()


def test_same_size_change_of_weights_is_found(run_copy):
    path = run_copy / "score_net.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestMismatch, match="score_net.safetensors was changed .*same size, different content"):
        MLDPipeline.load(run_copy)


def test_garbage_recipe_inside_a_run_is_named(run_copy, capsys, tmp_path):
    (run_copy / "recipe.yaml").write_bytes(b"\xff\xfe\x00garbage")
    assert cli_main(["sample", str(run_copy), "--out", str(tmp_path / "o")]) == 2
    assert str(run_copy / "recipe.yaml") in capsys.readouterr().err


def _needs_stage_2(run: Path) -> None:
    """Make the finished run look like one stopped in stage 2 (its checkpoint is the tests' target)."""
    state = json.loads((run / "state.json").read_text())
    state["completed"] = [step for step in state["completed"] if step not in ("score_net", "samples", "evaluation")]
    (run / "state.json").write_text(json.dumps(state))
    (run / "score_net.safetensors").unlink()


@pytest.mark.parametrize("target, damage, expected", [
    ("autoencoders/b.safetensors", b"junk", "autoencoders/b.safetensors was changed"),
    ("latent_stats.safetensors", b"", "latent_stats.safetensors was changed"),
    ("latents/train.safetensors", b"junk", "latents/train.safetensors was changed"),
    ("modalities/a.json", b"{", "modalities/a.json was changed"),
    ("recipe.yaml", b"name: gaussian\n", "recipe.yaml was changed"),
    ("state.json", b"[1, 2", "corrupt run state"),
    ("state.json", b'{"completed": 3}', "corrupt run state"),
    ("checkpoints/score_net.safetensors", b"not a checkpoint", "corrupt checkpoint"),
    ("manifest.json", b"[]", "corrupt run manifest"),
])
def test_resume_names_the_damaged_file(run_copy, capsys, target, damage, expected):
    _needs_stage_2(run_copy)
    assert (run_copy / "checkpoints" / "score_net.safetensors").is_file()  # written at steps 20 and 40
    (run_copy / target).write_bytes(damage)
    assert train(run_copy.parent / "recipe-outside.yaml", run_copy, "--resume") == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert target.split("/")[-1] in err


def test_resume_of_finished_run_restores_missing_curves_and_keeps_history(run_copy):
    history = json.loads((run_copy / "history.json").read_text())
    for png in (run_copy / "curves").iterdir():
        png.unlink()
    assert train(run_copy.parent / "recipe-outside.yaml", run_copy, "--resume") == 0
    assert (run_copy / "curves" / "score_net.png").is_file()
    assert json.loads((run_copy / "history.json").read_text()) == history


def test_run_without_manifest_loads_with_a_warning(run_copy):
    (run_copy / "manifest.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe = MLDPipeline.load(run_copy)
    assert any("no manifest.json" in str(w.message) for w in caught)
    assert pipe.generate(n=2, steps=2)["b"].shape == (2, 3)


def test_sample_refuses_absurd_counts_at_once(finished_run, tmp_path, capsys):
    assert cli_main(["sample", str(finished_run), "--n", "1000000", "--out", str(tmp_path / "o")]) == 2
    assert "give 1 to 10000 samples" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_sample_with_bad_option_and_missing_given_file(finished_run, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert cli_main(["sample", str(finished_run), "--option", "eta=abc", "--out", out]) == 2
    assert "sampler option eta" in capsys.readouterr().err
    assert cli_main(["sample", str(finished_run), "--given", f"a={tmp_path / 'none.npy'}", "--out", out]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli_main(["sample", str(finished_run), "--guidance", "a=abc", "--out", out]) == 2
    assert "--guidance a=abc: the weight must be a number" in capsys.readouterr().err


def test_debug_shows_the_traceback(finished_run, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "o")
    assert cli_main(["--debug", "sample", str(finished_run), "--n", "0", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "give 1 to 10000 samples" in err
    monkeypatch.setenv("MMLATENT_DEBUG", "1")
    assert cli_main(["sample", str(finished_run), "--n", "0", "--out", out]) == 2
    assert "Traceback" in capsys.readouterr().err
