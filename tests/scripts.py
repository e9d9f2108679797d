"""Load a script that is not a package module (benchmarks/, docs/ generators) so tests can call it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_script(path: str | Path) -> ModuleType:
    """Execute the Python file at ``path`` as a fresh module named after its stem and return it."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
