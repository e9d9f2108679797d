"""The four-modality benchmark of ``recipes/digits_audio.yaml``: gray, color, caption and audio.

    mmlatent train recipes/digits_audio.yaml                     # ~17 min on 2 cores, writes runs/digits_audio
    python benchmarks/digits_audio.py runs/digits_audio [--seeds 3] [--limit N] [--assets DIR]

Prints, on the test split (speakers never heard in training):

1. the audio classifier's accuracy on the real test audio and on the audio autoencoder's
   reconstructions turned back into waveforms by Griffin-Lim with 8, 32 (the recipe) and 100
   iterations, with the inversion's time per item: what the decoder and the inversion lose;
2. coherence of joint generation and of every conditioning set -> target (M = 4: 14 sets),
   mean +- sd over sampling seeds ``0..S-1`` with the recipe's sampler, and the Frechet distances
   in the classifiers' features (for audio: the Frechet audio distance in the audio classifier's
   features), mean over the seeds.

``--assets DIR`` also writes the pictures and sounds of the docs page: for the first 8 test items,
the given gray digits and the audio generated from them (spectrogram grid and WAV files), the given
audio and the gray/color digits and captions generated from it, and 8 joint samples.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from mmlatent.evaluation.command import build_evaluator
from mmlatent.model import load_model

ITERATIONS = (8, 32, 100)


def audio_reconstruction(pipe, evaluator, name: str = "audio") -> dict[str, float]:
    """Audio classifier accuracy on real test audio and on AE reconstructions (Griffin-Lim iterations)."""
    data, labels = evaluator.test_data[name], evaluator.test_data["label"]
    classifier = evaluator.classifiers[name]
    autoencoder = pipe.autoencoders[name].eval()
    out = {"real": float((classifier.predict(data) == labels).float().mean())}
    with torch.no_grad():
        decoded = torch.cat([autoencoder.decode(autoencoder.encode(part)) for part in data.split(256)])
        default = autoencoder.inversion.griffin_lim.n_iter
        for iterations in ITERATIONS:
            autoencoder.inversion.griffin_lim.n_iter = iterations
            started = time.perf_counter()
            waveforms = torch.cat([autoencoder.to_data(part) for part in decoded.split(256)])
            out[f"recon_gl{iterations}_ms_per_item"] = 1000 * (time.perf_counter() - started) / len(data)
            out[f"recon_gl{iterations}"] = float((classifier.predict(waveforms) == labels).float().mean())
        autoencoder.inversion.griffin_lim.n_iter = default
    return out


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def write_assets(pipe, evaluator, directory: Path, count: int = 8) -> list[Path]:
    """Docs figures: gray -> audio, audio -> gray/color/caption, joint samples (first ``count`` test items)."""
    items = {name: evaluator.test_data[name][:count] for name in pipe.names}
    written = []
    written += pipe.render({"gray": items["gray"]}, directory, prefix="given_")
    written += pipe.render({"audio": pipe.generate(given={"gray": items["gray"]}, seed=0)["audio"]}, directory,
                           prefix="gray_to_")
    written += pipe.render({"audio": items["audio"]}, directory, prefix="given_")
    from_audio = pipe.generate(given={"audio": items["audio"]}, seed=0)
    written += pipe.render({name: from_audio[name] for name in ("gray", "color", "caption")}, directory,
                           prefix="audio_to_")
    written += pipe.render(pipe.generate(n=count, seed=0), directory, prefix="joint_")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="test items per condition (default: all)")
    parser.add_argument("--assets", type=Path, default=None)
    args = parser.parse_args(argv)

    pipe = load_model(args.run)
    evaluator, _ = build_evaluator(pipe, args.run, limit=args.limit, progress=False)
    plan = pipe.plan()
    audio = audio_reconstruction(pipe, evaluator)
    runs = []
    for seed in range(args.seeds):
        result = evaluator.run(seed=seed, plan=plan)
        runs.append(result)
        print(f"seed {seed}: joint {result.coherence['joint']:.3f}", file=sys.stderr)
    coherence = {key: mean_sd([r.coherence[key] for r in runs]) for key in runs[0].coherence}
    fd = {key: statistics.fmean([r.fd[key] for r in runs]) for key in runs[0].fd}

    print(f"audio classifier (test, {len(evaluator.test_data['label'])} items): real {audio['real']:.1%}; "
          "reconstructions " + ", ".join(
              f"Griffin-Lim {i}: {audio[f'recon_gl{i}']:.1%} ({audio[f'recon_gl{i}_ms_per_item']:.1f} ms/item)"
              for i in ITERATIONS))
    print(f"\ncoherence (%), mean ± sd over {args.seeds} sampling seeds; sampler {plan.sampler}, "
          f"{runs[0].nfe} NFE\n")
    print("| condition | coherence | FD of the target |\n|---|---|---|")
    for key, (mean, sd) in coherence.items():
        print(f"| {key} | {100 * mean:.1f} ± {100 * sd:.1f} | {fd[key]:.2f} |" if key in fd
              else f"| {key} | {100 * mean:.1f} ± {100 * sd:.1f} | " + ", ".join(
                  f"{k.split(':')[1]} {v:.2f}" for k, v in fd.items() if k.startswith(f"{key}:")) + " |")
    if args.assets is not None:
        written = write_assets(pipe, evaluator, args.assets)
        print(f"\nwrote {len(written)} files under {args.assets}")
    print(json.dumps({"audio": audio, "nfe": runs[0].nfe, "seeds": args.seeds,
                      "coherence": {k: {"mean": m, "sd": s} for k, (m, s) in coherence.items()}, "fd": fd}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
