"""Evaluate a run: ``mmlatent evaluate RUN`` and :func:`evaluate_run` (called at the end of training).

``mmlatent evaluate RUN [--sampler S] [--steps K] [--option KEY=VALUE] [--guidance NAME=W] [--limit N]
[--seed S] [--split val]``
loads the run, trains (once) or reloads its coherence classifiers, measures coherence, Frechet
distances (classifier features; FID and CLIP-S when the recipe's ``evaluation.inception_weights`` /
``evaluation.clip_model`` name local files), writes ``RUN/metrics.json``, renders samples and
``RUN/report.md``, and prints a table. ``mmlatent evaluate --compare RUN_A RUN_B ...`` prints the
metrics of several runs side by side (from their ``metrics.json``).

``metrics.json`` (DESIGN.md section 4)::

    {"coherence": {"joint": 0.91, "gray->color": 0.88, ...},     # fractions in [0, 1]
     "fd": {"joint:gray": 3.9, "gray->color": 10.1, ...},         # classifier-feature Frechet distances
     "fid": {...}, "clip_s": {...},                               # only when configured
     "nfe": 20, "sampler": {"name": "heun", "steps": 10},
     "classifier_accuracy": {"gray": 0.97, "color": 0.93},
     "timings": {"classifiers_s": ..., "generation_s": ..., "total_s": ..., ...},
     "seed": 0, "limit": null, "num_items": 397, "split": "test", "guidance": null, "conditions": "all"}
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from mmlatent.checkpoint import save_json
from mmlatent.diffusion.plan import SamplingPlan
from mmlatent.errors import UserError
from mmlatent.evaluation.classifiers import (
    ClassifierSettings,
    load_or_train_classifiers,
)
from mmlatent.evaluation.clip_score import ClipScorer
from mmlatent.evaluation.coherence import (
    MAX_ALL_SUBSETS,
    CoherenceEvaluator,
    EvaluationResult,
)
from mmlatent.evaluation.data import EvaluationError, load_split
from mmlatent.evaluation.fid import load_inception
from mmlatent.evaluation.report import write_report
from mmlatent.model import GenerativeModel, load_model
from mmlatent.rundir import is_run_directory
from mmlatent.runlock import RunLock

__all__ = [
    "build_evaluator",
    "compare_table",
    "evaluate_command",
    "evaluate_run",
    "load_embeddings",
    "format_metrics",
    "metrics_record",
]


def _recipe_evaluation(pipe: GenerativeModel) -> Any:
    """The recipe's ``evaluation`` section (or None for pipelines without one)."""
    return getattr(getattr(pipe, "recipe", None), "evaluation", None)


def _resolve_path(value: Any, run_dir: Path | None) -> Path | None:
    """A configured local path; a relative one that does not exist is also tried under the run dir."""
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and not path.exists() and run_dir is not None and (run_dir / path).exists():
        return run_dir / path
    return path


def load_embeddings(modalities: dict[str, Any], paths: dict[str, Path | None],
                    device: str | torch.device = "cpu") -> dict[str, Any]:
    """``{name: embedding network}`` from local weight files (``evaluation.embeddings``): each built by
    its modality's :meth:`~mmlatent.modality.Modality.build_embedding`; an unknown name, a kind
    without one or an unreadable file is an :class:`EvaluationError` naming it."""
    networks = {}
    for name, path in paths.items():
        if path is None:
            continue
        if name not in modalities:
            raise EvaluationError(f"evaluation.embeddings.{name}: no modality {name!r}")
        if not Path(path).is_file():
            raise EvaluationError(f"evaluation.embeddings.{name}: weights file not found: {path}")
        try:
            network = modalities[name].build_embedding(Path(path))
        except Exception as error:  # noqa: BLE001 - any unreadable or mismatching file, named
            raise EvaluationError(f"evaluation.embeddings.{name}: cannot load {path}: "
                                  f"{type(error).__name__}: {error}") from None
        if network is None:
            raise EvaluationError(f"evaluation.embeddings.{name}: modality kind "
                                  f"{type(modalities[name]).__name__} has no embedding network")
        networks[name] = network.to(device).eval() if isinstance(network, torch.nn.Module) else network
    return networks


def build_evaluator(
    pipe: GenerativeModel,
    run_dir: str | Path | None,
    *,
    limit: int | None = None,
    batch_size: int = 256,
    classifier_settings: ClassifierSettings | dict[str, Any] | None = None,
    inception_weights: str | Path | None = None,
    clip_model: str | Path | None = None,
    embeddings: dict[str, str | Path] | None = None,
    keep_samples: int | None = None,
    max_all_subsets: int = MAX_ALL_SUBSETS,
    progress: bool = True,
    split: str = "test",
) -> tuple[CoherenceEvaluator, dict[str, float]]:
    """Set up the evaluation of a pipeline once (data, classifiers, FID/CLIP models).

    Returns the evaluator (call ``.run(sampler, steps, seed, guidance, options)`` as often as
    needed) and the setup timings. Missing arguments fall back on the recipe's ``evaluation``
    section. ``split``: the labelled split evaluated (``"val"`` to choose settings without looking
    at the test pairs); classifiers always train on ``"train"``.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    section = _recipe_evaluation(pipe)
    if classifier_settings is None:
        epochs = getattr(section, "classifier_epochs", None)
        classifier_settings = ClassifierSettings(epochs=epochs) if epochs else ClassifierSettings()
    settings = ClassifierSettings.from_mapping(classifier_settings)
    if settings.with_reconstructions is None:  # the run's judges, whatever else the caller set
        settings = replace(settings, with_reconstructions=tuple(getattr(section, "classifier_reconstructions", None) or ()))
    if inception_weights is None:
        inception_weights = getattr(section, "inception_weights", None)
    if clip_model is None:
        clip_model = getattr(section, "clip_model", None)
    if keep_samples is None:
        keep_samples = int(getattr(section, "samples", None) or 16)

    started = time.perf_counter()
    test_data = load_split(pipe, split)
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    classifiers = load_or_train_classifiers(
        pipe, run_dir, test_data, lambda: load_split(pipe, "train", keep_incomplete=True), settings, progress=progress
    )
    classifier_seconds = time.perf_counter() - started

    extractor = scorer = None
    inception_path = _resolve_path(inception_weights, run_dir)
    if inception_path is not None:
        extractor = load_inception(inception_path, device=getattr(pipe, "device", "cpu"))
    clip_path = _resolve_path(clip_model, run_dir)
    if clip_path is not None:
        scorer = ClipScorer.from_pretrained(clip_path, device=getattr(pipe, "device", "cpu"))
    if embeddings is None:
        embeddings = dict(getattr(section, "embeddings", None) or {})
    networks = load_embeddings(pipe.modalities, {name: _resolve_path(path, run_dir)
                                                 for name, path in embeddings.items()},
                               device=getattr(pipe, "device", "cpu"))

    evaluator = CoherenceEvaluator(
        pipe,
        classifiers,
        test_data,
        limit=limit,
        batch_size=batch_size,
        max_all_subsets=max_all_subsets,
        image_features=extractor,
        clip_scorer=scorer,
        embeddings=networks,
        keep_samples=keep_samples,
        progress=progress,
    )
    timings = {
        "data_s": round(load_seconds, 4),
        "classifiers_s": round(classifier_seconds, 4),
        "real_features_s": round(evaluator.setup_seconds, 4),
    }
    return evaluator, timings


def _sampler_record(plan: SamplingPlan) -> dict[str, Any]:
    """``metrics.json["sampler"]``: the name, steps and options of the plan actually used."""
    record: dict[str, Any] = {"name": plan.sampler, "steps": plan.steps}
    if plan.options:
        record["options"] = dict(plan.options)
    return record


def metrics_record(
    evaluator: CoherenceEvaluator,
    result: EvaluationResult,
    *,
    sampler: dict[str, Any],
    seed: int,
    limit: int | None,
    guidance: dict[str, float] | None,
    timings: dict[str, float],
    split: str = "test",
) -> dict[str, Any]:
    """The ``metrics.json`` object of one evaluation."""
    record: dict[str, Any] = {
        "coherence": result.coherence,
        "fd": result.fd,
    }
    if result.fid:
        record["fid"] = result.fid
    if result.fd_embedding:
        record["fd_embedding"] = result.fd_embedding
    if result.clip_s:
        record["clip_s"] = result.clip_s
    record.update(
        {
            "nfe": result.nfe,
            "sampler": sampler,
            "plan": result.plan.record() if result.plan is not None else None,
            "classifier_accuracy": {name: c.accuracy for name, c in evaluator.classifiers.items()},
            "timings": {**timings, **result.timings},
            "seed": seed,
            "limit": limit,
            "num_items": result.num_items,
            "split": split,
            "guidance": guidance or None,
            "conditions": "all" if len(evaluator.subsets) == 2 ** len(evaluator.names) - 2 else "single+leave-one-out",
        }
    )
    return record


def evaluate_run(
    run_dir: str | Path,
    sampler: str | None = None,
    steps: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    guidance: dict[str, float] | None = None,
    write: bool = True,
    *,
    pipeline: GenerativeModel | None = None,
    batch_size: int = 256,
    classifier_settings: ClassifierSettings | dict[str, Any] | None = None,
    inception_weights: str | Path | None = None,
    clip_model: str | Path | None = None,
    embeddings: dict[str, str | Path] | None = None,
    progress: bool = True,
    device: str | None = None,
    options: dict[str, Any] | None = None,
    split: str = "test",
    recipe_defaults: bool = True,
) -> dict[str, Any]:
    """Evaluate a run; returns the ``metrics.json`` object (and writes it, the samples and the report).

    ``options``: sampler options (as ``mmlatent evaluate --option KEY=VALUE``); ``split``: the
    labelled split evaluated (``"val"`` to choose settings); ``recipe_defaults=False``: only the
    sampler settings given here (the plan of :meth:`GenerativeModel.plan`). ``metrics["plan"]``
    records the sampling plan used.

    ``pipeline``: an already loaded model (:class:`GenerativeModel`); loaded with its family's ``load`` from
    ``run_dir`` (on ``device``, default the CPU) when None. ``limit`` defaults to the recipe's ``evaluation.limit``. Raises
    :class:`EvaluationError` when the run cannot be evaluated (no labels, no classifier, ...).
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if pipeline is None:
        pipeline = load_model(run_dir, device=device or "cpu")
    if limit is None:
        limit = getattr(_recipe_evaluation(pipeline), "limit", None)
    evaluator, timings = build_evaluator(
        pipeline,
        run_dir,
        limit=limit,
        batch_size=batch_size,
        classifier_settings=classifier_settings,
        inception_weights=inception_weights,
        clip_model=clip_model,
        embeddings=embeddings,
        progress=progress,
        split=split,
    )
    plan = pipeline.plan(sampler, steps, guidance, recipe_defaults, **dict(options or {}))
    result = evaluator.run(seed=seed, plan=plan)
    timings["total_s"] = round(time.perf_counter() - started, 4)
    metrics = metrics_record(
        evaluator,
        result,
        sampler=_sampler_record(plan),
        seed=seed,
        limit=limit,
        guidance=guidance,
        timings=timings,
        split=split,
    )
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_json(run_dir / "metrics.json", metrics)
        write_report(run_dir, metrics, result.samples, pipeline)
    return metrics


# ------------------------------------------------------------------------------------ tables
def _format_value(key: str, value: Any, section: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if section in ("coherence", "classifier_accuracy"):
        return f"{100.0 * value:.2f}%"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


_SECTIONS = ("coherence", "fd", "fid", "clip_s", "classifier_accuracy")
_TITLES = {
    "coherence": "coherence",
    "fd": "Frechet distance (classifier features)",
    "fid": "FID (Inception-v3)",
    "clip_s": "CLIP-S",
    "classifier_accuracy": "classifier test accuracy",
}


def format_metrics(metrics: dict[str, Any]) -> str:
    """A readable multi-line rendering of one ``metrics.json`` object."""
    sampler = metrics.get("sampler") or {}
    lines = [
        f"sampler {sampler.get('name')} (steps {sampler.get('steps')}), NFE per sample {metrics.get('nfe')}, "
        f"seed {metrics.get('seed')}, {metrics.get('num_items')} test items"
        + (f" (limit {metrics['limit']})" if metrics.get("limit") else "")
    ]
    for section in _SECTIONS:
        values = metrics.get(section) or {}
        if values:
            rows = [(key, _format_value(key, value, section)) for key, value in values.items()]
            lines += ["", _table((_TITLES[section], "value"), rows)]
    timings = metrics.get("timings") or {}
    if timings:
        lines += ["", "timings: " + ", ".join(f"{key} {value}" for key, value in timings.items())]
    return "\n".join(lines)


def _flatten(metrics: dict[str, Any]) -> dict[str, str]:
    flat: dict[str, str] = {}
    sampler = metrics.get("sampler") or {}
    flat["sampler"] = f"{sampler.get('name')}/{sampler.get('steps')}"
    flat["nfe"] = str(metrics.get("nfe"))
    for section in _SECTIONS:
        for key, value in (metrics.get(section) or {}).items():
            label = key if section == "coherence" else f"{section}[{key}]"
            flat[label] = _format_value(key, value, section)
    return flat


def compare_table(runs: Sequence[str | Path]) -> str:
    """One column per run, one row per metric (union of the runs' keys) from their metrics.json."""
    columns = []
    for run in runs:
        path = Path(run) / "metrics.json"
        if not path.is_file():
            raise EvaluationError(f"{path} not found: run `mmlatent evaluate {run}` first")
        try:
            columns.append(_flatten(json.loads(path.read_text())))
        except (ValueError, AttributeError) as error:
            raise EvaluationError(f"{path} is not a metrics file ({error})") from error
    keys: list[str] = []
    for column in columns:
        keys += [key for key in column if key not in keys]
    header = ["metric", *[Path(run).name or str(run) for run in runs]]
    rows = [[key, *[column.get(key, "-") for column in columns]] for key in keys]
    return _table(header, rows)


# ----------------------------------------------------------------------------------- command
def evaluate_command(args: Any) -> int:
    """``mmlatent evaluate`` (argument object from :mod:`mmlatent.cli`, with ``--guidance`` and
    ``--option`` parsed into ``args.guidance`` and ``args.options``); returns the exit code.

    Errors propagate as exceptions with an ``exit_code`` (:mod:`mmlatent.errors` prints them).
    """

    if getattr(args, "compare", None):
        runs = ([args.run] if args.run else []) + list(args.compare)
        print(compare_table(runs))
        return 0
    if not args.run:
        raise UserError("mmlatent evaluate needs a RUN directory (or --compare RUN_A RUN_B ...)")
    guidance = args.guidance or None
    options = dict(args.options)
    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise UserError(f"no run directory at {run_dir}")
    if not is_run_directory(run_dir):
        raise UserError(f"{run_dir} is not an mmlatent run directory")
    try:
        with RunLock(run_dir, "evaluate"):  # one writer: not while the run trains or is evaluated
            metrics = evaluate_run(run_dir, sampler=args.sampler, steps=args.steps, limit=args.limit,
                                   seed=args.seed, guidance=guidance, options=options,
                                   split=args.split, recipe_defaults=args.recipe_defaults)
    except (ValueError, FileNotFoundError, KeyError) as error:  # bad sampler name, broken run, ...
        raise UserError(f"{type(error).__name__}: {error}") from error
    print(format_metrics(metrics))
    print(f"\nwrote {run_dir / 'metrics.json'} and {run_dir / 'report.md'}")
    return 0
