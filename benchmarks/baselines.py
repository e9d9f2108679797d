"""MLD against the paper's VAE baselines in one harness: the layout of the MLD paper's Table 1.

    python benchmarks/baselines.py [--out DIR] [--variants pair,caption] [--families mld,mvae,...]
                                   [--seeds 3] [--budget wallclock|epochs] [--vae-epochs 150]
                                   [--paper-limit P] [--limit N] [--quick]

Data: ``digits_pair`` (scikit-learn's handwritten digits; no download). Variant ``pair`` has two
modalities, ``gray`` and ``color`` (the MNIST-SVHN look-alike); variant ``caption`` adds the
``caption`` modality (three modalities, the quickstart's data). Every family trains from a recipe
built from ``recipes/quickstart.yaml`` with the same modality networks (each VAE's encoder and
decoder are the modality's MLD autoencoder with a variational head, mmlatent-baselines):

- ``mld``: the quickstart recipe as it is (its recommended 23-NFE sampler); with ``--paper-limit P``
  it is also evaluated with the paper's sampler (RePaint, 250 steps, 2,410 NFE) on P test items;
- ``mvae``, ``mmvae``, ``mopoe``, ``nexus``, ``mvtcae``: the paper's MNIST-SVHN settings
  (appendix C.2: latent 20, beta 5, Laplace likelihoods of scale 0.75 on images, MVTCAE alpha 5/6,
  NEXUS modality latents as MLD's with joint latent 20, beta_i 1, beta_c 5; batch 256, Adam 1e-3;
  the caption gets a categorical likelihood).

Training budgets (``--budget``): ``wallclock`` (default) gives every VAE the wall-clock time the MLD
run of the same variant and seed took (its optimiser steps are set from a measured time per step);
``epochs`` trains every VAE ``--vae-epochs`` epochs (the paper's 150). Each family is trained with
``--seeds`` training seeds (recipe ``seed`` 0, 1, 2, ...) and evaluated by ``mmlatent evaluate``'s
code on every test item (coherence of joint generation and of every direction, Frechet distances in
the coherence classifiers' features); the table gives mean +- sd over the training seeds.

Writes under ``--out`` (default ``runs/baselines``): one run directory per variant, family and seed
(reused when its metrics exist), ``grids/<variant>/<family>_<given>-><target>.png`` (the same given
test digits for every family), ``results.json`` and ``table.md``. Prints the tables and, as its
LAST line, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
VAE_FAMILIES = ("mvae", "mmvae", "mopoe", "nexus", "mvtcae")
FAMILIES = ("mld", *VAE_FAMILIES)
VARIANTS = {"pair": ("gray", "color"), "caption": ("gray", "color", "caption")}
#: The paper's sampler for MLD: Euler-Maruyama with RePaint resampling (j = 10, r = 10: 2,410 NFE).
PAPER_SAMPLER = {"sampler": "repaint", "steps": 250, "options": {"jump_length": 10, "resamplings": 10}}
#: Appendix C.2, MNIST-SVHN (the family's options model supplies the rest of MultiVae's defaults).
VAE_OPTIONS = {
    "mvae": {"latent_dim": 20, "beta": 5.0},
    "mmvae": {"latent_dim": 20, "beta": 5.0},
    "mopoe": {"latent_dim": 20, "beta": 5.0},
    "mvtcae": {"latent_dim": 20, "beta": 5.0, "alpha": 5 / 6},
    "nexus": {"joint_latent_dim": 20, "beta_modalities": 1.0, "beta_joint": 5.0},
}
VAE_TRAINING = {"batch_size": 256, "lr": 1e-3}
CALIBRATION_STEPS = (60, 360)


# ------------------------------------------------------------------------------------- recipes
def variant_recipe(variant: str, seed: int) -> dict[str, Any]:
    """The quickstart recipe restricted to the variant's modalities, with training seed ``seed``."""
    recipe = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    names = VARIANTS[variant]
    recipe["name"] = f"baselines_{variant}"
    recipe["seed"] = seed
    recipe["modalities"] = {name: cfg for name, cfg in recipe["modalities"].items() if name in names}
    recipe["data"]["options"]["captions"] = "caption" in names
    sampling = recipe.get("sampling", {})
    sampling["guidance"] = {k: v for k, v in sampling.get("guidance", {}).items() if k in names}
    recipe["evaluation"]["enabled"] = False  # evaluated below, once per run, with every figure kept
    return recipe


def family_recipe(variant: str, family: str, seed: int, vae_steps: int | None = None,
                  vae_epochs: int | None = None) -> dict[str, Any]:
    """The recipe of ``family`` on ``variant`` (MLD: the quickstart's own settings)."""
    recipe = variant_recipe(variant, seed)
    if family == "mld":
        return recipe
    options = {**copy.deepcopy(VAE_OPTIONS[family]), **VAE_TRAINING}
    if vae_steps is not None:
        options["steps"] = int(vae_steps)
    if vae_epochs is not None:
        options["epochs"] = int(vae_epochs)
    recipe["model"] = {"family": family, "options": options}
    recipe["name"] = f"baselines_{variant}_{family}"
    return recipe


# ------------------------------------------------------------------------------------ training
def train(recipe: dict[str, Any], run: Path) -> float:
    """``mmlatent train`` of ``recipe`` into ``run`` (a fresh process, as users run it); returns seconds."""
    run.parent.mkdir(parents=True, exist_ok=True)
    recipe_file = run.parent / f"{run.name}.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mmlatent.train", str(recipe_file), "--output", str(run),
                             "--overwrite", "--no-eval", "--no-progress"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"training {run} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return seconds


def seconds_per_step(variant: str, family: str, seed: int, scratch: Path) -> float:
    """The wall-clock time of one VAE training step, from two short runs after a warm-up run (their
    fixed costs cancel; a difference outside [1/4, 1] of the longer run's time per step is noise, and
    the longer run's time per step is used)."""
    train(family_recipe(variant, family, seed, vae_steps=5), scratch / f"{family}-warm")  # file caches, imports
    times = []
    for steps in CALIBRATION_STEPS:
        times.append(train(family_recipe(variant, family, seed, vae_steps=steps), scratch / f"{family}-{steps}"))
    difference = (times[1] - times[0]) / (CALIBRATION_STEPS[1] - CALIBRATION_STEPS[0])
    whole = times[1] / CALIBRATION_STEPS[1]  # fixed costs included: an upper bound
    # a noisy difference (the first run paying a cold start) must not give a near-zero time per step
    return difference if 0.25 * whole <= difference <= whole else whole


# ---------------------------------------------------------------------------------- evaluation
def copy_judges(judges: Path, run: Path, skip_fitted: bool = False) -> None:
    """Replace ``run``'s coherence classifiers with those in ``judges`` (one run's ``classifiers``
    folder), recorded in the run's manifest so that the evaluation reuses them: the same judges for
    every run. ``skip_fitted``: leave out the modalities whose preprocessing the run fitted (a caption's
    token ids follow the run's own vocabulary): the evaluation trains those again in the run."""
    from mmlatent.manifest import record_files

    shutil.rmtree(run / "classifiers", ignore_errors=True)
    (run / "classifiers").mkdir(parents=True)
    copied = []
    for source in sorted(judges.iterdir()):
        if skip_fitted and (run / "modalities" / f"{source.name.split('.')[0]}.json").is_file():
            continue
        copied.append(Path(shutil.copy2(source, run / "classifiers" / source.name)))
    record_files(run, copied)


def evaluate(run: Path, limit: int | None, paper_limit: int | None) -> dict[str, Any]:
    """Coherence and Frechet distances of the run (its own sampler; MLD also the paper's sampler)."""
    from mmlatent.evaluation.command import evaluate_run
    from mmlatent.model import load_model

    model = load_model(run)
    metrics = evaluate_run(run, limit=limit, pipeline=model, progress=False)
    out = {"coherence": metrics["coherence"], "fd": metrics["fd"], "nfe": metrics["nfe"]}
    if paper_limit and getattr(model, "recipe", None) is not None and model.recipe.model.family == "mld":
        paper = evaluate_run(run, limit=paper_limit, pipeline=model, progress=False, write=False,
                             recipe_defaults=False, **PAPER_SAMPLER)
        out["paper"] = {"coherence": paper["coherence"], "fd": paper["fd"], "nfe": paper["nfe"],
                        "items": paper["num_items"]}
    return out


def write_grids(run: Path, family: str, variant: str, out_dir: Path, count: int = 16) -> list[Path]:
    """Each single given modality -> every other, for the first ``count`` test items (same for all families)."""
    from mmlatent.model import load_model

    model = load_model(run)
    test = model.dataset("test")
    batch = model.collate([test[i] for i in range(min(count, len(test)))])
    written = []
    for given in model.names:
        outputs = model.generate(given={given: batch[given]}, seed=0)
        for target in model.names:
            if target != given:
                written += model.modalities[target].render(outputs[target].cpu(),
                                                          out_dir / variant / f"{family}_{given}->{target}")
    for name in model.names:  # the given digits themselves, once
        given_file = out_dir / variant / f"given_{name}"
        if not any(given_file.parent.glob(f"{given_file.name}.*")):
            written += model.modalities[name].render(batch[name].cpu(), given_file)
    return written


# ------------------------------------------------------------------------------------- tables
def summarise(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def aggregate(per_seed: list[dict[str, Any]], section: str, key: str = "") -> dict[str, dict[str, float]]:
    """``{metric key: {mean, sd}}`` over seeds of ``per_seed[i][key][section]`` (or ``[section]``)."""
    blocks = [(seed[key] if key else seed)[section] for seed in per_seed if (not key or key in seed)]
    if not blocks:
        return {}
    return {name: summarise([block[name] for block in blocks]) for name in blocks[0]}


def direction_order(names: tuple[str, ...]) -> list[str]:
    keys = ["joint"]
    keys += [f"{a}->{b}" for a in names for b in names if a != b]
    if len(names) > 2:
        keys += [f"{'+'.join(n for n in names if n != t)}->{t}" for t in names]
    return keys


def fd_order(names: tuple[str, ...]) -> list[str]:
    keys = [f"joint:{n}" for n in names]
    keys += [f"{a}->{b}" for a in names for b in names if a != b]
    return keys


def markdown_table(variant: str, results: dict[str, Any], section: str) -> str:
    names = VARIANTS[variant]
    keys = direction_order(names) if section == "coherence" else fd_order(names)
    scale, fmt = (100.0, "{:.1f} ± {:.1f}") if section == "coherence" else (1.0, "{:.2f} ± {:.2f}")
    head = "| family | " + " | ".join(k.replace("->", "→") for k in keys) + " | train s |"
    lines = [head, "|" + "---|" * (len(keys) + 2)]
    for label, row in results.items():
        stats = row.get(section, {})
        cells = [fmt.format(stats[k]["mean"] * scale, stats[k]["sd"] * scale) if k in stats else "-" for k in keys]
        seconds = row.get("train_seconds")
        tail = f"{seconds['mean']:.0f}" if seconds else "-"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {tail} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- main
def run_benchmark(out: Path, variants: list[str], families: list[str], seeds: int, budget: str, vae_epochs: int,
                  limit: int | None, paper_limit: int | None, log=print) -> dict[str, Any]:
    results: dict[str, Any] = {"budget": budget, "seeds": seeds, "variants": {}}
    for variant in variants:
        rows: dict[str, Any] = {}
        mld_seconds: dict[int, float] = {}
        for family in families:
            per_seed, seconds_list = [], []
            for seed in range(seeds):
                run = out / variant / f"{family}-seed{seed}"
                record_file = run.parent / f"{run.name}.json"
                if record_file.is_file():
                    record = json.loads(record_file.read_text())
                else:
                    record = {"seed": seed}
                    steps = None
                    if family != "mld" and budget == "wallclock":
                        if seed not in mld_seconds:
                            raise SystemExit("the wall-clock budget needs the mld family first (--families mld,...)")
                        per_step = seconds_per_step(variant, family, seed, out / variant / "calibration")
                        steps = max(1, round(mld_seconds[seed] / per_step))
                        record["seconds_per_step"] = per_step
                    recipe = family_recipe(variant, family, seed, vae_steps=steps,
                                           vae_epochs=vae_epochs if family != "mld" and budget == "epochs" else None)
                    record["train_seconds"] = train(recipe, run)
                    record["steps"] = steps
                    record |= evaluate(run, limit, paper_limit)
                    if seed == 0:
                        write_grids(run, family, variant, out / "grids")
                    record_file.write_text(json.dumps(record, indent=1))
                if family == "mld":
                    mld_seconds[seed] = record["train_seconds"]
                per_seed.append(record)
                seconds_list.append(record["train_seconds"])
                log(f"{variant} {family} seed {seed}: joint {record['coherence'].get('joint', float('nan')):.3f}, "
                    f"trained {record['train_seconds']:.0f} s")
            label = f"{family} (recipe sampler)" if family == "mld" else family
            rows[label] = {"coherence": aggregate(per_seed, "coherence"), "fd": aggregate(per_seed, "fd"),
                           "train_seconds": summarise(seconds_list), "nfe": per_seed[0].get("nfe")}
            if family == "mld" and any("paper" in r for r in per_seed):
                rows["mld (paper sampler)"] = {"coherence": aggregate(per_seed, "coherence", "paper"),
                                               "fd": aggregate(per_seed, "fd", "paper"),
                                               "train_seconds": summarise(seconds_list),
                                               "nfe": per_seed[0]["paper"]["nfe"],
                                               "items": per_seed[0]["paper"]["items"]}
        results["variants"][variant] = rows
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "baselines")
    parser.add_argument("--variants", default="pair,caption")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", choices=("wallclock", "epochs"), default="wallclock")
    parser.add_argument("--vae-epochs", type=int, default=150)
    parser.add_argument("--limit", type=int, default=None, help="test items per direction (default: all)")
    parser.add_argument("--paper-limit", type=int, default=None,
                        help="also evaluate MLD with the paper's 2,410-NFE sampler on this many test items")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    families = [f for f in args.families.split(",") if f]
    unknown = [v for v in variants if v not in VARIANTS] + [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown variant(s)/family(ies): {', '.join(unknown)}")
    started = time.perf_counter()
    results = run_benchmark(args.out, variants, families, args.seeds, args.budget, args.vae_epochs,
                            args.limit, args.paper_limit, log=lambda line: print(line, file=sys.stderr))
    results["total_s"] = round(time.perf_counter() - started, 1)
    tables = []
    for variant, rows in results["variants"].items():
        budget = ("equal wall-clock (each VAE trained as long as MLD took)" if args.budget == "wallclock"
                  else f"VAEs {args.vae_epochs} epochs")
        tables.append(f"### {variant}: coherence (%), mean ± sd over {args.seeds} training seeds; budget: {budget}\n\n"
                      + markdown_table(variant, rows, "coherence"))
        tables.append(f"### {variant}: Fréchet distance in classifier features (lower is better)\n\n"
                      + markdown_table(variant, rows, "fd"))
    text = "\n\n".join(tables)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n", encoding="utf-8")
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(text)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
