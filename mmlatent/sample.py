"""``mmlatent sample RUN``: generate from any trained run (every model family) and render the samples."""

from __future__ import annotations

from pathlib import Path

from mmlatent.errors import UserError
from mmlatent.model import load_model

__all__ = ["MAX_CLI_SAMPLES", "sample_command"]

#: Most samples one ``mmlatent sample`` makes (more: the model's ``generate`` in batches).
MAX_CLI_SAMPLES = 10_000


def sample_command(args) -> int:
    """``mmlatent sample RUN [--n N] [--given NAME=FILE ...] [--sampler S] [--steps K] --out DIR``.

    ``args`` as :func:`mmlatent.cli.build_parser` makes it, with ``--guidance`` and ``--option``
    already parsed (``args.guidance``: ``{name: weight}``, ``args.options``: ``{key: value}``).
    """
    try:
        if not args.given and not 0 < args.n <= MAX_CLI_SAMPLES:
            raise ValueError(f"--n {args.n}: give 1 to {MAX_CLI_SAMPLES} samples (for more, call "
                             "the model's generate in batches from Python)")
        pipe = load_model(args.run)
        given = {}
        for name, path in args.given:
            if name not in pipe.modalities:
                raise ValueError(f"unknown modality {name!r} in --given (modalities: {', '.join(pipe.names)})")
            if not Path(path).is_file():
                raise ValueError(f"--given {name}={path}: no such file")
            given[name] = pipe.modalities[name].read_file(Path(path))
            if len(given[name]) > MAX_CLI_SAMPLES:
                raise ValueError(f"--given {name}={path} holds {len(given[name])} items; at most "
                                 f"{MAX_CLI_SAMPLES} from the command line")
        plan = pipe.plan(args.sampler, args.steps, args.guidance or None, args.recipe_defaults, **args.options)
        outputs = pipe.generate(n=None if given else args.n, given=given, seed=args.seed, plan=plan, progress=True)
        written = pipe.render(outputs, args.out)
    except (ValueError, FileNotFoundError, KeyError) as error:  # a mistake in the arguments or files
        raise UserError(str(error)) from error
    print(f"{len(next(iter(outputs.values())))} samples with {plan.sampler} "
          f"({pipe.last_nfe} NFE per sample):")
    for path in written:
        print(f"  {path}")
    return 0
