"""Coherence and Frechet distances against sampling cost (NFE): the paper's sampler against the
best configuration at <= 24 NFE, chosen on a validation split and reported on test pairs.

    python benchmarks/coherence_vs_nfe.py RUN [--seeds 3] [--select-on auto|val|test-half]
                                              [--limit N] [--quick] [--no-sweep] [--plot PNG]

1. **Selection** (never on the reported pairs): on the run's ``val`` split (``--select-on val``;
   ``auto`` uses it when the dataset has one) or, for a dataset without one, on a fixed random half
   of the test items (``test-half``; the other half is then the one reported). There the paper's
   sampler (Euler-Maruyama 250 steps + RePaint resampling 10/10, 2,410 NFE) and every candidate
   configuration at <= 24 NFE (:func:`candidates`: samplers, time grids, guidance weights with a
   learned unconditional branch, guidance intervals, ``joint_steps``) are evaluated with ``--seeds`` sampling seeds;
   then the guidance weight of each modality in turn is tuned on the best candidate
   (:func:`tune_weights`), and its joint generation is tried with guidance by each co-generated
   modality (:func:`tune_joint_guidance`). The order of configurations (:func:`selection_key`): both targets met
   first (coherence within 0.01 of the paper sampler in every direction, Frechet distances within
   1.2x), then the total shortfall sum_d min(0, c_d - p_d) of coherence over every direction d
   less 0.05 per unit of the worst Frechet-distance ratio above 1.2, then that ratio.
2. **Report** (the test split, or its other half): the paper sampler, the chosen configuration,
   plain Euler-Maruyama, the students of ``RUN/students`` (``mmlatent distill``), and (unless
   ``--no-sweep``) every sampler at several step counts; each row is the mean over ``--seeds``
   seeds (``"seeds"`` in the row, standard deviations in ``"coherence_sd"``).

Prints the selection table, the report table, the per-direction comparison (chosen vs paper:
coherence margin and Frechet-distance ratio) and, as its LAST line, one JSON object::

    {"rows": [{"label": "paper (EM + RePaint)", "sampler": "repaint", "steps": 250, "nfe": 2410,
               "coherence": {...}, "coherence_sd": {...}, "fd": {...}, "seeds": 3, ...}, ...],
     "selection": [...], "chosen": {...}, "comparison": {...}, "target_met": false, ...}

and writes a PNG plot (coherence against NFE, log axis; default ``RUN/coherence_vs_nfe.png``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from mmlatent.model import GenerativeModel

PAPER = {"label": "paper (EM + RePaint)", "sampler": "repaint", "steps": 250}
FAST_NFE = 24
FD_RATIO = 1.2
FD_PENALTY = 0.05
COHERENCE_SLACK = 0.01
WEIGHT_VALUES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)
JOINT_WEIGHTS = (1.0, 2.0, 4.0, 6.0)

#: The report's sweep: step counts per sampler (every fast sampler reaches <= 24 NFE).
SWEEP_STEPS = {
    "euler_maruyama": [24, 50, 250],
    "ddim": [6, 12, 24],
    "ddpm": [12, 24],
    "euler": [12, 24],
    "heun": [6, 12],
    "dpm_solver++": [12, 24],
    "repaint_ddpm": [12],
    "pc": [12],
    "churn": [12],
}
QUICK_SWEEP = {"euler_maruyama": [24, 250], "ddim": [24], "dpm_solver++": [24], "repaint_ddpm": [12]}


def config(label: str, sampler: str, steps: int, options: dict | None = None, guidance: dict | None = None) -> dict:
    return {"label": label, "sampler": sampler, "steps": steps, "options": dict(options or {}),
            "guidance": dict(guidance or {})}


def describe(cfg: dict) -> str:
    """A short label of a configuration, e.g. ``ddim eta=1 16 logsnr guided w=2 in [0.03, 0.55]``."""
    options, guidance = cfg["options"], cfg["guidance"]
    parts = [cfg["sampler"]] + ([f"eta={options['eta']:g}"] if "eta" in options else []) + [str(cfg["steps"])]
    if "grid" in options:
        parts.append(options["grid"])
    if guidance:
        weights = set(guidance.values())
        parts.append("guided " + (f"w={weights.pop():g}" if len(weights) == 1 else
                                  ",".join(f"{k}={v:g}" for k, v in guidance.items())))
    if "guidance_interval" in options:
        parts.append("in [{:g}, {:g}]".format(*options["guidance_interval"]))
    if options.get("joint_guidance"):
        parts.append("joint_guidance " + ",".join(f"{k}={v:g}" for k, v in options["joint_guidance"].items()))
    return " ".join(parts)


#: Guidance intervals [t_low, t_high] tried with more steps (guided evaluations only inside).
INTERVALS = ((0.03, 0.55), (0.1, 0.55), (0.05, 0.6), (0.1, 0.45), (0.2, 0.9), (0.4, 1.0))
INTERVAL_STEPS = (14, 16, 18, 20)


def candidates(names: list[str], quick: bool = False, sde: Any = None) -> list[dict]:
    """Configurations at <= 24 NFE per sample in every direction.

    Unguided: 24 steps of the stochastic samplers on three time grids, and the deterministic
    ones. Guided (one combined unconditional branch, so 2 NFE per step whatever is given): 12
    steps, and 24 for joint generation (``joint_steps``: it has no guidance branch), with one
    weight for every modality; and guidance in a limited interval of times with more steps
    (``guidance_interval``; the steps and intervals whose evaluations add up to <= 24 NFE on the
    run's time grid).
    """
    from mmlatent.diffusion import VPSDE, time_grid

    sde = sde or VPSDE()
    grids = ["uniform", "logsnr"] if quick else ["uniform", "logsnr", "karras"]
    weights = [1.0] if quick else [0.5, 1.0, 2.0]
    out = []
    for grid in grids:
        out.append(config(f"ddim eta=1 24 {grid}", "ddim", 24, {"eta": 1.0, "grid": grid}))
        out.append(config(f"euler_maruyama 24 {grid}", "euler_maruyama", 24,
                          {"grid": grid} if grid == "uniform" else {"grid": grid, "t_min": 1e-3}))
        for w in weights:
            out.append(config(
                f"ddim eta=1 12 {grid} guided w={w:g}", "ddim", 12,
                {"eta": 1.0, "grid": grid, "combine_guidance": True, "joint_steps": 24},
                {name: w for name in names},
            ))
    for grid in grids[:2]:
        for steps in INTERVAL_STEPS[1:2] if quick else INTERVAL_STEPS:
            times = time_grid(sde, steps, kind=grid, t_min=1e-3)[:-1]  # where ddim evaluates
            for low, high in INTERVALS:
                guided = int(((times >= low) & (times <= high)).sum())
                if guided and steps + guided <= FAST_NFE:
                    out.append(config(
                        f"ddim eta=1 {steps} {grid} guided w=2 in [{low:g}, {high:g}]", "ddim", steps,
                        {"eta": 1.0, "grid": grid, "combine_guidance": True, "guidance_interval": [low, high],
                         "joint_steps": FAST_NFE},
                        {name: 2.0 for name in names},
                    ))
    if not quick:
        out.append(config("dpm_solver++ 24", "dpm_solver++", 24))
        out.append(config("repaint_ddpm 12", "repaint_ddpm", 12))
        out.append(config("pc 12", "pc", 12))
    return out


# ----------------------------------------------------------------------------------- measuring
class RowCache:
    """Measured rows kept in a JSON file (written atomically after every row), so that a benchmark
    that stops half-way starts again where it was. Keyed by the split's items, the configuration
    (without its label) and the number of seeds."""

    def __init__(self, path: Path | None):
        self.path = path
        self.rows = json.loads(path.read_text()) if path is not None and path.is_file() else {}

    @staticmethod
    def key(evaluator: Any, cfg: dict, seeds: int) -> str:
        import hashlib

        items = evaluator.items["label"]
        first = evaluator.items[evaluator.names[0]]
        digest = hashlib.sha1(items.numpy().tobytes() + first.float().numpy().tobytes()
                              + str(evaluator.names).encode()).hexdigest()[:12]
        setting = {k: cfg.get(k) for k in ("sampler", "steps", "options", "guidance")}
        return json.dumps([digest, int(items.shape[0]), setting, seeds], sort_keys=True)

    def measure(self, evaluator: Any, cfg: dict, seeds: int) -> dict:
        key = self.key(evaluator, cfg, seeds)
        if key not in self.rows:
            self.rows[key] = measure(evaluator, cfg, seeds)
            if self.path is not None:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(self.rows))
                tmp.replace(self.path)
        return {**self.rows[key], "label": cfg["label"]}


def measure(evaluator: Any, cfg: dict, seeds: int) -> dict:
    """``cfg`` evaluated with sampling seeds 0..seeds-1: means (and sd) over the seeds."""
    # exactly this configuration: the run recipe's own sampling settings are not mixed in
    results = [evaluator.run(sampler=cfg["sampler"], steps=cfg["steps"], seed=seed,
                             guidance=cfg.get("guidance") or None, options=cfg.get("options") or {},
                             recipe_defaults=False)
               for seed in range(seeds)]
    keys = list(results[0].coherence)
    row = {
        **cfg,
        "nfe": max((r.nfe or 0) for r in results),
        "coherence": {k: statistics.fmean(r.coherence[k] for r in results) for k in keys},
        "coherence_sd": {k: statistics.stdev([r.coherence[k] for r in results]) if seeds > 1 else None for k in keys},
        "fd": {k: statistics.fmean(r.fd[k] for r in results) for k in results[0].fd},
        "seconds": round(statistics.fmean(r.timings["generation_s"] for r in results), 3),
        "seeds": seeds,
        "num_items": results[0].num_items,
    }
    conditional = [v for k, v in row["coherence"].items() if k != "joint"]
    row["conditional_mean"] = statistics.fmean(conditional) if conditional else None
    row["fd_mean"] = statistics.fmean(row["fd"].values()) if row["fd"] else None
    return row


def compare(row: dict, paper: dict) -> dict:
    """Per-direction coherence margins and Frechet-distance ratios of ``row`` against ``paper``."""
    margins = {k: row["coherence"][k] - v for k, v in paper["coherence"].items() if k in row["coherence"]}
    ratios = {k: row["fd"][k] / v for k, v in paper["fd"].items() if k in row["fd"] and v > 0}
    return {
        "margins": margins,
        "fd_ratios": ratios,
        "shortfall": sum(min(0.0, m) for m in margins.values()),
        "worst_margin": min(margins.values()) if margins else None,
        "worst_fd_ratio": max(ratios.values()) if ratios else None,
        "coherence_ok": all(m >= -COHERENCE_SLACK for m in margins.values()),
        "fd_ok": all(r <= FD_RATIO for r in ratios.values()),
    }


def selection_key(row: dict) -> tuple:
    """Larger is better: both targets met (coherence within 0.01 everywhere, Frechet distances
    within 1.2x), then the coherence shortfall with a penalty of 0.05 (5 points) per unit of the
    worst Frechet-distance ratio above 1.2, then the worst ratio, then the mean margin."""
    c = row["comparison"]
    penalised = c["shortfall"] - FD_PENALTY * max(0.0, c["worst_fd_ratio"] - FD_RATIO)
    return (c["coherence_ok"] and c["fd_ok"], round(penalised, 6), -round(c["worst_fd_ratio"], 6),
            statistics.fmean(c["margins"].values()))


def trial(evaluator: Any, cfg: dict, paper: dict, seeds: int, log, cache: RowCache | None) -> dict:
    """``cfg`` measured (or taken from the cache), compared with ``paper`` and logged."""
    row = (cache or RowCache(None)).measure(evaluator, cfg, seeds)
    row["comparison"] = compare(row, paper)
    log(row)
    return row


def tune_weights(evaluator: Any, best: dict, paper: dict, names: list[str], seeds: int, log,
                 cache: RowCache | None = None) -> list[dict]:
    """Coordinate search over the guidance weight of each modality of a guided configuration."""
    rows = []
    if not best.get("guidance"):
        return rows
    current = best
    for name in names:
        for value in WEIGHT_VALUES:
            if value == current["guidance"].get(name):
                continue
            cfg = {**current, "guidance": {**current["guidance"], name: value}}
            rows.append(trial(evaluator, {**cfg, "label": describe(cfg)}, paper, seeds, log, cache))
            if selection_key(rows[-1]) > selection_key(current):
                current = rows[-1]
    return rows


def tune_joint_guidance(evaluator: Any, best: dict, paper: dict, names: list[str], seeds: int, log,
                        cache: RowCache | None = None) -> list[dict]:
    """Joint generation of the chosen configuration guided by one co-generated modality
    (``joint_guidance``): at the configuration's own step count instead of ``joint_steps``, so that
    it costs the same 2 NFE per step as guided conditional generation."""
    base = {k: v for k, v in best["options"].items() if k not in ("joint_steps", "joint_guidance")}
    configs = [{**best, "options": {**base, "joint_guidance": {name: value}}} for name in names for value in JOINT_WEIGHTS]
    return [trial(evaluator, {**cfg, "label": describe(cfg)}, paper, seeds, log, cache) for cfg in configs]


# ------------------------------------------------------------------------------------- output
def table(rows: list[dict], paper: dict | None = None) -> str:
    directions = list(rows[0]["coherence"]) if rows else []
    header = ["configuration", "NFE", *directions, "FD mean", "s/seed"]
    lines = []
    for row in rows:
        cells = [row["label"], str(row["nfe"])]
        cells += [f"{100 * row['coherence'][d]:.1f}" for d in directions]
        cells += ["-" if row["fd_mean"] is None else f"{row['fd_mean']:.2f}", f"{row['seconds']:.1f}"]
        lines.append(cells)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(header, widths)))]
    out += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))) for line in lines]
    return "\n".join(out)


def comparison_table(chosen: dict, paper: dict) -> str:
    c = chosen["comparison"]
    lines = [f"{'direction':<24} {'paper':>7} {'chosen':>7} {'margin':>7}   {'FD paper':>8} {'FD chosen':>9} {'ratio':>6}"]
    for key in paper["coherence"]:
        lines.append(f"{key:<24} {100 * paper['coherence'][key]:>7.1f} {100 * chosen['coherence'][key]:>7.1f} "
                     f"{100 * c['margins'][key]:>+7.1f}")
    for key in paper["fd"]:
        lines.append(f"{'FD ' + key:<24} {'':>7} {'':>7} {'':>7}   {paper['fd'][key]:>8.2f} "
                     f"{chosen['fd'][key]:>9.2f} {c['fd_ratios'].get(key, float('nan')):>6.2f}")
    return "\n".join(lines)


def plot(rows: list[dict], chosen_label: str, path: Path, title: str) -> Path:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 4.6), dpi=110)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    for ax in axes:
        ax.set_prop_cycle(color=colormaps["tab20"].colors)
    panels = [("joint", "joint coherence"), ("conditional_mean", "mean conditional coherence")]
    families = {}
    for row in rows:
        family = row["label"] if row["label"] in (PAPER["label"], chosen_label) or row["sampler"].startswith(
            "student:") else row["sampler"]
        families.setdefault(family, []).append(row)
    for ax, (key, name) in zip(axes, panels):
        for family, members in families.items():
            points = sorted((r["nfe"], r["coherence"].get("joint") if key == "joint" else r["conditional_mean"])
                            for r in members)
            points = [(x, y) for x, y in points if y is not None]
            if not points:
                continue
            xs, ys = zip(*points)
            special = {PAPER["label"]: "black", chosen_label: "red"}.get(family)
            style = dict(marker="*", markersize=13, color=special) if special else dict(marker="o", markersize=4)
            ax.plot(xs, [100 * y for y in ys], linewidth=1, label=family, **style)
        ax.axvline(FAST_NFE, color="gray", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("NFE per sample (log)")
        ax.set_ylabel(f"{name} (%)")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


# ---------------------------------------------------------------------------------------- main
def split_evaluators(pipe: GenerativeModel, run: Path, select_on: str, limit: int | None, batch_size: int) -> tuple:
    """``(selection evaluator, report evaluator, description)``."""
    import torch

    from mmlatent.evaluation.coherence import CoherenceEvaluator
    from mmlatent.evaluation.command import build_evaluator
    from mmlatent.evaluation.data import num_items, subset

    report, _ = build_evaluator(pipe, run, limit=limit, batch_size=batch_size, progress=False)
    if select_on == "auto":
        try:
            select_on = "val" if len(pipe.dataset("val")) > 0 else "test-half"
        except (KeyError, ValueError):  # no val split at all
            select_on = "test-half"
    if select_on == "val":
        selection, _ = build_evaluator(pipe, run, batch_size=batch_size, progress=False, split="val")
        return selection, report, "val split (selection) / test split (report)"
    if select_on != "test-half":
        raise ValueError(f"--select-on must be auto, val or test-half, got {select_on!r}")
    data = report.items
    order = torch.randperm(num_items(data), generator=torch.Generator().manual_seed(2024))
    half = len(order) // 2
    make = lambda index: CoherenceEvaluator(pipe, report.classifiers, subset(data, index.sort().values),  # noqa: E731
                                            batch_size=batch_size, progress=False)
    return make(order[:half]), make(order[half:]), "disjoint halves of the test split (selection / report)"


def run_benchmark(pipe: GenerativeModel, run: Path, *, seeds: int = 3, select_on: str = "auto", limit: int | None = None,
                  quick: bool = False, sweep: bool = True, batch_size: int = 512,
                  plot_path: Path | None = None, cache_path: Path | None = None) -> dict:
    """Select on the selection split, measure on the report split, print the tables; returns the
    result object (printed as JSON by :func:`main`)."""
    started = time.perf_counter()
    names = list(pipe.names)
    cache = RowCache(cache_path)
    selection_eval, report_eval, split_note = split_evaluators(pipe, run, select_on, limit, batch_size)

    def log(row: dict) -> None:
        c = row.get("comparison") or {}
        print(f"  {row['label']:<48} NFE {row['nfe']:>5}  joint {100 * row['coherence'].get('joint', float('nan')):5.1f}"
              f"  cond {100 * (row['conditional_mean'] or 0):5.1f}  FD {row['fd_mean'] or 0:6.2f}"
              + (f"  shortfall {100 * c['shortfall']:+6.1f}  FD ratio {c['worst_fd_ratio']:.2f}" if c else ""),
              file=sys.stderr)

    print(f"selection on {split_note}: {selection_eval.items['label'].shape[0]} / "
          f"{report_eval.items['label'].shape[0]} items, {seeds} seeds", file=sys.stderr)
    paper_sel = cache.measure(selection_eval, config(**PAPER), seeds)
    log(paper_sel)
    selection = []
    for cfg in candidates(names, quick, getattr(pipe, "sde", None)):
        selection.append(trial(selection_eval, cfg, paper_sel, seeds, log, cache))
        if selection[-1]["nfe"] > FAST_NFE:
            raise AssertionError(f"{cfg['label']} costs {selection[-1]['nfe']} NFE > {FAST_NFE}")
    best = max(selection, key=selection_key)
    selection += tune_weights(selection_eval, best, paper_sel, names, seeds, log, cache)
    best = max(selection, key=selection_key)
    if best.get("guidance") and len(names) > 1:
        selection += tune_joint_guidance(selection_eval, best, paper_sel, names, seeds, log, cache)
    chosen_cfg = {k: v for k, v in max(selection, key=selection_key).items()
                  if k in ("label", "sampler", "steps", "options", "guidance")}
    chosen_cfg["label"] = "chosen: " + chosen_cfg["label"]

    report_configs = [config(**PAPER), chosen_cfg, config("euler_maruyama 250", "euler_maruyama", 250)]
    for student in sorted((run / "students").glob("*.json")):
        report_configs.append(config(f"student {student.stem}", f"student:{student.stem}", None))
        report_configs.append(config(f"student {student.stem} eta=1", f"student:{student.stem}", None, {"eta": 1.0}))
    if sweep:
        for sampler, steps_list in (QUICK_SWEEP if quick else SWEEP_STEPS).items():
            for steps in steps_list:
                if not (sampler == "euler_maruyama" and steps == 250):
                    report_configs.append(config(f"{sampler} {steps}", sampler, steps))
    rows = []
    for cfg in report_configs:
        rows.append(cache.measure(report_eval, cfg, seeds))
        log(rows[-1])
    paper, chosen = rows[0], rows[1]
    for row in rows[1:]:
        row["comparison"] = compare(row, paper)
    items = report_eval.items["label"].shape[0]
    plot_path = plot(rows, chosen["label"], plot_path or run / "coherence_vs_nfe.png",
                     f"{run.name}: coherence vs NFE ({items} reported items, {seeds} seeds)")
    print("selection (" + split_note.split(" (")[0] + f"), {seeds} seeds:")
    print(table([paper_sel, *selection]))
    print(f"\nreport ({items} items), {seeds} seeds:")
    print(table(rows))
    print("\nchosen vs paper (report items):")
    print(comparison_table(chosen, paper))
    c = chosen["comparison"]
    met = c["coherence_ok"] and c["fd_ok"] and chosen["nfe"] <= FAST_NFE
    print(f"target (every direction within {COHERENCE_SLACK} of the paper sampler, FD <= {FD_RATIO}x, "
          f"<= {FAST_NFE} NFE): {'met' if met else 'missed'}; worst margin {100 * c['worst_margin']:+.1f} points, "
          f"worst FD ratio {c['worst_fd_ratio']:.2f}; plot {plot_path}; total {time.perf_counter() - started:.0f} s")
    return {
        "run": str(run),
        "selection_split": split_note,
        "rows": rows,
        "selection": [paper_sel, *selection],
        "chosen": chosen,
        "comparison": c,
        "target_met": met,
        "classifier_accuracy": {name: cl.accuracy for name, cl in report_eval.classifiers.items()},
        "plot": str(plot_path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a trained run directory (with a labelled dataset)")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds per configuration")
    parser.add_argument("--select-on", default="auto", choices=["auto", "val", "test-half"])
    parser.add_argument("--limit", type=int, default=None, help="test items (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer candidates and sweep points")
    parser.add_argument("--no-sweep", action="store_true", help="report only paper, chosen, EM and students")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--plot", default=None, help="PNG path (default RUN/coherence_vs_nfe.png)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", default=None,
                        help="JSON file of measured rows, reused on a rerun (default RUN/coherence_vs_nfe_rows.json)")
    args = parser.parse_args(argv)

    from mmlatent.pipeline import MLDPipeline

    run = Path(args.run)
    pipe = MLDPipeline.load(run, device=args.device)
    result = run_benchmark(pipe, run, seeds=args.seeds, select_on=args.select_on, limit=args.limit,
                           quick=args.quick, sweep=not args.no_sweep, batch_size=args.batch_size,
                           plot_path=Path(args.plot) if args.plot else None,
                           cache_path=Path(args.cache) if args.cache else run / "coherence_vs_nfe_rows.json")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
