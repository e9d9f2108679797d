"""Fixtures of the plugin tests.

``make_plugin`` writes throw-away plugin distributions (modules + a ``.dist-info``) into a directory
on sys.path: importlib.metadata finds them exactly as it finds pip-installed ones, so the
registry's real discovery loop runs (test_installed.py builds and pip-installs real ones).
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from pathlib import Path

import pytest

import mmlatent.plugins as plugins


HEADER = """\
import mmlatent
from pydantic import BaseModel, ConfigDict
from mmlatent.builtin.vector import VectorModality, VectorOptions


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


def kind(name):
    return mmlatent.ModalitySpec(kind=name, modality=VectorModality, options=VectorOptions)


def dataset(name):
    return mmlatent.DatasetSpec(name=name, build=lambda options, split: [], fields=lambda options: ["x"],
                                options=Options)
"""


def write_dist(
    root: Path, name: str, version: str, modules: dict[str, str], entry_points: dict[str, str]
) -> None:
    """``modules``: module name -> source (HEADER is prepended); ``entry_points``: ep name -> value."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(HEADER + "\n" + textwrap.dedent(source))
    info = root / f"{re.sub(r'[-.]+', '_', name)}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {value}\n" for ep, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[mmlatent]\n{lines}")


@pytest.fixture
def guide_recipe() -> str:
    """The recipe docs/plugins.md shows for its example plugin (the guide's first ```yaml block)."""
    guide = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
    return re.search(r"^```yaml\n(.*?)^```$", guide.read_text(), re.MULTILINE | re.DOTALL).group(1)


@pytest.fixture(autouse=True)
def _isolated_plugin_settings(monkeypatch):
    """No inherited MMLATENT_* settings; a registry reloaded by a test does not leak into the next."""
    monkeypatch.delenv(plugins.ENV_LOAD_PLUGINS, raising=False)
    monkeypatch.delenv(plugins.ENV_STRICT_PLUGINS, raising=False)
    cached = plugins._registry
    yield
    plugins._registry = cached


@pytest.fixture
def make_plugin(tmp_path, monkeypatch):
    """``make_plugin(dist_name, version, modules={name: source}, entry_points={ep: value})``.

    Writes a distribution into a directory put on sys.path; entry points default to one per module.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules_made: list[str] = []

    def make(name, version="1.0", *, modules, entry_points=None):
        write_dist(site, name, version, modules, entry_points or {m: m for m in modules})
        modules_made.extend(modules)
        importlib.invalidate_caches()

    yield make
    for module in modules_made:
        sys.modules.pop(module, None)
