"""Share a trained model: ``save_pretrained``, ``from_pretrained`` and ``push_to_hub``, for every family.

::

    model = MLDPipeline.load("runs/quickstart")      # or load_model(RUN) for any family
    model.save_pretrained("shared/quickstart")        # a folder with only what inference needs
    model.push_to_hub("user/mmlatent-quickstart")     # the same folder, uploaded to the Hugging Face Hub
    model = MLDPipeline.from_pretrained("user/mmlatent-quickstart")   # or a local folder

A *pretrained folder* is the part of a run directory that inference needs, under the run's own
relative paths (so every family's ``load`` reads it as it reads a run), and a model card::

    README.md                              model card (metadata: library_name mmlatent, tags)
    manifest.json                          size and SHA-256 of every other file, and "exported"
    recipe.yaml  plugins.json  metrics.json (when the run was evaluated)
    modalities/<name>.json                 fitted preprocessing
    autoencoders/<name>.safetensors  latent_stats.safetensors  score_net.safetensors      (MLD)
    model/<family>.safetensors             (the other families)
    students/<name>.safetensors, .json     (distilled students, when there are any)
    samples/*.png                          sample grids, shown in the model card

Not carried: ``checkpoints/`` (optimizer states), ``latents/`` (the encoded dataset),
``classifiers/``, curves, history, the log, and anything but safetensors, JSON, YAML and PNG.
Every copied run file is checked against the run's manifest while it is copied; the folder is
built next to its destination and moved in file by file, the manifest last. Loading checks every
file the manifest lists (a missing or changed one is an error naming it), then hands the folder
to the ``load`` of the family its recipe names (:class:`~mmlatent.families.ModelSpec`), so
``MLDPipeline.from_pretrained`` on a VAE baseline's folder returns that baseline's model.

``huggingface_hub`` is imported only when a Hub repository is read or written. This module sits
below :mod:`mmlatent.model` (whose :class:`~mmlatent.model.RecipeModel` inherits
:class:`PretrainedModel`) and does not import it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mmlatent.checkpoint import CheckpointError, atomic_write_text, load_json, save_json
from mmlatent.errors import UserError
from mmlatent.manifest import FORMAT, ManifestMismatch, file_digest, verify_files
from mmlatent.version import __version__

__all__ = ["CARD_NAME", "PretrainedError", "PretrainedModel", "check_pretrained", "export_pretrained",
           "export_command", "load_pretrained", "model_card", "pretrained_files", "push_pretrained",
           "resolve_pretrained"]

#: The model card of a pretrained folder (not in its manifest: a card may be edited on the Hub).
CARD_NAME = "README.md"
#: Run entries that only training needs (optimizer states, encoded dataset, evaluation classifiers).
TRAINING_ONLY = frozenset({"checkpoints", "latents", "classifiers"})
#: Suffixes of the files a pretrained folder carries (PNG only under ``samples/``).
INFERENCE_SUFFIXES = (".safetensors", ".json", ".yaml")
#: Run files outside the run's manifest that a pretrained folder carries when they exist.
EXTRA_FILES = ("plugins.json", "metrics.json")
#: A Hugging Face Hub repository id: ``name`` or ``owner/name``.
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


class PretrainedError(UserError):
    """A folder or Hub repository that is not a usable mmlatent model (the message says why and
    what to do; exit code 2)."""


# --------------------------------------------------------------------------------------- saving
def _carried(relative: str) -> bool:
    """Whether a run file (POSIX path relative to the run) belongs in a pretrained folder."""
    top, suffix = relative.split("/", 1)[0], Path(relative).suffix
    if relative in ("manifest.json", CARD_NAME) or top in TRAINING_ONLY:
        return False
    return suffix in INFERENCE_SUFFIXES or (top == "samples" and suffix == ".png")


def _read_manifest(root: Path) -> dict[str, Any]:
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise PretrainedError(f"{root} has no manifest.json (a run of an older mmlatent, or not a run): its files "
                              "cannot be checked, so it is not shared; train it again with this version")
    value = load_json(manifest, "run manifest")
    if not isinstance(value, dict) or not isinstance(value.get("files"), dict):
        raise ManifestMismatch(f"corrupt run manifest: {manifest} (expected an object with 'files')")
    return value


def pretrained_files(run_dir: str | Path) -> dict[str, dict[str, Any] | None]:
    """What a pretrained folder of ``run_dir`` (a run, or a pretrained folder) carries:
    ``{relative POSIX path: recorded {"size", "sha256"}, or None for a file the run did not
    record (plugins.json, metrics.json, the sample grids)}``, sorted by path."""
    root = Path(run_dir)
    recorded = _read_manifest(root)["files"]
    files: dict[str, dict[str, Any] | None] = {rel: digest for rel, digest in recorded.items() if _carried(rel)}
    for rel in EXTRA_FILES:
        if (root / rel).is_file():
            files.setdefault(rel, None)
    if (root / "samples").is_dir():
        for path in (root / "samples").rglob("*.png"):
            if path.is_file() and not path.is_symlink():
                files.setdefault(path.relative_to(root).as_posix(), None)
    for rel in files:
        if not (root / rel).is_file():
            raise ManifestMismatch(f"{root / rel} is missing: the run recorded it in its manifest; restore it "
                                   "(or finish the run with `mmlatent train RECIPE --output RUN --resume`)")
    return dict(sorted(files.items()))


def _copy_checked(source: Path, target: Path, recorded: Mapping[str, Any] | None) -> dict[str, Any]:
    """Copy ``source`` to ``target`` (a new file); returns the copy's digest, which must equal
    ``recorded`` when given (:class:`ManifestMismatch` naming ``source`` otherwise)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    digest = file_digest(target)
    if recorded is not None and digest != recorded:
        raise ManifestMismatch(f"{source} was changed after the run wrote it ({digest['size']} bytes, the run "
                               f"wrote {recorded['size']}): restore it or train the run again (nothing was saved)")
    return digest


def _is_export(folder: Path) -> bool:
    """A folder written by :func:`export_pretrained` (its manifest has ``"exported"``)."""
    try:
        value = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and isinstance(value.get("exported"), dict) and isinstance(value.get("files"), dict)


def _check_target(source: Path, out: Path) -> None:
    """Refuse a destination inside (or holding) the run, a file, or a folder of other files."""
    src, dst = source.resolve(), out.resolve()
    if dst == src or dst.is_relative_to(src) or src.is_relative_to(dst):
        raise PretrainedError(f"{out}: save a model into a folder of its own, not into or around its run {source}")
    if out.exists() and not out.is_dir():
        raise PretrainedError(f"{out} is a file, not a folder")
    if out.is_dir() and not _is_export(out):
        # dot entries (.git, .gitattributes, .cache of a cloned Hub repository) are left alone
        foreign = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise PretrainedError(f"{out} holds files that are not a saved mmlatent model ({shown}); give an empty "
                                  "or new folder (nothing was changed)")


def _family_requirements(family: str) -> dict[str, str]:
    """``{distribution: version}`` of the plugin providing model ``family`` (empty when unknown)."""
    from mmlatent.plugins import get_registry

    try:
        provider = get_registry().provider_of_model(family)
    except LookupError:
        return {}
    return {provider.name: provider.version}


def _requirements(folder: Path, family: str) -> dict[str, str]:
    """``{distribution: version}`` this model needs (from ``plugins.json`` and its family's plugin)."""
    needed: dict[str, str] = {"mmlatent": __version__}
    try:
        versions = json.loads((folder / "plugins.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        versions = {}
    entries = [*dict(versions.get("modalities") or {}).values(), versions.get("dataset") or {}]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("plugin"):
            needed[str(entry["plugin"])] = str(entry.get("version", ""))
    if isinstance(versions.get("mmlatent"), str):
        needed["mmlatent"] = versions["mmlatent"]
    needed.update(_family_requirements(family))
    return dict(sorted(needed.items()))


def export_pretrained(run_dir: str | Path, out_dir: str | Path, *, repo_id: str | None = None) -> Path:
    """Write the pretrained folder of the run (or pretrained folder) ``run_dir`` to ``out_dir``.

    ``out_dir`` may be new, empty, a cloned Hub repository (dot entries are kept) or an earlier
    export (replaced: files it listed that the new one does not are deleted). ``repo_id``: the
    Hub id shown in the model card's usage snippet. Returns ``out_dir``. Raises
    :class:`PretrainedError` for a destination that holds other files or lies in the run, and
    :class:`~mmlatent.manifest.ManifestMismatch` for a run file changed since the run wrote it
    (then nothing in ``out_dir`` changed).
    """
    source, out = Path(run_dir), Path(out_dir)
    _check_target(source, out)
    run_manifest = _read_manifest(source)
    files = pretrained_files(source)
    raw_recipe = _raw_recipe(source / "recipe.yaml")
    family = str((raw_recipe.get("model") or {}).get("family") or "mld")
    previous = set(load_json(out / "manifest.json")["files"]) if _is_export(out) else set()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        digests = {rel: _copy_checked(source / rel, staging / rel, files[rel]) for rel in files}
        requirements = _requirements(staging, family)
        exported = {"mmlatent": __version__, "family": family, "requires": requirements}
        metrics = load_json(staging / "metrics.json", "metrics") if "metrics.json" in files else None
        card = model_card(raw_recipe, (source / "recipe.yaml").read_text(encoding="utf-8"), metrics,
                          [rel for rel in files if rel.startswith("samples/")], requirements, repo_id)
        atomic_write_text(staging / CARD_NAME, card)
        manifest = {"format": FORMAT, "run_id": run_manifest.get("run_id"), "exported": exported, "files": digests}
        save_json(staging / "manifest.json", manifest)
        umask = os.umask(0)
        os.umask(umask)
        for private in (staging, staging / CARD_NAME, staging / "manifest.json"):  # mkstemp/mkdtemp: 0600/0700
            private.chmod((0o777 if private.is_dir() else 0o666) & ~umask)
        if not out.exists() or (out.is_dir() and not any(out.iterdir())):
            os.replace(staging, out)  # a new folder appears whole, or not at all
            return out
        # an earlier export (or a cloned repository): file by file, the manifest last; an
        # interruption leaves the old manifest, which then names the first file that differs
        for rel in [*files, CARD_NAME, "manifest.json"]:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, out / rel)
        for rel in sorted(previous - set(files)):
            _remove_with_empty_parents(out, rel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _remove_with_empty_parents(root: Path, rel: str) -> None:
    path = root / rel
    path.unlink(missing_ok=True)
    for parent in path.parents:
        if parent == root or not parent.is_relative_to(root):
            break
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def _raw_recipe(path: Path) -> dict[str, Any]:
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(f"unreadable recipe: {path} ({error})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"corrupt recipe: {path} (not a mapping)")
    return value


# ------------------------------------------------------------------------------------ model card
def _metric_rows(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(metric, value)`` rows of ``metrics.json`` (nested sections flattened as ``section: key``)."""
    rows: list[tuple[str, str]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if prefix == "" and key == "sampler":  # {"name": "heun", "steps": 10} reads best in one cell
                rows.append((name, ", ".join(f"{k} {v}" for k, v in value.items())))
            else:
                rows += _metric_rows(value, f"{name}: ")
        elif isinstance(value, float):
            rows.append((name, f"{value:.4g}"))
        elif isinstance(value, (int, str, bool)) or value is None:
            rows.append((name, str(value)))
    return rows


def model_card(recipe: Mapping[str, Any], recipe_text: str, metrics: Mapping[str, Any] | None,
               samples: list[str], requirements: Mapping[str, str], repo_id: str | None = None) -> str:
    """The ``README.md`` of a pretrained folder: Hugging Face metadata (``library_name: mmlatent``,
    tags: family, modality kinds, dataset), what the model is, how to load it, the plugins it
    needs, a metrics table (``metrics``: ``metrics.json`` or None), the ``samples`` grids (PNG paths
    relative to the folder) and the recipe."""
    from huggingface_hub import ModelCard, ModelCardData

    name = str(recipe.get("name", "model"))
    family = str((recipe.get("model") or {}).get("family") or "mld")
    modalities = dict(recipe.get("modalities") or {})
    kinds = sorted({str(cfg.get("kind")) for cfg in modalities.values() if isinstance(cfg, dict) and cfg.get("kind")})
    dataset = str((recipe.get("data") or {}).get("dataset", ""))
    tags = ["mmlatent", "multimodal", "generative", family, *kinds]
    if family == "mld":
        tags.append("latent-diffusion")
    if dataset:
        tags.append(f"dataset:{dataset}")
    data = ModelCardData(library_name="mmlatent", tags=list(dict.fromkeys(tags)))
    what = "Multi-modal Latent Diffusion (MLD)" if family == "mld" else f"the `{family}` model family"
    listed = ", ".join(f"`{n}` ({cfg.get('kind')}, latent {cfg.get('latent_dim')})"
                       for n, cfg in modalities.items() if isinstance(cfg, dict))
    where = repo_id or "PATH/TO/THIS/FOLDER"
    first = next(iter(modalities), "NAME")
    lines = [
        f"# {name}", "",
        f"A multi-modal generative model trained with [mmlatent](https://pypi.org/project/mmlatent/): {what} "
        f"over {len(modalities)} modalities: {listed}. It generates every modality jointly, or the missing ones "
        f"from any given subset. Trained on the `{dataset}` dataset.", "",
        "## Use", "",
        "```bash", f"pip install {' '.join(sorted(requirements))}", "```", "",
        "```python", "from mmlatent import MLDPipeline", "",
        f'model = MLDPipeline.from_pretrained("{where}")   # any family: the recipe names it',
        "out = model.generate(n=16, seed=0)                 # joint: {name: (16, *item_shape)}",
        f'out = model.generate(given={{"{first}": batch}}, seed=0)   # the other modalities from {first}',
        'model.render(out, "samples/")                      # image grids, caption lists, ...', "```", "",
        "Trained with " + ", ".join(f"{dist} {version}" for dist, version in requirements.items()) + ".", "",
    ]
    rows = _metric_rows(metrics) if metrics else []
    if rows:
        lines += ["## Metrics", "", "Coherence as fractions in [0, 1] (`given->target`), Frechet distances (`fd`) "
                  "lower is better; from the run's `metrics.json` (`mmlatent evaluate`).", "",
                  "| metric | value |", "| --- | --- |", *(f"| {m} | {v} |" for m, v in rows), ""]
    if samples:
        lines += ["## Samples", ""]
        for rel in samples:
            lines += [f"**{Path(rel).stem}**", "", f"![{Path(rel).stem}]({rel})", ""]
    lines += ["## Recipe", "", "```yaml", recipe_text.rstrip("\n"), "```", "",
              "## Files", "", "Weights in safetensors, settings and fitted preprocessing in JSON and YAML, sample "
              "grids in PNG; `manifest.json` holds the size and SHA-256 of every file but this card, checked when "
              "the model loads. No optimizer state, no pickle.", ""]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    return str(card)


# -------------------------------------------------------------------------------------- loading
def resolve_pretrained(source: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None,
                       local_files_only: bool = False, token: str | bool | None = None) -> Path:
    """The local folder of ``source``: a folder as it is, or a Hub repository id (``owner/name``)
    downloaded with ``huggingface_hub.snapshot_download`` (``revision``, ``cache_dir``,
    ``local_files_only`` and ``token`` passed on). Errors are :class:`PretrainedError`."""
    path = Path(source).expanduser()
    if path.exists():
        if revision is not None:
            raise PretrainedError(f"{source} is a local folder: revision={revision!r} applies to Hub repositories only")
        return path
    if not _REPO_ID.match(str(source)):
        raise PretrainedError(f"no folder at {source} (and it is not a Hugging Face Hub repository id such as "
                              "'user/model')")
    import huggingface_hub
    from huggingface_hub.utils import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        folder = huggingface_hub.snapshot_download(
            str(source), revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token,
            library_name="mmlatent", library_version=__version__)
    except LocalEntryNotFoundError:
        raise PretrainedError(f"{source}: not in the Hub cache{f' {cache_dir}' if cache_dir else ''} and not "
                              "downloadable (offline, HF_HUB_OFFLINE=1 or local_files_only=True); connect and "
                              f"try again, or give a local folder (no folder {source} here either)") from None
    except GatedRepoError:
        raise PretrainedError(f"{source}: the Hub repository is gated; accept its terms on the Hub and log in "
                              "(`hf auth login`, or token=...)") from None
    except RevisionNotFoundError:
        raise PretrainedError(f"{source}: the Hub repository has no revision {revision!r}") from None
    except RepositoryNotFoundError:
        raise PretrainedError(f"no folder {source} here, and no Hub repository {source} (or it is private: log "
                              "in with `hf auth login`, or pass token=...)") from None
    except (HfHubHTTPError, ConnectionError) as error:
        raise PretrainedError(f"{source}: cannot download from the Hugging Face Hub ({error})") from None
    return Path(folder)


def check_pretrained(folder: str | Path) -> dict[str, Any]:
    """Check that ``folder`` is an mmlatent model; returns its manifest.

    A pretrained folder (manifest with ``"exported"``) must hold every file its manifest lists,
    unchanged (:class:`~mmlatent.manifest.ManifestMismatch` naming the first that is missing or
    differs); a run directory is checked file by file by its family's ``load``. A folder without
    ``recipe.yaml`` and ``manifest.json`` is a :class:`PretrainedError`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PretrainedError(f"{folder} is not a folder")
    missing = [name for name in ("recipe.yaml", "manifest.json") if not (folder / name).is_file()]
    if missing:
        raise PretrainedError(f"{folder} is not an mmlatent model: it has no {' and no '.join(missing)} (a model "
                              "folder is written by model.save_pretrained(DIR), model.push_to_hub(REPO) or "
                              "`mmlatent export RUN --out DIR`; a run directory of `mmlatent train` loads too)")
    manifest = _read_manifest(folder)
    if isinstance(manifest.get("exported"), dict):
        listed = [folder / rel for rel in manifest["files"]]
        for path in listed:
            if not path.is_file():
                raise ManifestMismatch(f"{path} is missing: the model folder is incomplete (download or copy it "
                                       "again)")
        verify_files(folder, listed)
    return manifest


def load_pretrained(source: str | Path, device: Any = "cpu", *, revision: str | None = None,
                    cache_dir: str | Path | None = None, local_files_only: bool = False,
                    token: str | bool | None = None) -> Any:
    """The model in ``source`` (a pretrained folder, a run directory or a Hub repository id) as its
    family's :class:`~mmlatent.model.GenerativeModel`, on ``device``.

    The folder is checked (:func:`check_pretrained`), its recipe validated with the installed
    plugins (a missing plugin is a :class:`PretrainedError` naming the distributions the model
    was trained with), and loaded by the ``load`` of the family its recipe names.
    """
    from mmlatent.plugins import get_registry
    from mmlatent.recipe import RecipeError, load_recipe

    folder = resolve_pretrained(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                                token=token)
    manifest = check_pretrained(folder)
    exported = manifest.get("exported") if isinstance(manifest.get("exported"), dict) else {}
    family = str((_raw_recipe(folder / "recipe.yaml").get("model") or {}).get("family") or "mld")
    needs = exported.get("requires") or _requirements(folder, family)
    hint = "it was trained with " + ", ".join(f"{dist} {version}" for dist, version in needs.items())
    try:
        recipe = load_recipe(folder / "recipe.yaml")
    except RecipeError as error:
        raise PretrainedError(f"{source}: the model's recipe does not validate with the installed plugins ({hint}; "
                              f"install them):\n{error.render()}") from None
    try:
        spec = get_registry().model(recipe.model.family)
    except LookupError as error:
        raise PretrainedError(f"{source}: {error} ({hint}; install them)") from None
    return spec.load(folder, device)


# ------------------------------------------------------------------------------------ uploading
def push_pretrained(run_dir: str | Path, repo_id: str, *, token: str | bool | None = None,
                    private: bool | None = None, revision: str | None = None, commit_message: str | None = None,
                    create_pr: bool = False) -> Any:
    """Save the pretrained folder of ``run_dir`` in a temporary folder and upload it to the Hub
    repository ``repo_id`` (created when missing: ``HfApi.create_repo(exist_ok=True)``; the branch
    ``revision`` too). The upload replaces what the repository held (``delete_patterns="*"``,
    ``.gitattributes`` stays), so that it holds exactly one model. Returns ``upload_folder``'s
    commit info."""
    if not _REPO_ID.match(repo_id) or "/" not in repo_id:
        raise PretrainedError(f"{repo_id!r} is not a Hub repository id: expected 'owner/name'")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="mmlatent-push-") as tmp:
        folder = export_pretrained(run_dir, Path(tmp) / "model", repo_id=repo_id)
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model", revision=revision,
                                 commit_message=commit_message or f"Upload mmlatent model ({Path(run_dir).name})",
                                 create_pr=create_pr, delete_patterns="*")


# ------------------------------------------------------------------------------- the mixin
class PretrainedModel:
    """``save_pretrained``, ``from_pretrained`` and ``push_to_hub`` for every model family
    (:class:`~mmlatent.model.RecipeModel` inherits them). Saving copies the checked files of the
    run directory the model was loaded from (``run_dir``): weights changed in memory since are
    not saved."""

    run_dir: Path | None

    def _source_run(self) -> Path:
        if getattr(self, "run_dir", None) is None:
            raise PretrainedError("this model was built in memory, not loaded from a run directory: save_pretrained "
                                  "shares a trained run (load it with load_model(RUN) or from_pretrained first)")
        return Path(self.run_dir)

    def save_pretrained(self, save_directory: str | Path, *, repo_id: str | None = None) -> Path:
        """Write the model as a pretrained folder (:func:`export_pretrained`); returns its path.
        ``repo_id``: the Hub id for the model card's usage snippet."""
        return export_pretrained(self._source_run(), save_directory, repo_id=repo_id)

    @classmethod
    def from_pretrained(cls, source: str | Path, device: Any = "cpu", *, revision: str | None = None,
                        cache_dir: str | Path | None = None, local_files_only: bool = False,
                        token: str | bool | None = None) -> Any:
        """Load a pretrained folder, run directory or Hub repository id (:func:`load_pretrained`).
        Returns the model of the family its recipe names, whichever class this is called on."""
        return load_pretrained(source, device, revision=revision, cache_dir=cache_dir,
                               local_files_only=local_files_only, token=token)

    def push_to_hub(self, repo_id: str, *, token: str | bool | None = None, private: bool | None = None,
                    revision: str | None = None, commit_message: str | None = None, create_pr: bool = False) -> Any:
        """Upload the pretrained folder to the Hub repository ``repo_id`` (:func:`push_pretrained`)."""
        return push_pretrained(self._source_run(), repo_id, token=token, private=private, revision=revision,
                               commit_message=commit_message, create_pr=create_pr)


# ---------------------------------------------------------------------------------- the command
def export_command(args: Any) -> int:
    """``mmlatent export RUN [--out DIR] [--push-to-hub OWNER/NAME [--private]]``: load the run (any
    family; also a pretrained folder or Hub id), then save its pretrained folder and/or upload it."""
    if not args.out and not args.push_to_hub:
        raise UserError("give --out DIR (a model folder) and/or --push-to-hub OWNER/NAME")
    model = load_pretrained(args.run)
    if args.out:
        folder = model.save_pretrained(args.out, repo_id=args.push_to_hub)
        print(f"model saved to {folder} ({len(load_json(folder / 'manifest.json')['files'])} files and {CARD_NAME})")
    if args.push_to_hub:
        commit = model.push_to_hub(args.push_to_hub, private=True if args.private else None)
        print(f"model uploaded to {getattr(commit, 'commit_url', None) or args.push_to_hub}")
    return 0
