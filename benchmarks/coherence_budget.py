"""Where coherence is lost, per direction: real data -> autoencoder -> latent -> generation.

    python benchmarks/coherence_budget.py RUN [--limit N] [--paper-limit P] [--seeds S]
                                              [--split test|val] [--paper-sampler/--no-paper-sampler]
                                              [--reference SAMPLER] [--reference-steps K]

For every direction evaluated by ``mmlatent evaluate`` (each conditioning set A -> each target t
with a classifier, and ``joint``) the diagnostic measures, on the labelled items of ``--split``:

(a) ``real``: the accuracy of t's coherence classifier on the real items of the split (for
    ``joint``: the fraction of real paired items on which all classifiers agree, the same rule
    as joint coherence);
(b) ``recon``: the same on autoencoder reconstructions ``pipe.decode(pipe.encode(x))``;
(c) ``paper`` and ``recipe``: coherence of generation with the paper's sampler (``repaint`` at 250
    steps, jump length 10, 10 resamplings: 2,410 NFE; ``--reference``/``--reference-steps``
    replace it, ``--no-paper-sampler`` skips it) and with the recipe's own sampler (``pipe.plan()``),
    mean over sampling seeds ``0..S-1`` (``CoherenceEvaluator.run(plan=..., seed=s)``);
(d) ``lin`` and ``kNN``: how well the GIVEN modalities' standardised latents (``pipe.encode``,
    concatenated when several are given) predict the class: a multinomial logistic regression and
    a k-nearest-neighbour vote (k = 5) fitted on the latents of the ``train`` split; and ``dec``:
    the given modality's own classifier on its reconstruction (its decoder + classifier, a
    nonlinear read-out of the same latent; the best given modality when several are given).

``ceil`` = min(recon, max(lin, kNN, dec)): what the target's reconstructions and the class
information readable from the given latents allow (an estimate from probes, not a strict bound: a
score network may read the class better than all three). The losses between consecutive stages
add up to ``real - generated``:

    AE     = real - recon                 (the target's autoencoder)
    latent = recon - ceil                 (class information lost in the given latents)
    stage2 = ceil - paper                 (score network with the paper's sampler)
    sampler= paper - recipe               (the recipe's few-step sampler against the paper's)
    gen    = ceil - recipe                (stage 2 and the recipe sampler together; table without paper)

The paper sampler is slow (~2,410 NFE per sample): ``--paper-limit P`` runs it on a fixed random
subset of P of the ``--limit`` items (the same rule as ``mmlatent evaluate --limit``, so the P items
are the first P of the same draw); a second table then repeats (a), (b), (d) and the recipe's
sampler on exactly those P items. Classifiers come from (or are trained into) ``RUN/classifiers``.

Prints the table(s) and, as its LAST line, one JSON object::

    {"run": ..., "split": "test", "num_items": 397, "paper_items": 100, "seeds": 3,
     "plans": {"recipe": {...}, "paper": {...}}, "nfe": {"recipe": 23, "paper": 2410},
     "directions": {"caption->gray": {"given": ["caption"], "target": "gray", "real": 0.99,
        "recon": 0.98, "latent_linear": 0.3, "latent_knn": 0.99, "latent_decoded": 1.0, "ceiling": 0.98,
        "recipe": 0.44, "recipe_sd": 0.01, "losses": {"autoencoder": ..., "latent": ..., "generation": ...},
        "paper": {"items": 100, "real": ..., "recon": ..., "ceiling": ..., "paper": ..., "paper_sd": ...,
                  "recipe": ..., "losses": {"autoencoder", "latent", "stage2", "sampler"}}}, ...},
     "timings": {...}}
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mmlatent.evaluation.classifiers import ClassifierSettings, TrainedClassifier
from mmlatent.evaluation.coherence import CoherenceEvaluator, condition_key
from mmlatent.evaluation.command import build_evaluator
from mmlatent.evaluation.data import load_split, num_items, subset
from mmlatent.model import GenerativeModel
from mmlatent.progress import progress_bar

#: The paper's sampler: Euler-Maruyama with RePaint resampling (defaults j = 10, r = 10: 2,410 NFE).
PAPER_SAMPLER = ("repaint", 250)
KNN = 5


# ------------------------------------------------------------------------------------- directions
def directions(evaluator: CoherenceEvaluator) -> list[tuple[tuple[str, ...], str | None]]:
    """``[((), None) for joint, (given, target), ...]`` in the evaluator's order (targets with a classifier)."""
    out: list[tuple[tuple[str, ...], str | None]] = []
    if len(evaluator.classifiers) >= 2:
        out.append(((), None))
    for given in evaluator.subsets:
        out += [(given, target) for target in evaluator.names if target not in given and target in evaluator.classifiers]
    return out


def direction_key(given: tuple[str, ...], target: str | None) -> str:
    return condition_key(given, target) if given else "joint"


# ------------------------------------------------------------------------------ per-item figures
def _chunks(size: int, batch_size: int):
    for start in range(0, size, batch_size):
        yield slice(start, min(start + batch_size, size))


def encode_split(pipe: GenerativeModel, data: dict[str, Tensor], batch_size: int, desc: str,
                 progress: bool) -> dict[str, Tensor]:
    """Standardised latents ``{name: (N, d_i)}`` of a collated split (``pipe.encode``, in batches)."""
    size = num_items(data)
    parts: dict[str, list[Tensor]] = {name: [] for name in pipe.names}
    for piece in progress_bar(list(_chunks(size, batch_size)), desc=desc, leave=False, file=sys.stderr,
                      disable=None if progress else True):
        encoded = pipe.encode({name: data[name][piece] for name in pipe.names})
        for name in pipe.names:
            parts[name].append(encoded[name].detach().float().cpu())
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def reconstruct(pipe: GenerativeModel, latents: dict[str, Tensor], batch_size: int) -> dict[str, Tensor]:
    """``pipe.decode`` of standardised latents, in batches: the autoencoders' reconstructions."""
    size = next(iter(latents.values())).shape[0]
    parts: dict[str, list[Tensor]] = {name: [] for name in latents}
    for piece in _chunks(size, batch_size):
        decoded = pipe.decode({name: z[piece] for name, z in latents.items()})
        for name in latents:
            parts[name].append(decoded[name].detach().cpu())
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def classifier_hits(classifiers: dict[str, TrainedClassifier], data: dict[str, Tensor],
                    labels: Tensor) -> tuple[dict[str, Tensor], Tensor | None]:
    """Per item: ``{name: bool (N,) prediction == label}`` and, with >= 2 classifiers, whether all agree."""
    predictions = {name: classifier.predict(data[name]).cpu() for name, classifier in classifiers.items()}
    hits = {name: predicted == labels for name, predicted in predictions.items()}
    agree = None
    if len(predictions) >= 2:
        stacked = torch.stack(list(predictions.values()))
        agree = (stacked == stacked[:1]).all(dim=0)
    return hits, agree


def latent_probe_hits(train: dict[str, Tensor], train_labels: Tensor, evaluated: dict[str, Tensor],
                      labels: Tensor, given: tuple[str, ...], k: int = KNN) -> tuple[Tensor, Tensor]:
    """Per evaluated item, whether the class is predicted from the given latents (concatenated):
    ``(linear, knn)`` bool ``(N,)``; fitted on the training split's latents."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier
    except ImportError as error:  # a dev dependency of mmlatent
        raise SystemExit(f"coherence_budget needs scikit-learn (pip install scikit-learn): {error}") from error
    x_train = torch.cat([train[name] for name in given], dim=1).double().numpy()
    x_eval = torch.cat([evaluated[name] for name in given], dim=1).double().numpy()
    y_train, y_eval = train_labels.numpy(), labels.numpy()
    linear = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(y_train))).fit(x_train, y_train)
    return (torch.from_numpy(linear.predict(x_eval) == y_eval), torch.from_numpy(knn.predict(x_eval) == y_eval))


# -------------------------------------------------------------------------------------- generation
def generation(evaluator: CoherenceEvaluator, plan: Any, seeds: int, bar: Any) -> dict[str, Any]:
    """Coherence of every direction with ``plan``: mean and sd over sampling seeds ``0..seeds-1``."""
    results = []
    for seed in range(seeds):
        results.append(evaluator.run(plan=plan, seed=seed))
        bar.update(1)
    keys = list(results[0].coherence)
    return {
        "coherence": {key: statistics.fmean(r.coherence[key] for r in results) for key in keys},
        "sd": {key: statistics.stdev([r.coherence[key] for r in results]) if seeds > 1 else None for key in keys},
        "per_seed": {key: [r.coherence[key] for r in results] for key in keys},
        "nfe": max((r.nfe or 0) for r in results),
        "seconds_per_seed": round(statistics.fmean(r.timings["generation_s"] for r in results), 3),
        "items": results[0].num_items,
    }


# -------------------------------------------------------------------------------------------- rows
def _mean(hits: Tensor, index: Tensor) -> float:
    return float(hits[index].double().mean())


def stage_figures(dirs, hits_real, hits_recon, agree_real, agree_recon, probes, index: Tensor) -> dict[str, dict]:
    """(a), (b), (d) and the ceiling of every direction on the items ``index`` of the split."""
    out = {}
    for given, target in dirs:
        if not given:
            real, recon = _mean(agree_real, index), _mean(agree_recon, index)
            out["joint"] = {"given": [], "target": None, "real": real, "recon": recon, "latent_linear": None,
                            "latent_knn": None, "latent_decoded": None, "ceiling": recon}
            continue
        linear, knn = probes[given]
        decoded = [_mean(hits_recon[name], index) for name in given if name in hits_recon]
        row = {"given": list(given), "target": target, "real": _mean(hits_real[target], index),
               "recon": _mean(hits_recon[target], index), "latent_linear": _mean(linear, index),
               "latent_knn": _mean(knn, index), "latent_decoded": max(decoded) if decoded else None}
        readable = [v for v in (row["latent_linear"], row["latent_knn"], row["latent_decoded"]) if v is not None]
        row["ceiling"] = min(row["recon"], max(readable))
        out[direction_key(given, target)] = row
    return out


def losses(row: dict, generated: float, paper: float | None = None) -> dict[str, float]:
    """The losses between consecutive stages (they add up to real - generated)."""
    out = {"autoencoder": row["real"] - row["recon"], "latent": row["recon"] - row["ceiling"]}
    if paper is None:
        out["generation"] = row["ceiling"] - generated
    else:
        out["stage2"] = row["ceiling"] - paper
        out["sampler"] = paper - generated
    return out


# ------------------------------------------------------------------------------------------ output
def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _loss(value: float | None) -> str:
    """A loss in points, shown as a change (negative = coherence lost, 0.0 = none)."""
    if value is None:
        return "-"
    return "0.0" if abs(value) < 5e-4 else f"{-100 * value:+.1f}"


def format_table(rows: dict[str, dict], columns: list[tuple[str, Any]]) -> str:
    """Right-aligned text table: one row per direction; ``columns`` = [(header, row -> str)]."""
    header = ["direction", *[title for title, _ in columns]]
    lines = [[key, *[cell(row) for _, cell in columns]] for key, row in rows.items()]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *[fmt(line) for line in lines]])


MAIN_COLUMNS = [
    ("real", lambda r: _pct(r["real"])),
    ("recon", lambda r: _pct(r["recon"])),
    ("lin", lambda r: _pct(r["latent_linear"])),
    ("kNN", lambda r: _pct(r["latent_knn"])),
    ("dec", lambda r: _pct(r["latent_decoded"])),
    ("ceil", lambda r: _pct(r["ceiling"])),
]


def tables(result: dict) -> str:
    """The readable tables of one diagnostic (figures in %, losses in points, negative = lost)."""
    rows = result["directions"]
    nfe, seeds = result["nfe"], result["seeds"]
    recipe_title = f"recipe({nfe['recipe']})"
    paper_items = result.get("paper_items")
    same_items = paper_items == result["num_items"]
    out = [f"{result['run']}: {result['split']} split, {result['num_items']} items, {seeds} sampling seed(s); "
           f"recipe sampler {result['plans']['recipe']['sampler']}/{result['plans']['recipe']['steps']} "
           f"({nfe['recipe']} NFE)"
           + (f", paper sampler {result['plans']['paper']['sampler']}/{result['plans']['paper']['steps']} "
              f"({nfe['paper']} NFE) on {paper_items} items" if paper_items else ", no paper sampler")]
    if paper_items and same_items:
        paper_title = f"paper({nfe['paper']})"
        columns = [*MAIN_COLUMNS,
                   (paper_title, lambda r: _pct(r["paper"]["paper"])),
                   (recipe_title, lambda r: _pct(r["recipe"])),
                   ("AE", lambda r: _loss(r["paper"]["losses"]["autoencoder"])),
                   ("latent", lambda r: _loss(r["paper"]["losses"]["latent"])),
                   ("stage2", lambda r: _loss(r["paper"]["losses"]["stage2"])),
                   ("sampler", lambda r: _loss(r["paper"]["losses"]["sampler"]))]
        out += ["", format_table(rows, columns)]
    else:
        columns = [*MAIN_COLUMNS,
                   (recipe_title, lambda r: _pct(r["recipe"])),
                   ("AE", lambda r: _loss(r["losses"]["autoencoder"])),
                   ("latent", lambda r: _loss(r["losses"]["latent"])),
                   ("gen", lambda r: _loss(r["losses"]["generation"]))]
        out += ["", f"all {result['num_items']} items:", format_table(rows, columns)]
        if paper_items:
            paper_title = f"paper({nfe['paper']})"
            columns = [("real", lambda r: _pct(r["paper"]["real"])),
                       ("recon", lambda r: _pct(r["paper"]["recon"])),
                       ("lin", lambda r: _pct(r["paper"]["latent_linear"])),
                       ("kNN", lambda r: _pct(r["paper"]["latent_knn"])),
                       ("dec", lambda r: _pct(r["paper"]["latent_decoded"])),
                       ("ceil", lambda r: _pct(r["paper"]["ceiling"])),
                       (paper_title, lambda r: _pct(r["paper"]["paper"])),
                       (recipe_title, lambda r: _pct(r["paper"]["recipe"])),
                       ("AE", lambda r: _loss(r["paper"]["losses"]["autoencoder"])),
                       ("latent", lambda r: _loss(r["paper"]["losses"]["latent"])),
                       ("stage2", lambda r: _loss(r["paper"]["losses"]["stage2"])),
                       ("sampler", lambda r: _loss(r["paper"]["losses"]["sampler"]))]
            out += ["", f"the {paper_items} paper-sampler items:", format_table(rows, columns)]
    k = result["knn_k"]
    out += [
        "",
        "figures in %: real/recon = the target's classifier on real items / on AE reconstructions (joint: all",
        f"classifiers agree); lin/kNN = the class predicted from the given latents (logistic regression / {k}-NN,",
        "fitted on train latents); dec = the given modality's own classifier on its reconstruction (a nonlinear",
        "read-out of the given latent; best given modality); ceil = min(recon, max(lin, kNN, dec));",
        "paper/recipe = coherence of generation (NFE), mean over seeds.",
        "Changes in points between consecutive stages: AE = recon - real, latent = ceil - recon,",
        "stage2 = paper - ceil, sampler = recipe - paper, gen = recipe - ceil (stage 2 and sampler together).",
    ]
    return "\n".join(out)


# -------------------------------------------------------------------------------------------- main
def run_budget(pipe: GenerativeModel, run: Path | None, *, split: str = "test", limit: int | None = None,
               paper_limit: int | None = None, seeds: int = 3, paper: bool = True,
               reference: tuple[str, int] = PAPER_SAMPLER, classifier_epochs: int | None = None,
               batch_size: int = 512, progress: bool = True, k: int = KNN) -> dict[str, Any]:
    """Measure the budget (see the module docstring); returns the JSON-ready result."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    settings = ClassifierSettings(epochs=classifier_epochs) if classifier_epochs else None
    full, setup = build_evaluator(pipe, run, batch_size=batch_size, classifier_settings=settings,
                                  progress=progress, split=split)
    timings.update(setup)
    data, classifiers = full.test_data, full.classifiers
    labels = data["label"].cpu()
    total = num_items(data)
    # The evaluated items: a fixed random draw (mmlatent evaluate's rule); the paper's items are its prefix.
    order = torch.randperm(total, generator=torch.Generator().manual_seed(0))
    n_main = total if limit is None else min(limit, total)
    n_paper = n_main if paper_limit is None else min(paper_limit, n_main)
    index_main, index_paper = order[:n_main].sort().values, order[:n_paper].sort().values

    # (a), (b): classifiers on the real items and on reconstructions
    clock = time.perf_counter()
    latents = encode_split(pipe, data, batch_size, f"encode {split}", progress)
    recon = reconstruct(pipe, latents, batch_size)
    hits_real, agree_real = classifier_hits(classifiers, data, labels)
    hits_recon, agree_recon = classifier_hits(classifiers, recon, labels)
    timings["classifier_stages_s"] = round(time.perf_counter() - clock, 3)

    # (d): the given latents against the training split's latents
    clock = time.perf_counter()
    train = load_split(pipe, "train")
    train_latents = encode_split(pipe, train, batch_size, "encode train", progress)
    dirs = directions(full)
    probes = {given: latent_probe_hits(train_latents, train["label"].cpu(), latents, labels, given, k)
              for given in dict.fromkeys(given for given, _ in dirs if given)}
    timings["latent_probes_s"] = round(time.perf_counter() - clock, 3)

    # (c): generation with the recipe's sampler (and the paper's) on the evaluated items
    def evaluator(index: Tensor) -> CoherenceEvaluator:
        return CoherenceEvaluator(pipe, classifiers, subset(data, index), batch_size=batch_size, progress=progress)

    recipe_plan = pipe.plan()
    paper_plan = pipe.plan(reference[0], reference[1], recipe_defaults=False) if paper else None
    runs = seeds * (1 + (2 if paper and n_paper < n_main else 1 if paper else 0))
    with progress_bar(total=runs, desc="generation runs", unit="run", file=sys.stderr,
              disable=None if progress else True) as bar:
        clock = time.perf_counter()
        main_eval = evaluator(index_main)
        recipe = generation(main_eval, recipe_plan, seeds, bar)
        timings["recipe_s"] = round(time.perf_counter() - clock, 3)
        paper_run = recipe_on_paper = None
        if paper:
            paper_eval = main_eval if n_paper == n_main else evaluator(index_paper)
            bar.set_description(f"generation runs ({paper_plan.sampler})", refresh=False)
            clock = time.perf_counter()
            paper_run = generation(paper_eval, paper_plan, seeds, bar)
            timings["paper_s"] = round(time.perf_counter() - clock, 3)
            recipe_on_paper = recipe if n_paper == n_main else generation(paper_eval, recipe_plan, seeds, bar)

    rows = stage_figures(dirs, hits_real, hits_recon, agree_real, agree_recon, probes, index_main)
    paper_rows = stage_figures(dirs, hits_real, hits_recon, agree_real, agree_recon, probes, index_paper)
    for key, row in rows.items():
        row["recipe"] = recipe["coherence"][key]
        row["recipe_sd"] = recipe["sd"][key]
        row["losses"] = losses(row, row["recipe"])
        if paper_run is not None:
            sub = paper_rows[key]
            sub.pop("given"), sub.pop("target")
            sub.update(items=n_paper, paper=paper_run["coherence"][key], paper_sd=paper_run["sd"][key],
                       recipe=recipe_on_paper["coherence"][key], recipe_sd=recipe_on_paper["sd"][key])
            sub["losses"] = losses(sub, sub["recipe"], sub["paper"])
            row["paper"] = sub
    timings["total_s"] = round(time.perf_counter() - started, 3)
    return {
        "run": str(run) if run is not None else None,
        "split": split,
        "num_items": n_main,
        "paper_items": n_paper if paper else None,
        "seeds": seeds,
        "knn_k": k,
        "plans": {"recipe": recipe_plan.record(), **({"paper": paper_plan.record()} if paper else {})},
        "nfe": {"recipe": recipe["nfe"], **({"paper": paper_run["nfe"]} if paper else {})},
        "classifier_accuracy": {
            "real": {name: _mean(hit, index_main) for name, hit in hits_real.items()},
            "recon": {name: _mean(hit, index_main) for name, hit in hits_recon.items()},
        },
        "directions": rows,
        "seconds_per_seed": {"recipe": recipe["seconds_per_seed"],
                             **({"paper": paper_run["seconds_per_seed"]} if paper else {})},
        "timings": timings,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a trained run directory (labelled dataset)")
    parser.add_argument("--split", default="test", choices=["test", "val"], help="the labelled split measured")
    parser.add_argument("--limit", type=int, default=None, help="items of the split (default: all)")
    parser.add_argument("--paper-limit", type=int, default=None,
                        help="items for the paper sampler (a subset of the --limit items; default: the same)")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds per sampler")
    parser.add_argument("--paper-sampler", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the paper's sampler (slow: ~2,410 NFE per sample)")
    parser.add_argument("--reference", default=PAPER_SAMPLER[0], help="the paper sampler's name (default repaint)")
    parser.add_argument("--reference-steps", type=int, default=PAPER_SAMPLER[1], help="its steps (default 250)")
    parser.add_argument("--classifier-epochs", type=int, default=None,
                        help="epochs of classifiers trained now (default: the recipe's evaluation setting)")
    parser.add_argument("--knn", type=int, default=KNN, help="k of the nearest-neighbour probe")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for what in ("limit", "paper_limit", "seeds", "reference_steps", "knn", "batch_size"):
        value = getattr(args, what)
        if value is not None and value < 1:
            parser.error(f"--{what.replace('_', '-')} must be positive, got {value}")

    from mmlatent.pipeline import MLDPipeline

    run = Path(args.run)
    pipe = MLDPipeline.load(run, device=args.device)
    result = run_budget(pipe, run, split=args.split, limit=args.limit, paper_limit=args.paper_limit,
                        seeds=args.seeds, paper=args.paper_sampler, reference=(args.reference, args.reference_steps),
                        classifier_epochs=args.classifier_epochs, batch_size=args.batch_size,
                        progress=not args.no_progress, k=args.knn)
    print(tables(result))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
    raise SystemExit(0)
