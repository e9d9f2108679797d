"""NFE and wall-clock cost of every sampler, for joint and conditional generation.

A randomly initialised ScoreNet of the paper's MNIST-SVHN size (latents 16 + 64, width 512,
2 blocks, time embedding 256; output layer drawn small instead of zero so that the samplers do
real work) generates ``--n`` latents with every sampler in ``SAMPLERS`` at its default settings,
jointly and conditionally on the first modality. Reported per sampler and mode: NFE per sample
and seconds per 1,000 samples (measured on ``--n`` samples in one batch, scaled linearly).

    python benchmarks/samplers.py [--n 1000] [--samplers heun ddim ...] [--threads 1]

The last printed line is one JSON object:
{"n": 1000, "threads": 1, "joint": {"heun": {"nfe": 50, "s_per_1000": ...}, ...},
 "conditional": {...}}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from mmlatent.diffusion import SAMPLERS, VPSDE, LatentLayout, ScoreNet, generate_latents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="samples per run (one batch)")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: stable on a shared machine; 0 = torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    sde = VPSDE()
    layout = LatentLayout(args.dims)
    net = ScoreNet(layout.total_dim, layout.num_modalities, width=args.width).eval()
    torch.nn.init.normal_(net.output.weight, std=0.01)
    known = torch.randn(args.n, layout.total_dim)
    given = torch.zeros(layout.num_modalities, dtype=torch.bool)
    given[0] = True
    modes = {"joint": {}, "conditional": {"known": known, "given": given}}

    results: dict[str, object] = {"n": args.n, "threads": torch.get_num_threads(), "width": args.width,
                                  "dims": args.dims}
    print(f"{'sampler':16s} {'mode':12s} {'steps':>6s} {'NFE':>6s} {'s/1000':>9s}")
    for mode, kwargs in modes.items():
        table = {}
        for name in args.samplers:
            gen = torch.Generator().manual_seed(args.seed)
            t0 = time.perf_counter()
            out = generate_latents(net, sde, layout, args.n, sampler=name, generator=gen, **kwargs)
            seconds = time.perf_counter() - t0
            if mode == "conditional":
                assert torch.equal(out.latents[:, layout.slices[0]], known[:, layout.slices[0]])
            per_1000 = seconds * 1000.0 / args.n
            table[name] = {"nfe": out.nfe, "steps": out.steps, "s_per_1000": round(per_1000, 3)}
            print(f"{name:16s} {mode:12s} {out.steps:6d} {out.nfe:6d} {per_1000:9.2f}", flush=True)
        results[mode] = table
    print(json.dumps(results))


if __name__ == "__main__":
    main()
