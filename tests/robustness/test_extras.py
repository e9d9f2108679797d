"""A feature whose optional package is missing names what to install: one message, exit 2, nothing written."""

from __future__ import annotations

import importlib.util

import pytest

from mmlatent.errors import UserError
from mmlatent.extras import EXTRAS, MissingDependencyError, is_installed, require, require_extra


def test_require_passes_for_installed_packages_and_names_the_install_command() -> None:
    require("yaml", feature="recipes", install="pip install pyyaml")
    assert is_installed("yaml") and not is_installed("no_such_package_xyz") and not is_installed("no_such.sub")
    with pytest.raises(MissingDependencyError) as caught:
        require("no_such_package_xyz.io", feature="the XYZ loader", install="pip install 'x[xyz]'")
    assert str(caught.value) == ("the XYZ loader needs the package 'no_such_package_xyz', which is not installed: "
                                 "pip install 'x[xyz]'")
    assert isinstance(caught.value, UserError) and caught.value.exit_code == 2


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_each_core_extra_names_its_pip_command(extra, monkeypatch) -> None:
    module = EXTRAS[extra][0]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(MissingDependencyError, match=rf"pip install 'mmlatent\[{extra}\]'"):
        require_extra(extra)


def test_fid_and_clip_say_which_extra_before_loading(tmp_path, monkeypatch) -> None:
    from mmlatent.evaluation.clip_score import ClipScorer
    from mmlatent.evaluation.fid import load_inception

    real = importlib.util.find_spec
    hidden = {"torchvision", "transformers"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    weights = tmp_path / "inception.safetensors"
    weights.write_bytes(b"not read")
    with pytest.raises(MissingDependencyError, match=r"mmlatent\[fid\]"):
        load_inception(weights)
    (tmp_path / "clip").mkdir()
    with pytest.raises(MissingDependencyError, match=r"mmlatent\[clip\]"):
        ClipScorer.from_pretrained(tmp_path / "clip")


def test_training_with_clip_s_but_no_transformers_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    from mmlatent.train import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name, *a))
    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / "config.json").write_text("{}")
    run = tmp_path / "run"
    code = main(["quickstart", "--output", str(run), "--no-progress", f"--set=evaluation.clip_model={clip}"])
    assert code == 2
    assert "pip install 'mmlatent[clip]'" in capsys.readouterr().err
    assert not run.exists()
