"""Real distributions: the guide's example plugin and a broken one, built and pip-installed into a
temporary directory (never into the shared environment), then used through `python -m mmlatent`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "mmlatent-example"

BROKEN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "mmlatent-broken-example"
version = "0.0.1"

[project.entry-points.mmlatent]
broken = "mmlatent_broken_example"

[tool.setuptools]
py-modules = ["mmlatent_broken_example"]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A --target directory holding mmlatent-example and mmlatent-broken-example."""
    root = tmp_path_factory.mktemp("installed")
    example = root / "src" / "mmlatent-example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    broken = root / "src" / "mmlatent-broken-example"
    broken.mkdir()
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (broken / "mmlatent_broken_example.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--no-cache-dir", "--target", str(target), str(example), str(broken)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    assert (target / "mmlatent_example" / "plugin.py").is_file()
    return target


def run(site: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MMLATENT_")}
    environ["PYTHONPATH"] = str(site)
    environ.update(env or {})
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environ, timeout=300,
                          cwd=cwd or REPO)


def listed(site: Path, **env: str) -> dict[str, dict]:
    result = run(site, "-m", "mmlatent", "plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(set(row) == {"name", "version", "modalities", "datasets", "models", "error"} for row in rows)
    return {row["name"]: row for row in rows}


def test_plugins_json_lists_builtin_example_and_the_broken_plugin(site):
    rows = listed(site)
    assert rows["mmlatent"] == {"name": "mmlatent", "version": "0.1.0", "modalities": ["vector"],
                                "datasets": ["tensors", "paired"], "models": ["mld"], "error": None}
    assert rows["mmlatent-example"] == {"name": "mmlatent-example", "version": "0.1.0", "modalities": ["category"],
                                        "datasets": ["remainders"], "models": [], "error": None}
    assert rows["mmlatent-broken-example"] == {
        "name": "mmlatent-broken-example", "version": "0.0.1", "modalities": [], "datasets": [], "models": [],
        "error": "RuntimeError: this plugin is broken on purpose"}


def test_installed_example_is_usable_next_to_the_broken_plugin(site):
    script = textwrap.dedent("""
        import json, sys
        import mmlatent
        # importing mmlatent loads no plugin: plugins load on first use
        early = sorted(m for m in sys.modules if m.startswith(("mmlatent.plugins", "mmlatent.builtin",
                                                               "mmlatent_example", "mmlatent_broken")))
        import torch
        from mmlatent.plugins import get_registry
        registry = get_registry()
        modality = registry.modality("category").build("number", {"num_categories": 30}, 4)
        ae = modality.build_autoencoder()
        batch = modality.collate([modality.preprocess(k) for k in (1, 7, 29)])
        z = ae.encode(batch)
        dataset = registry.dataset("remainders")
        train = dataset.build(dataset.validate_options({"size": 12}), "train")
        vector = registry.modality("vector").build("v", {"size": 2}, 2).build_autoencoder()
        print(json.dumps({"early": early, "z": list(z.shape), "back": list(ae.to_data(ae.decode(z)).shape),
                          "item": train[0], "n": len(train), "vector": list(vector.encode(torch.zeros(1, 2)).shape),
                          "provider": registry.provider_of_modality("category")}))
    """)
    result = run(site, "-c", script)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["early"] == []
    assert out["z"] == [3, 4] and out["back"] == [3] and out["n"] == 12 and out["vector"] == [1, 2]
    assert set(out["item"]) == {"number", "remainder", "label"}
    assert out["item"]["remainder"] == out["item"]["number"] % 3
    assert out["provider"] == ["mmlatent-example", "0.1.0"]


def test_a_broken_plugin_stops_no_command(site):
    table = run(site, "-m", "mmlatent", "plugins")
    assert table.returncode == 0, table.stderr
    assert "mmlatent-broken-example 0.0.1: RuntimeError: this plugin is broken on purpose" in table.stdout
    assert any(line.split()[:2] == ["mmlatent-example", "0.1.0"] and line.split()[-1] == "ok"
               for line in table.stdout.splitlines())
    # `mmlatent --help` and `mmlatent validate --help`, in one interpreter that has the broken plugin
    script = textwrap.dedent("""
        import sys
        from mmlatent.cli import main
        for argv in (["--help"], ["validate", "--help"]):
            try:
                main(argv)
            except SystemExit as stop:
                assert stop.code in (0, None), (argv, stop.code)
            print("==", argv)
    """)
    helped = run(site, "-c", script)
    assert helped.returncode == 0, helped.stderr
    assert "usage: mmlatent" in helped.stdout and "usage: mmlatent validate" in helped.stdout
    assert "== ['validate', '--help']" in helped.stdout


def test_the_guides_recipe_validates_with_the_installed_example(site, tmp_path, guide_recipe):
    recipe = tmp_path / "remainders.yaml"
    recipe.write_text(guide_recipe)
    result = run(site, "-m", "mmlatent", "validate", str(recipe))
    assert result.returncode == 0, result.stdout + result.stderr
    misspelled = tmp_path / "misspelled.yaml"
    misspelled.write_text(guide_recipe.replace("num_categories: 3}", "num_categories: 3, hiden: 8}"))
    result = run(site, "-m", "mmlatent", "validate", str(misspelled))
    assert result.returncode == 2 and "modalities.remainder.options.hiden" in result.stdout + result.stderr


def test_environment_limits_and_strict_mode(site):
    rows = listed(site, MMLATENT_LOAD_PLUGINS="mmlatent-example")
    assert set(rows) == {"mmlatent", "mmlatent-example"}
    strict = run(site, "-m", "mmlatent", "plugins", "--json", env={"MMLATENT_STRICT_PLUGINS": "1"})
    assert strict.returncode != 0 and strict.stdout == ""
    assert "PluginLoadError: plugin mmlatent-broken-example 0.0.1" in strict.stderr
    assert "RuntimeError: this plugin is broken on purpose" in strict.stderr  # the chained traceback


def test_the_guides_example_tests_pass_against_the_installed_plugin(site, tmp_path):
    tests = tmp_path / "tests"
    shutil.copytree(EXAMPLE / "tests", tests)
    result = run(site, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 passed, 1 skipped" in result.stdout  # the category kind renders no file read_file reads
