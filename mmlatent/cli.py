"""The ``mmlatent`` command (also ``python -m mmlatent``).

Argument parsing only: every sub-command hands its parsed arguments to the module that owns the
concept (``plugins``, ``recipe``, ``train``, ``pipeline``, ``evaluation``, ``hub``), imported lazily so that
``mmlatent --help`` works even when a plugin or an optional dependency is broken.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from mmlatent.errors import UserError, run_command


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmlatent",
        description="Multi-modal Latent Diffusion: train, sample and evaluate from YAML recipes.",
        epilog="--debug (any command) or MMLATENT_DEBUG=1 shows the traceback of an error. Exit codes: 0 done, "
               "1 diverged or a bug, 2 a mistake in the input or a busy/bad run directory, 130/143 stopped "
               "by SIGINT/SIGTERM (continue with --resume).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list installed plugins, their modality kinds and datasets")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = sub.add_parser("recipes", help="list the recipes shipped with mmlatent (run one by name: mmlatent train "
                                       "quickstart) and the plugins each needs")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = sub.add_parser("validate", help="validate a recipe (a file, or a shipped recipe's name) and exit")
    p.add_argument("recipe")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("train", help="train a recipe (stage 1 autoencoders, stage 2 score network)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    p = sub.add_parser("sample", help="generate samples from a trained run")
    p.add_argument("run")
    p.add_argument("--n", type=int, default=16,
                   help="number of samples, at most 10,000 (ignored when --given sets it)")
    p.add_argument("--given", action="append", default=[], type=_key_value, metavar="NAME=FILE")
    p.add_argument("--sampler", default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", action="append", default=[], type=_key_value, metavar="NAME=WEIGHT")
    p.add_argument("--option", action="append", default=[], type=_key_value, metavar="KEY=VALUE",
                   help="sampler option (YAML value), e.g. --option eta=0.5 --option grid=logsnr")
    p.add_argument("--no-recipe-defaults", dest="recipe_defaults", action="store_false",
                   help="use only the sampler settings given here, not the recipe's sampling section")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = sub.add_parser("evaluate", help="coherence and Frechet distances of a run; writes RUN/metrics.json")
    p.add_argument("run", nargs="?")
    p.add_argument("--sampler", default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", action="append", default=[], type=_key_value, metavar="NAME=WEIGHT")
    p.add_argument("--option", action="append", default=[], type=_key_value, metavar="KEY=VALUE",
                   help="sampler option (YAML value), e.g. --option eta=0.5 --option grid=logsnr")
    p.add_argument("--no-recipe-defaults", dest="recipe_defaults", action="store_false",
                   help="use only the sampler settings given here, not the recipe's sampling section")
    p.add_argument("--limit", type=int, default=None, help="at most N test items per condition")
    p.add_argument("--split", default="test", help="the labelled split to evaluate (default test; val to tune)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", nargs="+", metavar="RUN", help="print a table comparing several runs")

    p = sub.add_parser("export", help="save a trained run as a model folder to share, or push it to the Hugging "
                                      "Face Hub (weights, recipe, model card; no checkpoints)")
    p.add_argument("run", help="a run directory (or a model folder, or a Hub repository id)")
    p.add_argument("--out", default=None, metavar="DIR", help="write the model folder here")
    p.add_argument("--push-to-hub", default=None, metavar="OWNER/NAME", help="upload it to this Hub repository")
    p.add_argument("--private", action="store_true", help="create the Hub repository as private")

    p = sub.add_parser("distill", help="distil a run's score network into a few-step student")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; every expected error ends as a message and an exit code
    (:mod:`mmlatent.errors`); ``--debug`` anywhere, or ``MMLATENT_DEBUG=1``, adds the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    if argv[:1] == ["train"]:  # forward verbatim: `mmlatent train` == `python -m mmlatent.train`
        from mmlatent.train import main as train_main

        return train_main(argv[1:] + (["--debug"] if debug else []))
    if argv[:1] == ["distill"]:
        from mmlatent.distill import main as distill_main

        return distill_main(argv[1:] + (["--debug"] if debug else []))
    args = build_parser().parse_args(argv)
    return run_command(lambda: _dispatch(args), debug=debug)


def parse_sampler_options(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``[("eta", "0.5"), ("grid", "logsnr")]`` (from ``--option KEY=VALUE``) to
    ``{"eta": 0.5, "grid": "logsnr"}``: each value is read as YAML (numbers, booleans, null)."""
    options = {}
    for key, text in pairs:
        try:
            options[key] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise UserError(f"--option {key}={text}: not a YAML value ({error})") from None
    return options


def parse_guidance(pairs: Sequence[tuple[str, str]]) -> dict[str, float]:
    """``[("gray", "1.5")]`` (from ``--guidance NAME=WEIGHT``) to ``{"gray": 1.5}``."""
    guidance = {}
    for name, text in pairs:
        try:
            guidance[name] = float(text)
        except ValueError:
            raise UserError(f"--guidance {name}={text}: the weight must be a number") from None
    return guidance


def _dispatch(args: argparse.Namespace) -> int:
    if hasattr(args, "option"):  # sample, evaluate: sampler settings as values
        args.options = parse_sampler_options(args.option)
        args.guidance = parse_guidance(args.guidance)
    if args.command is None:
        build_parser().print_help()
        return 0
    if args.command == "plugins":
        from mmlatent.plugins import plugins_command

        return plugins_command(as_json=args.json)
    if args.command == "recipes":
        from mmlatent.recipe_library import recipes_command

        return recipes_command(as_json=args.json)
    if args.command == "validate":
        from mmlatent.recipe import validate_command

        return validate_command(args.recipe, args.overrides)
    if args.command == "sample":
        from mmlatent.sample import sample_command

        return sample_command(args)
    if args.command == "evaluate":
        from mmlatent.evaluation.command import evaluate_command

        return evaluate_command(args)
    if args.command == "export":
        from mmlatent.hub import export_command

        return export_command(args)
    raise ValueError(f"unknown command {args.command!r}")


if __name__ == "__main__":
    raise SystemExit(main())
