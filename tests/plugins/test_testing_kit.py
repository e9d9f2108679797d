"""The plugin author's kit around mmlatent.testing: the `test` extra that brings pytest, the message
when it is missing, and the plugins and the guide's example installing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[2]


def extras(pyproject: Path) -> dict[str, list[str]]:
    return tomllib.loads(pyproject.read_text())["project"].get("optional-dependencies", {})


def test_importing_the_contract_tests_without_pytest_says_to_install_the_test_extra():
    hide_pytest = "import sys; sys.modules['pytest'] = None  # an environment without pytest\nimport mmlatent.testing"
    result = subprocess.run([sys.executable, "-c", hide_pytest], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == ('ModuleNotFoundError: mmlatent.testing needs pytest: install the test extra, '
                    'pip install "mmlatent[test]"'), result.stderr


def test_the_test_extra_brings_pytest_and_dev_includes_it():
    core = extras(ROOT / "pyproject.toml")
    assert any(req.startswith("pytest>=") for req in core["test"])
    assert any(req.startswith("pytest-timeout") for req in core["test"])
    included = {extra.strip() for req in core["dev"] if req.startswith("mmlatent[")
                for extra in req[len("mmlatent["):req.index("]")].split(",")}
    assert "test" in included, core["dev"]


def test_every_plugin_with_tests_has_a_test_extra():
    example = ROOT / "docs" / "examples" / "mmlatent-example"
    for plugin in [*sorted((ROOT / "plugins").glob("mmlatent-*")), example]:
        if (plugin / "tests").is_dir():
            test = extras(plugin / "pyproject.toml").get("test", [])
            assert "mmlatent[test]" in test, f"{plugin.name}: no `test` extra with mmlatent[test] (pytest)"


def test_the_guide_installs_the_test_extra_before_running_the_tests():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    install, run = guide.index('pip install -e ".[test]"'), guide.index("pytest tests")
    assert install < run
