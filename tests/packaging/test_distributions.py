"""Every distribution as a user gets it: built wheels and sdists, installed into a fresh environment.

The core and each plugin in ``plugins/`` are built (``python -m build``: sdist, then the wheel from
the sdist) from a copy of the working tree. The wheels go into a fresh virtual environment in which
no source tree is importable; its other packages are exactly the closure of the wheels' declared
requirements, taken from this environment (symbolic links, so torch is not installed twice: a
dependency the wheels forget to declare is missing there and the run fails). In it, from an empty
folder: ``pip check``, ``mmlatent recipes``, ``mmlatent train quickstart`` (a few steps) and
``mmlatent sample``; each plugin's tests run from its extracted sdist.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = [ROOT, *sorted(path.parent for path in (ROOT / "plugins").glob("*/pyproject.toml"))]
#: Extras installed with the wheels: pytest (the plugins' tests from their sdists) and their test data.
EXTRAS = ("test",)
#: A quickstart of a few steps: the recipe by name, every stage, the evaluation on a few items.
TINY_QUICKSTART = ["modalities.gray.train.epochs=1", "modalities.color.train.epochs=1",
                   "modalities.caption.train.epochs=1", "diffusion.train.steps=40",
                   "diffusion.train.checkpoint_every=40", "evaluation.classifier_epochs=1", "evaluation.limit=20",
                   "evaluation.samples=16", "data.options.k=1"]

pytestmark = pytest.mark.timeout(1200)


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, command))} -> {result.returncode}\n{result.stdout[-3000:]}\n" \
                                   f"{result.stderr[-5000:]}"
    return result.stdout + result.stderr


def _copy_tree(destination: Path) -> None:
    """The working tree's files (tracked and new, not ignored) without build outputs."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if not (source.exists() or source.is_symlink()):
            continue  # deleted in the working tree
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def _requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.message_from_bytes(archive.read(name))
    return [Requirement(text) for text in message.get_all("Requires-Dist") or []]


def _wanted(requirement: Requirement, extras: tuple[str, ...]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras))


def _dependency_closure(wheels: list[Path], own: set[str]) -> list[metadata.Distribution]:
    """The installed distributions the wheels need (their requirements and theirs, recursively)."""
    pending = [r for wheel in wheels for r in _requirements(wheel) if _wanted(r, EXTRAS)]
    found: dict[str, metadata.Distribution] = {}
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in own or name in found:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{requirement} is declared but not installed in the test environment")
        found[name] = distribution
        extras = tuple(requirement.extras)
        pending += [r for r in map(Requirement, distribution.requires or []) if _wanted(r, extras)]
    return list(found.values())


def _dependency_view(distributions: list[metadata.Distribution], view: Path) -> None:
    """Links to the top-level files of ``distributions`` (packages, modules, dist-info folders)."""
    view.mkdir()
    for distribution in distributions:
        base = Path(distribution.locate_file(""))
        for file in distribution.files or []:
            parts = Path(file).parts
            if not parts or ".." in parts or parts[0] == "__pycache__" or parts[0].endswith(".pth"):
                continue
            link = view / parts[0]
            if not (link.exists() or link.is_symlink()):
                link.symlink_to(base / parts[0])


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, Path]:
    """Build every distribution, install the wheels into a fresh environment; its paths."""
    work = tmp_path_factory.mktemp("packaging")
    tree, dist = work / "tree", work / "dist"
    _copy_tree(tree)
    for source in DISTRIBUTIONS:
        _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(tree / source.relative_to(ROOT))],
             cwd=tree)
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == len(sdists) == len(DISTRIBUTIONS), [p.name for p in dist.iterdir()]
    own = {canonicalize_name(wheel.name.split("-")[0]) for wheel in wheels}
    view = work / "dependencies"
    _dependency_view(_dependency_closure(wheels, own), view)
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=work).strip())
    (purelib / "_dependencies.pth").write_text(f"{view}\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          *map(str, wheels)], cwd=work)
    home = work / "user"
    home.mkdir()
    return {"python": python, "bin": venv / "bin", "dist": dist, "home": home, "work": work}


def _environment(fresh: dict[str, Path]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "MMLATENT_"))}
    env.update(HOME=str(fresh["home"]), MPLCONFIGDIR=str(fresh["home"] / "mpl"), PATH=f"{fresh['bin']}:{env['PATH']}")
    return env


def test_sdists_and_wheels_carry_what_users_need(fresh) -> None:
    dist = fresh["dist"]
    core = zipfile.ZipFile(next(dist.glob("mmlatent-*.whl"))).namelist()
    assert "mmlatent/recipes/quickstart.yaml" in core and "mmlatent/py.typed" in core
    assert any(name.endswith("licenses/LICENSE") for name in core)
    for sdist in dist.glob("*.tar.gz"):
        names = tarfile.open(sdist).getnames()
        assert any(name.endswith("/LICENSE") for name in names), sdist.name
        if not sdist.name.startswith("mmlatent-0"):
            assert any(name.endswith("/tests/conftest.py") or "/tests/test_" in name for name in names), sdist.name
    for wheel in dist.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            text = archive.read(next(n for n in archive.namelist() if n.endswith("METADATA"))).decode()
        message = email.message_from_string(text)
        assert message["License-Expression"] == "MIT", wheel.name
        assert message.get_all("Project-URL"), wheel.name
        description = message.get_payload()
        assert "](" not in description.replace("](https://", ""), f"{wheel.name}: a relative link in its README"
        if not wheel.name.startswith("mmlatent-0"):
            assert any(r.startswith("mmlatent<0.2,>=0.1") or r.startswith("mmlatent>=0.1,<0.2")
                       for r in message.get_all("Requires-Dist")), wheel.name


def test_fresh_environment_has_no_source_tree_and_consistent_requirements(fresh) -> None:
    env = _environment(fresh)
    where = _run([str(fresh["python"]), "-c", "import mmlatent, mmlatent_image; print(mmlatent.__file__); "
                  "print(mmlatent_image.__file__)"], cwd=fresh["home"], env=env)
    purelib = sysconfig.get_paths()["purelib"]
    for line in where.split():
        assert str(fresh["work"] / "venv") in line and str(ROOT) not in line and purelib not in line, line
    _run([sys.executable, "-m", "pip", "--python", str(fresh["python"]), "check"], cwd=fresh["home"], env=env)


@pytest.mark.parametrize("overrides", [
    pytest.param(TINY_QUICKSTART, id="few-steps"),
    pytest.param([], id="full", marks=[pytest.mark.slow, pytest.mark.timeout(3600)]),  # the whole quickstart
])
def test_quickstart_by_name_from_the_wheels(fresh, overrides: list[str]) -> None:
    env = _environment(fresh)
    folder = fresh["work"] / f"user-project-{len(overrides)}"
    folder.mkdir()
    listed = _run(["mmlatent", "recipes"], cwd=folder, env=env)
    assert "quickstart" in listed and "plugins installed" in listed
    plugins = _run(["mmlatent", "plugins"], cwd=folder, env=env)
    for name in ("image", "text", "audio", "digits_pair", "spoken_digits", "mvtcae"):
        assert name in plugins
    _run(["mmlatent", "train", "quickstart", "--no-progress", *(f"--set={s}" for s in overrides)],
         cwd=folder, env=env, timeout=3000)
    run = folder / "runs" / "quickstart"
    assert (run / "metrics.json").is_file() and (run / "recipe.yaml").is_file()
    _run(["mmlatent", "sample", str(run), "--n", "4", "--out", str(folder / "samples")], cwd=folder, env=env)
    assert any((folder / "samples").rglob("*.png"))


@pytest.mark.parametrize("plugin", [path.name for path in DISTRIBUTIONS[1:]])
def test_plugin_tests_run_from_the_sdist(fresh, plugin: str) -> None:
    """Each plugin's tests from its sdist (its MANIFEST.in leaves out the ones about this repository's
    recipes and benchmarks)."""
    sdist = next(fresh["dist"].glob(f"{plugin.replace('-', '_')}-*.tar.gz"))
    target = fresh["work"] / "sdists"
    with tarfile.open(sdist) as archive:
        archive.extractall(target, filter="data")
    folder = target / sdist.name.removesuffix(".tar.gz")
    output = _run([str(fresh["python"]), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m",
                   "not slow", "tests"], cwd=folder, env=_environment(fresh), timeout=900)
    assert " passed" in output and " error" not in output
