"""Training on incomplete samples: coherence and Frechet distances against the missing rate.

    python benchmarks/missing.py [--out DIR] [--rates 0,0.25,0.5,0.75] [--families mld,mvtcae]
                                 [--diffusion-steps N] [--vae-steps N] [--vae-rates R,...] [--limit N] [--no-by-label] [--quick]

Data: the quickstart's (``digits_pair`` with captions: ``gray``, ``color``, ``caption``; no download).
Every run is the recipe of ``benchmarks/baselines.py`` (variant ``caption``) with
``data.missing.rate`` = r for every modality (missing completely at random; items left with no
modality drawn again, so the fraction of items lacking a modality is a little below r), and one
missing-not-at-random case (``by_label``: the caption missing for 75% of the digits 0-4, the colour
digit for 75% of the digits 5-9), and complete-case training at ``--complete-case`` (default 0.5: the
same draw, only the items that kept every modality) and at ``--complete-fraction RATE:FRACTION``
(default 0.5:0.5: half of each score-network batch from the complete items). Budgets are the same at every rate: MLD trains each autoencoder
for the steps the recipe's epochs give on the complete training split (on the items that have its
modality) and ``--diffusion-steps`` score-network steps (default: the recipe's); a VAE family
trains ``--vae-steps`` steps. The test split is complete, and every run is judged by the SAME image
classifiers (trained once, on the complete training split of the first run at rate 0, and copied
into every run; the caption classifier reads token ids of the run's own vocabulary, fitted on its
present captions, so it is trained in each run on the items that have a caption), on ``--limit``
test items per direction (default: all).

Writes under ``--out`` (default ``runs/missing``): one run directory per family and case (reused
when its record exists), ``results.json``, ``table.md`` and ``missing.png`` (coherence of every
direction against the rate, one panel per family). Prints the table and, as its LAST line, one
JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402  (the recipes, training and evaluation of benchmarks/baselines.py)

REPO = Path(__file__).resolve().parents[1]
VARIANT = "caption"
NAMES = baselines.VARIANTS[VARIANT]
#: Key of a case's missing section that is a stage-2 setting (diffusion.train.complete_fraction).
COMPLETE_FRACTION = "complete_fraction"
TRAIN_ITEMS = 7000  # items of the quickstart's training split (digits_pair, k = 5)
BY_LABEL = {"caption": {label: 0.75 for label in range(5)}, "color": {label: 0.75 for label in range(5, 10)}}


def case_recipe(family: str, missing: dict[str, Any] | None, diffusion_steps: int | None,
                vae_steps: int | None, quick: bool = False) -> dict[str, Any]:
    """The recipe of ``family`` with ``data.missing`` = ``missing`` (None: complete data); ``quick``:
    a few steps of everything (to check the benchmark end to end, not to measure)."""
    recipe = baselines.family_recipe(VARIANT, family, seed=0, vae_steps=vae_steps if family != "mld" else None)
    if family == "mld" and diffusion_steps:
        recipe["diffusion"]["train"]["steps"] = int(diffusion_steps)
    if quick:
        for modality in recipe["modalities"].values():
            modality["train"] = {"steps": 10, "lr": modality["train"]["lr"]}
        recipe["evaluation"]["classifier_epochs"] = 1
    if family == "mld":  # stage 1 in steps: the complete-data run's, whatever the number of present items
        for modality in recipe["modalities"].values():
            train = modality["train"]
            if "epochs" in train:
                batch = train.get("batch_size") or recipe["data"]["batch_size"]
                train["steps"] = train.pop("epochs") * math.ceil(TRAIN_ITEMS / batch)
    if missing is not None:
        missing = dict(missing)
        fraction = missing.pop(COMPLETE_FRACTION, None)
        if fraction is not None:
            recipe["diffusion"]["train"]["complete_fraction"] = fraction
        recipe["data"]["missing"] = {**missing, "seed": 0}
    recipe["name"] = f"missing_{family}"
    return recipe


def cases(rates: list[float], by_label: bool, complete_case: float = 0.0,
          complete_fractions: Sequence[tuple[float, float]] = ()) -> list[tuple[str, dict[str, Any] | None]]:
    out: list[tuple[str, dict[str, Any] | None]] = []
    for rate in rates:
        out.append((f"rate {rate:g}", None if rate == 0 else {"rate": {name: rate for name in NAMES}}))
    if by_label:
        out.append(("by label", {"by_label": BY_LABEL}))
    if complete_case:
        out.append((f"rate {complete_case:g} complete items only",
                    {"rate": {name: complete_case for name in NAMES}, "complete_only": True}))
    for rate, fraction in complete_fractions:
        out.append((f"rate {rate:g} complete fraction {fraction:g}",
                    {"rate": {name: rate for name in NAMES}, COMPLETE_FRACTION: fraction}))
    return out


def missing_fraction(run: Path) -> dict[str, float]:
    """Fraction of the training items that lack each modality (from the run's latent cache)."""
    from safetensors.torch import load_file

    cached = load_file(str(run / "latents" / "train.safetensors")) if (run / "latents").is_dir() else {}
    if "present" not in cached:
        return {name: 0.0 for name in NAMES}
    return {name: float((~cached["present"][:, i]).double().mean()) for i, name in enumerate(NAMES)}


def run_case(out: Path, family: str, label: str, missing: dict[str, Any] | None, judges: Path | None,
             diffusion_steps: int | None, vae_steps: int | None, limit: int | None,
             quick: bool = False) -> dict[str, Any]:
    run = out / family / label.replace(" ", "_")
    record_file = run.parent / f"{run.name}.json"
    if record_file.is_file():
        return json.loads(record_file.read_text())
    record: dict[str, Any] = {"family": family, "case": label, "missing": missing}
    seconds_file = run.parent / f"{run.name}.seconds"
    if not seconds_file.is_file():  # a trained run whose evaluation did not finish is not trained again
        seconds = baselines.train(case_recipe(family, missing, diffusion_steps, vae_steps, quick), run)
        seconds_file.write_text(f"{seconds}\n")
    record["train_seconds"] = float(seconds_file.read_text())
    if judges is not None:  # the image classifiers judge every run; the caption's is trained per run
        baselines.copy_judges(judges, run, skip_fitted=True)
    else:
        shutil.rmtree(run / "classifiers", ignore_errors=True)
    record |= baselines.evaluate(run, limit, None)
    record["missing_fraction"] = missing_fraction(run)
    record_file.write_text(json.dumps(record, indent=1))
    return record


def table(records: list[dict[str, Any]]) -> str:
    keys = baselines.direction_order(NAMES)
    head = "| family | case | missing (gray/color/caption) | " + " | ".join(k.replace("->", "→") for k in keys) + \
        " | FD joint (gray/color/caption) |"
    lines = [head, "|" + "---|" * (len(keys) + 4)]
    for record in records:
        fractions = "/".join(f"{record['missing_fraction'][n]:.2f}" for n in NAMES)
        cells = [f"{100 * record['coherence'][k]:.1f}" if k in record["coherence"] else "-" for k in keys]
        fds = "/".join(f"{record['fd'].get(f'joint:{n}', float('nan')):.2f}" for n in NAMES)
        lines.append(f"| {record['family']} | {record['case']} | {fractions} | " + " | ".join(cells) + f" | {fds} |")
    return "\n".join(lines)


def plot(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(r["family"] for r in records))
    keys = baselines.direction_order(NAMES)
    figure, axes = plt.subplots(1, len(families), figsize=(5.5 * len(families), 4), squeeze=False, sharey=True)
    for axis, family in zip(axes[0], families):
        rows = [r for r in records if r["family"] == family and r["case"].startswith("rate ")
                and "complete" not in r["case"]]
        rates = [float(r["case"].split()[1]) for r in rows]
        for key in keys:
            axis.plot(rates, [100 * r["coherence"][key] for r in rows], marker="o", label=key.replace("->", "→"),
                      linewidth=2.5 if key == "joint" else 1.2)
        axis.set_title(family)
        axis.set_xlabel("missing rate per modality")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("coherence (%)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "missing")
    parser.add_argument("--rates", default="0,0.25,0.5,0.75")
    parser.add_argument("--families", default="mld,mvtcae")
    parser.add_argument("--diffusion-steps", type=int, default=None, help="MLD score-network steps (default: recipe)")
    parser.add_argument("--vae-steps", type=int, default=3000, help="training steps of each VAE family")
    parser.add_argument("--limit", type=int, default=None, help="test items per direction (default: all)")
    parser.add_argument("--no-by-label", action="store_true", help="skip the missing-by-label case")
    parser.add_argument("--complete-case", type=float, default=0.5,
                        help="also train on only the complete items at this rate (0: no)")
    parser.add_argument("--vae-rates", default=None, help="the rates of the VAE families (default: --rates)")
    parser.add_argument("--complete-fraction", default="0.5:0.5", metavar="RATE:FRACTION[,...]",
                        help="also train at RATE with diffusion.train.complete_fraction FRACTION ('': no)")
    parser.add_argument("--quick", action="store_true",
                        help="a few steps of everything and 30 test items (checks the script, measures nothing)")
    args = parser.parse_args(argv)
    if args.quick:
        args.diffusion_steps, args.vae_steps, args.limit = 20, 5, 30
    rates = [float(r) for r in args.rates.split(",")]
    fractions = [tuple(float(v) for v in item.split(":")) for item in args.complete_fraction.split(",") if item]
    vae_rates = [float(r) for r in (args.vae_rates or args.rates).split(",")]
    if rates[0] != 0 or vae_rates[0] != 0:
        parser.error("--rates must start with 0 (the complete-data run trains the shared classifiers)")
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(families) - set(baselines.FAMILIES)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)} (choose among {', '.join(baselines.FAMILIES)})")
    args.out.mkdir(parents=True, exist_ok=True)
    records, judges = [], None
    for family in families:
        mld = family == "mld"
        for label, missing in cases(rates if mld else vae_rates, not args.no_by_label,
                                    args.complete_case if mld else 0.0, fractions if mld else ()):
            record = run_case(args.out, family, label, missing, judges, args.diffusion_steps, args.vae_steps,
                              args.limit, args.quick)
            if judges is None:
                judges = args.out / family / label.replace(" ", "_") / "classifiers"
            records.append(record)
            print(f"{family} {label}: joint {100 * record['coherence']['joint']:.1f}, "
                  f"trained {record['train_seconds']:.0f} s", flush=True)
    text = table(records)
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps(records, indent=1))
    plot(records, args.out / "missing.png")
    print(text)
    print(json.dumps({"records": [{k: r[k] for k in ("family", "case", "coherence", "fd", "missing_fraction",
                                                    "train_seconds")} for r in records]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
