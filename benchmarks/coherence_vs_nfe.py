"""Coherence and FMD against sampling cost (NFE) for every sampler of a trained run.

    python benchmarks/coherence_vs_nfe.py RUN [--limit N] [--seeds K] [--quick] [--plot PNG]

Evaluates the run (``mmlatent.evaluation``: coherence of joint generation and of every condition,
Frechet distances in classifier features) with

- the paper's sampler: Euler-Maruyama + RePaint resampling, 250 steps, jump 10, 10 resamplings
  (``repaint``; ~2,410 NFE per sample);
- plain Euler-Maruyama at 250 steps (and fewer);
- every fast sampler of ``mmlatent.diffusion.sampling.SAMPLERS`` at several step counts, including
  at least one at <= 24 NFE (euler, heun, ddim, dpm_solver++, and any sampler registered later).

Each configuration runs with ``--seeds`` sampling seeds (0..K-1) on the same test items (the
classifiers are trained once, or reused from ``RUN/classifiers``); the table reports means (and the
standard deviation over seeds of joint coherence). Writes a PNG plot of coherence against NFE (log
x axis) and prints, as its LAST line, one JSON object::

    {"rows": [{"sampler": "euler_maruyama", "repaint": true, "steps": 250, "nfe": 2410,
               "coherence": {...}, "fd": {...}, "seconds": ..., "seeds": K, ...}, ...], ...}

``seconds`` is the generation time of one whole evaluation (all conditions) per seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

#: Step counts per sampler (fast ones reach <= 24 NFE; heun costs 2 NFE per step).
DEFAULT_STEPS = {
    "repaint": [250],
    "euler_maruyama": [24, 50, 100, 250],
    "euler": [6, 12, 24],
    "heun": [3, 6, 12],
    "ddim": [6, 12, 24],
    "dpm_solver++": [6, 12, 24],
}
QUICK_STEPS = {
    "repaint": [250],
    "euler_maruyama": [24, 250],
    "euler": [24],
    "heun": [12],
    "ddim": [24],
    "dpm_solver++": [12, 24],
}
OTHER_STEPS = [6, 12, 24]
FAST_NFE = 24


def configurations(samplers: list[str], quick: bool) -> list[tuple[str, int]]:
    table = QUICK_STEPS if quick else DEFAULT_STEPS
    known = [name for name in DEFAULT_STEPS if name in samplers]
    order = known + [name for name in samplers if name not in DEFAULT_STEPS]
    return [(name, steps) for name in order for steps in table.get(name, OTHER_STEPS)]


def _mean_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.fmean(d[key] for d in dicts) for key in dicts[0]} if dicts else {}


def run_configuration(evaluator, sampler: str, steps: int, seeds: int) -> dict:
    results = [evaluator.run(sampler=sampler, steps=steps, seed=seed) for seed in range(seeds)]
    joint = [r.coherence.get("joint") for r in results if "joint" in r.coherence]
    repaint = sampler == "repaint"
    row = {
        "sampler": "euler_maruyama" if repaint else sampler,
        "repaint": repaint,
        "steps": steps,
        "nfe": max((r.nfe or 0) for r in results),
        "coherence": _mean_dicts([r.coherence for r in results]),
        "fd": _mean_dicts([r.fd for r in results]),
        "seconds": round(statistics.fmean(r.timings["generation_s"] for r in results), 3),
        "seeds": seeds,
        "joint_std": round(statistics.stdev(joint), 4) if len(joint) > 1 else None,
    }
    conditional = [value for key, value in row["coherence"].items() if key != "joint"]
    row["conditional_mean"] = statistics.fmean(conditional) if conditional else None
    row["fd_mean"] = statistics.fmean(row["fd"].values()) if row["fd"] else None
    return row


def _label(row: dict) -> str:
    return "EM + RePaint" if row["repaint"] else row["sampler"]


def plot(rows: list[dict], path: Path, title: str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    panels = [("joint", "joint coherence"), ("conditional_mean", "mean conditional coherence")]
    labels = list(dict.fromkeys(_label(row) for row in rows))
    for ax, (key, name) in zip(axes, panels):
        for label in labels:
            points = sorted(
                (row["nfe"], row["coherence"].get("joint") if key == "joint" else row["conditional_mean"])
                for row in rows if _label(row) == label
            )
            points = [(x, y) for x, y in points if y is not None]
            if not points:
                continue
            xs, ys = zip(*points)
            marker = "*" if label == "EM + RePaint" else "o"
            ax.plot(xs, [100 * y for y in ys], marker=marker, markersize=10 if marker == "*" else 5, label=label)
        ax.axvline(FAST_NFE, color="gray", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("NFE per sample (log)")
        ax.set_ylabel(f"{name} (%)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def table(rows: list[dict]) -> str:
    header = ["sampler", "steps", "NFE", "joint %", "+-", "cond. mean %", "FD mean", "seconds"]
    lines = []
    for row in rows:
        joint = row["coherence"].get("joint")
        lines.append([
            _label(row), str(row["steps"]), str(row["nfe"]),
            "-" if joint is None else f"{100 * joint:.2f}",
            "-" if row["joint_std"] is None else f"{100 * row['joint_std']:.2f}",
            "-" if row["conditional_mean"] is None else f"{100 * row['conditional_mean']:.2f}",
            "-" if row["fd_mean"] is None else f"{row['fd_mean']:.3f}",
            f"{row['seconds']:.2f}",
        ])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(cell.rjust(w) for cell, w in zip(header, widths))]
    out += ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a trained run directory (with a labelled dataset)")
    parser.add_argument("--limit", type=int, default=None, help="test items per condition (default: all)")
    parser.add_argument("--seeds", type=int, default=1, help="sampling seeds per configuration")
    parser.add_argument("--quick", action="store_true", help="fewer step counts per sampler")
    parser.add_argument("--samplers", nargs="+", default=None, help="only these samplers (names of SAMPLERS)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--plot", default=None, help="PNG path (default RUN/coherence_vs_nfe.png)")
    parser.add_argument("--device", default="cpu", help="torch device of the pipeline and classifiers")
    args = parser.parse_args(argv)

    from mmlatent.diffusion.sampling import SAMPLERS
    from mmlatent.evaluation.command import build_evaluator
    from mmlatent.pipeline import MLDPipeline

    run = Path(args.run)
    unknown = [name for name in args.samplers or [] if name not in SAMPLERS]
    if unknown:
        print(f"error: unknown sampler(s) {unknown}; available: {sorted(SAMPLERS)}", file=sys.stderr)
        return 2
    pipe = MLDPipeline.load(run, device=args.device)
    started = time.perf_counter()
    evaluator, setup = build_evaluator(pipe, run, limit=args.limit, batch_size=args.batch_size, progress=False)
    print(f"{len(evaluator.names)} modalities, {len(evaluator.subsets)} conditions, "
          f"{evaluator.items['label'].shape[0]} test items, classifiers ready in {setup['classifiers_s']:.1f} s "
          f"(test accuracy {', '.join(f'{n} {100 * c.accuracy:.1f}%' for n, c in evaluator.classifiers.items())})",
          file=sys.stderr)
    rows = []

    def measure(sampler: str, steps: int) -> dict:
        row = run_configuration(evaluator, sampler, steps, args.seeds)
        rows.append(row)
        joint = row["coherence"].get("joint")
        print(f"  {_label(row):>14} steps {steps:>4}  NFE {row['nfe']:>5}  joint "
              f"{'-' if joint is None else f'{100 * joint:.2f}%'}  {row['seconds']:.1f} s", file=sys.stderr)
        return row

    for sampler, steps in configurations(args.samplers or list(SAMPLERS), args.quick):
        measure(sampler, steps)
    # Every fast sampler gets a point at <= FAST_NFE: samplers whose NFE per step is unknown here
    # (registered later) get one more configuration with proportionally fewer steps.
    for sampler in dict.fromkeys(row["sampler"] for row in rows if not row["repaint"]):
        if sampler == "euler_maruyama":
            continue
        own = [row for row in rows if row["sampler"] == sampler and not row["repaint"]]
        cheapest = min(own, key=lambda row: row["nfe"])
        if cheapest["nfe"] > FAST_NFE and cheapest["steps"] > 1:
            measure(sampler, max(1, cheapest["steps"] * FAST_NFE // cheapest["nfe"]))
    fast = {row["sampler"] for row in rows if not row["repaint"] and row["nfe"] <= FAST_NFE}
    plot_path = plot(rows, Path(args.plot) if args.plot else run / "coherence_vs_nfe.png",
                     f"{run.name}: coherence vs NFE ({evaluator.items['label'].shape[0]} test items, "
                     f"{args.seeds} seed{'s' if args.seeds > 1 else ''})")
    print(table(rows))
    print(f"plot: {plot_path}; samplers with a point at <= {FAST_NFE} NFE: {', '.join(sorted(fast))}; "
          f"total {time.perf_counter() - started:.1f} s")
    print(json.dumps({
        "rows": rows,
        "run": str(run),
        "limit": args.limit,
        "num_items": int(evaluator.items["label"].shape[0]),
        "classifier_accuracy": {name: c.accuracy for name, c in evaluator.classifiers.items()},
        "plot": str(plot_path),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
