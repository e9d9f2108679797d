"""``mmlatent --help``, ``plugins`` and ``validate`` start without importing torch (issue: fast CLI).

Each command runs in a fresh interpreter that records whether torch was imported by the time it
exits; the registrations name the heavy classes by ``"module:Class"`` references, and those
references must resolve to what the specs promise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mmlatent
from mmlatent.diffusion.options import BUILTIN_SAMPLER_OPTIONS, live_sampler_options
from mmlatent.modality import Modality
from mmlatent.plugins import get_registry
from mmlatent.specs import DeferredCallable, ModalitySpec, is_reference, resolve_reference

ROOT = Path(__file__).resolve().parents[2]

#: Runs the CLI with argv, then prints whether torch (or any heavy package) is loaded.
PROBE = """
import sys
from mmlatent.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
heavy = sorted(name for name in ("torch", "torchvision", "torchaudio", "transformers", "multivae") if name in sys.modules)
print("HEAVY=" + ",".join(heavy))
print("CODE=" + str(code))
"""


def _probe(*argv: str) -> tuple[str, str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith(("HEAVY=", "CODE=")))
    assert "CODE" in lines, result.stdout + result.stderr
    return lines["HEAVY"], lines["CODE"]


@pytest.mark.parametrize("argv", [
    ("--help",),
    ("plugins",),
    ("plugins", "--json"),
    ("validate", "recipes/quickstart.yaml"),
    ("validate", "recipes/digits_audio.yaml"),
    ("validate", "recipes/cub_star.yaml"),
])
def test_command_imports_no_torch(argv: tuple[str, ...]) -> None:
    heavy, code = _probe(*argv)
    assert code in ("0", "None"), (argv, code)
    assert heavy == "", f"mmlatent {' '.join(argv)} imported {heavy}"


def test_invalid_recipe_is_reported_without_torch(tmp_path: Path) -> None:
    recipe = (ROOT / "recipes/quickstart.yaml").read_text()
    path = tmp_path / "bad.yaml"
    path.write_text(recipe.replace("sampler:", "sampler: no_such_sampler\n  unused:", 1)
                    if "sampler:" in recipe else recipe + "\nsampling: {sampler: no_such_sampler}\n")
    heavy, code = _probe("validate", str(path))
    assert code == "2"
    assert heavy == ""


def test_import_mmlatent_is_torch_free_and_lazy_names_resolve() -> None:
    code = ("import sys, mmlatent; assert 'torch' not in sys.modules; "
            "import mmlatent_image, mmlatent_text, mmlatent_audio; assert 'torch' not in sys.modules; "
            "mmlatent.Modality; assert 'torch' in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def test_builtin_sampler_table_matches_the_sampler_signatures() -> None:
    """The torch-free table ``mmlatent validate`` reads equals the registered functions' options."""
    live = live_sampler_options()
    assert set(live) == set(BUILTIN_SAMPLER_OPTIONS)
    for sampler, own in BUILTIN_SAMPLER_OPTIONS.items():
        assert set(own) == live[sampler], sampler


def test_every_registered_reference_resolves() -> None:
    registry = get_registry()
    for kind in registry.modalities:
        spec = registry.modality(kind)
        assert issubclass(spec.modality_class, Modality), kind
    for name in registry.datasets:
        spec = registry.dataset(name)
        for attribute in ("build", "fields", "has_labels", "splits_for"):
            function = getattr(spec, attribute)
            if isinstance(function, DeferredCallable):
                assert callable(resolve_reference(function.reference)), (name, attribute)
    for name in registry.models:
        spec = registry.model(name)
        for attribute in ("train", "load", "check"):
            function = getattr(spec, attribute)
            if isinstance(function, DeferredCallable):
                assert callable(resolve_reference(function.reference)), (name, attribute)


def test_references_are_checked() -> None:
    assert is_reference("mmlatent.builtin.vector:VectorModality")
    for bad in ("mmlatent.builtin.vector", "a:b:c", "a b:c", ":x", "x:", 3):
        assert not is_reference(bad)
    with pytest.raises(ImportError, match="no attribute 'Nope'"):
        resolve_reference("mmlatent.builtin.vector:Nope")
    with pytest.raises(ValueError, match="reference"):
        DeferredCallable("not a reference")
    spec = ModalitySpec(kind="v", modality="mmlatent.builtin.vector:VectorModality",
                        options=resolve_reference("mmlatent.builtin.options:VectorOptions"))
    built = spec.build("v", {"size": 3, "arch": "identity"}, 3)
    assert isinstance(built, mmlatent.Modality) and built.name == "v"
