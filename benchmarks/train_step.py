"""Cost of one full masked multi-time training step against the bare step of the same network.

Full step (what stage 2 of training does per batch of cached latents): conditioning-subset
sampling from nu(d), times and noise, masking, the multi-time vector, the Omega-weighted masked
loss, backward, Adam, and the EMA update of the weights.

Bare step: forward of the same ScoreNet on the same batch with a fixed tau, plain MSE against a
fixed noise tensor, backward, Adam. No masking, no EMA.

Both run on identical copies of the network (paper size for MNIST-SVHN: latents 16 + 64, width
512, 2 blocks, time embedding 256), interleaved round by round (the order alternates) so that
machine noise hits both alike; the ratio reported per batch size is the median over rounds of
(full time / bare time).

    python benchmarks/train_step.py [--batch-sizes 128 1024] [--rounds 20] [--steps 10] [--threads 1]

One torch thread by default: on a shared 2-core machine OpenMP threads that wait on each other
make timings erratic (pass --threads 0 for torch's default).

The last printed line is one JSON object: {"ratio_b128": ..., "ratio_b1024": ..., ...}.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from mmlatent.diffusion import EMA, VPSDE, LatentLayout, ScoreNet, masked_multitime_loss


def build(latent_dims, width, blocks, time_embed, seed):
    torch.manual_seed(seed)
    layout = LatentLayout(latent_dims)
    net = ScoreNet(layout.total_dim, layout.num_modalities, width, blocks, time_embed)
    # a trained network has a non-zero output layer; keep the benchmark away from the zero init
    torch.nn.init.normal_(net.output.weight, std=0.01)
    return layout, net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=10, help="steps per round and variant")
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64], help="latent size per modality")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--time-embed", type=int, default=256)
    parser.add_argument("--d", type=float, default=0.5, help="probability of a conditional step")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: stable on a shared machine; 0 = torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    sde = VPSDE()
    layout, net_full = build(args.dims, args.width, args.blocks, args.time_embed, args.seed)
    net_bare = copy.deepcopy(net_full)
    opt_full = torch.optim.Adam(net_full.parameters(), lr=1e-4)
    opt_bare = torch.optim.Adam(net_bare.parameters(), lr=1e-4)
    ema = EMA(net_full, decay=0.999)
    gen = torch.Generator().manual_seed(args.seed)
    cache = torch.randn(20_000, layout.total_dim, generator=gen)  # stands in for cached latents

    def full_step(z):
        loss = masked_multitime_loss(net_full, z, sde, layout, d=args.d, generator=gen)
        opt_full.zero_grad(set_to_none=True)
        loss.backward()
        opt_full.step()
        ema.update()

    def bare_step(z, tau, noise):
        loss = (net_bare(z, tau) - noise).square().mean()
        opt_bare.zero_grad(set_to_none=True)
        loss.backward()
        opt_bare.step()

    results: dict[str, float] = {}
    for batch in args.batch_sizes:
        z = cache[torch.randint(0, cache.shape[0], (batch,), generator=gen)]
        tau = torch.rand(batch, layout.num_modalities, generator=gen)
        noise = torch.randn(batch, layout.total_dim, generator=gen)

        def run_full():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                full_step(z)
            return (time.perf_counter() - t0) / args.steps

        def run_bare():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                bare_step(z, tau, noise)
            return (time.perf_counter() - t0) / args.steps

        run_full(), run_bare()  # warm-up (allocator, Adam state, EMA first copy)
        full_times, bare_times, ratios = [], [], []
        for r in range(args.rounds):
            if r % 2 == 0:
                f, b = run_full(), run_bare()
            else:
                b, f = run_bare(), run_full()
            full_times.append(f)
            bare_times.append(b)
            ratios.append(f / b)
        ratio = statistics.median(ratios)
        full_ms = 1e3 * statistics.median(full_times)
        bare_ms = 1e3 * statistics.median(bare_times)
        print(f"batch {batch:5d}: full step {full_ms:8.2f} ms, bare step {bare_ms:8.2f} ms, ratio {ratio:.3f}")
        results[f"ratio_b{batch}"] = round(ratio, 3)
        results[f"full_ms_b{batch}"] = round(full_ms, 3)
        results[f"bare_ms_b{batch}"] = round(bare_ms, 3)
    results["threads"] = torch.get_num_threads()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
