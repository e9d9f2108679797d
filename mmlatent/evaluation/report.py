"""``RUN/report.md``: a run's evaluation for people, opening with pictures.

Layout: a one-line summary (sampler, NFE, seed, test items), then the samples (joint generation and
one section per condition, rendered by each modality's own plugin through ``pipe.render`` into
``RUN/samples/evaluation/``: ``joint_<name>.png``, ``given-<a+b>_<name>.png``, ...), the metrics
tables (coherence, Frechet distances, FID, CLIP-S), the classifiers' test accuracies, the training
curves (``RUN/curves/*.png`` written by training) and the timings. Renderings that are not images
(text lines, tensors) are linked, and text files are quoted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from torch import Tensor

from mmlatent.checkpoint import atomic_write_text
from mmlatent.model import GenerativeModel

__all__ = ["render_samples", "write_report"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
_TEXT_SUFFIXES = {".txt", ".md"}
_TEXT_LINES = 8


def _prefix(label: str) -> str:
    return "joint_" if label == "joint" else f"given-{label}_"


def render_samples(
    pipe: GenerativeModel, samples: Mapping[str, Mapping[str, Tensor]], out_dir: str | Path
) -> dict[str, dict[str, list[Path]]]:
    """Render each condition's outputs with the modalities' renderers; ``{label: {name: [files]}}``."""
    out_dir = Path(out_dir)
    written: dict[str, dict[str, list[Path]]] = {}
    for label, outputs in samples.items():
        written[label] = {}
        for name, batch in outputs.items():
            if hasattr(pipe, "render"):
                files = pipe.render({name: batch}, out_dir, prefix=_prefix(label))
            else:
                files = pipe.modalities[name].render(batch.detach().cpu(), out_dir / f"{_prefix(label)}{name}")
            written[label][name] = [Path(file) for file in files]
    return written


def _link(path: Path, root: Path) -> str:
    return quote(Path(os.path.relpath(path, root)).as_posix())


def _cell(files: Sequence[Path], root: Path, name: str) -> str:
    images = [file for file in files if file.suffix.lower() in _IMAGE_SUFFIXES]
    if images:
        return " ".join(f"![{name}]({_link(file, root)})" for file in images)
    return " ".join(f"[{file.name}]({_link(file, root)})" for file in files) or "-"


def _quoted_text(files: Sequence[Path]) -> list[str]:
    lines: list[str] = []
    for file in files:
        if file.suffix.lower() in _TEXT_SUFFIXES and file.is_file():
            content = file.read_text(errors="replace").splitlines()[:_TEXT_LINES]
            lines += [f"`{file.name}` (first lines):", "", "```", *content, "```", ""]
    return lines


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100.0 * float(value):.2f}%"


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def _metric_table(title: str, column: str, values: Mapping[str, Any], fmt) -> list[str]:
    if not values:
        return []
    lines = [f"## {title}", "", f"| condition | {column} |", "|---|---:|"]
    lines += [f"| `{key}` | {fmt(value)} |" for key, value in values.items()]
    return [*lines, ""]


def write_report(
    run_dir: str | Path,
    metrics: Mapping[str, Any],
    samples: Mapping[str, Mapping[str, Tensor]],
    pipe: GenerativeModel,
) -> Path:
    """Render the samples and write ``RUN/report.md``; returns its path."""
    root = Path(run_dir)
    rendered = render_samples(pipe, samples, root / "samples" / "evaluation")
    names = list(getattr(pipe, "names", None) or next(iter(samples.values()), {}).keys())
    recipe_name = getattr(getattr(pipe, "recipe", None), "name", None) or root.name
    sampler = metrics.get("sampler") or {}

    lines = [f"# {recipe_name}: evaluation", ""]
    lines.append(
        f"Sampler **{sampler.get('name')}** (steps {sampler.get('steps')}), **{metrics.get('nfe')} NFE** per "
        f"sample, seed {metrics.get('seed')}, {metrics.get('num_items')} test items per condition"
        + (f" (limit {metrics['limit']})" if metrics.get("limit") else "")
        + (f", guidance {metrics['guidance']}" if metrics.get("guidance") else "")
        + "."
    )
    coherence = metrics.get("coherence") or {}
    if "joint" in coherence:
        lines[-1] += f" Joint coherence **{_percent(coherence['joint'])}**."
    lines.append("")

    lines += ["## Samples", ""]
    for label, per_modality in rendered.items():
        given = [] if label == "joint" else label.split("+")
        title = "Joint generation" if label == "joint" else f"Given {', '.join(given)}"
        header = [f"{name} (given)" if name in given else name for name in names if name in per_modality]
        lines += [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        cells = [_cell(per_modality[name], root, name) for name in names if name in per_modality]
        lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for name in names:
            if name in per_modality and name not in given:
                lines += _quoted_text(per_modality[name])

    lines += _metric_table("Coherence", "coherence", coherence, _percent)
    lines += _metric_table("Frechet distance in classifier features (FMD)", "FD", metrics.get("fd") or {}, _number)
    lines += _metric_table("FID (Inception-v3)", "FID", metrics.get("fid") or {}, _number)
    lines += _metric_table("Frechet distance in embedding-network features (e.g. FAD)", "FD",
                           metrics.get("fd_embedding") or {}, _number)
    lines += _metric_table("CLIP-S", "CLIP-S", metrics.get("clip_s") or {}, _number)

    accuracy = metrics.get("classifier_accuracy") or {}
    if accuracy:
        lines += ["## Coherence classifiers", "", "Test accuracy of each modality's classifier on real data "
                  "(an upper bound for coherence).", "", "| modality | test accuracy |", "|---|---:|"]
        lines += [f"| {name} | {_percent(value)} |" for name, value in accuracy.items()]
        lines.append("")

    curves = sorted((root / "curves").glob("*.png")) if (root / "curves").is_dir() else []
    if curves:
        lines += ["## Training curves", ""]
        lines += [f"![{curve.stem}]({_link(curve, root)})" for curve in curves]
        lines.append("")

    timings = metrics.get("timings") or {}
    if timings:
        lines += ["## Timings", "", "| step | value |", "|---|---:|"]
        lines += [f"| {key} | {value} |" for key, value in timings.items()]
        lines.append("")

    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
