"""docs/plugins.md shows the example plugin's real files, verbatim: the guide cannot drift from
what test_installed.py builds, installs and tests."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDE = DOCS / "plugins.md"
EXAMPLE = DOCS / "examples" / "mmlatent-example"

# A caption line "`mmlatent-example/<path>`:" followed by a fenced code block.
SHOWN_FILE = re.compile(r"^`mmlatent-example/([^`]+)`:\n\n```[a-z]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def example_files() -> dict[str, str]:
    skip = {"__pycache__", "build"}
    return {
        path.relative_to(EXAMPLE).as_posix(): path.read_text()
        for path in sorted(EXAMPLE.rglob("*"))
        if path.is_file() and not skip & set(path.parts) and ".egg-info" not in path.as_posix()
    }


def test_guide_shows_every_example_file_verbatim():
    shown = {path: text for path, text in SHOWN_FILE.findall(GUIDE.read_text())}
    files = example_files()
    assert set(shown) == set(files), "docs/plugins.md must show exactly the files of docs/examples/mmlatent-example"
    for path, text in files.items():
        assert shown[path] == text, f"docs/plugins.md shows a different {path} than docs/examples/mmlatent-example"


def test_the_example_is_a_complete_distribution(guide_recipe):
    files = example_files()
    assert "[project.entry-points.mmlatent]" in files["pyproject.toml"]
    assert 'example = "mmlatent_example.plugin"' in files["pyproject.toml"]
    assert "from mmlatent.testing import" in files["tests/test_plugin.py"]
    assert "kind: category" in guide_recipe and "dataset: remainders" in guide_recipe


def test_guide_documents_listing_limiting_and_debugging():
    guide = GUIDE.read_text()
    for needle in ("mmlatent plugins --json", "MMLATENT_LOAD_PLUGINS", "MMLATENT_STRICT_PLUGINS=1",
                   "mmlatent.testing", "ModalityContract", "DatasetContract", '"error"'):
        assert needle in guide, needle
