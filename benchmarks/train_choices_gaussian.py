"""Training choices of the masked multi-time loss measured on the closed-form Gaussian.

    OMP_NUM_THREADS=1 python benchmarks/train_choices_gaussian.py [--steps 1500] [--seeds 3]

Trains the small ScoreNet of tests/diffusion (2 modalities a: 2 dims, b: 3 dims, correlated) with
each configuration of ``t_sampling`` x ``loss_weighting`` (and learning-rate warm-up), then scores
the EMA network by

- ``val``: the plain masked multi-time loss (uniform t, no weighting, d = 0.5) on 20,000 fixed
  held-out draws (same masks, times and noise for every configuration);
- ``KL``: KL(fitted Gaussian of the samples || exact law), mean over joint, b|a and a|b, for
  Euler-Maruyama 250 steps (``em``) and DDPM 20 steps (``ddpm20``), 4,000 samples each.

Prints one line per configuration (mean and sd over seeds) and, last, a JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "diffusion"))
from conftest import make_problem  # noqa: E402

from mmlatent.diffusion import (  # noqa: E402
    EMA,
    ScoreNet,
    generate_latents,
    masked_multitime_loss,
    masked_multitime_loss_terms,
    sample_given_mask,
)

CONFIGS = {
    "default (uniform, none)": {},
    "logsnr + likelihood (reference IS)": {"t_sampling": "logsnr", "weighting": "likelihood"},
    "logsnr, none (unbiased IS)": {"t_sampling": "logsnr"},
    "uniform, min_snr": {"weighting": "min_snr"},
    "uniform, none, warmup 200": {"warmup": 200},
}
MODES = {"joint": [False, False], "b|a": [True, False], "a|b": [False, True]}


def train(problem, steps: int, seed: int, t_sampling="uniform", weighting="none", warmup=0, lr=2e-3):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    data = problem.data.sample(20_000, gen)
    net = ScoreNet(problem.layout.total_dim, problem.layout.num_modalities, width=128, blocks=2, time_embed=64)
    ema = EMA(net, decay=0.995)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for step in range(steps):
        if warmup:
            for group in opt.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / warmup)
        batch = data[torch.randint(0, data.shape[0], (256,), generator=gen)]
        loss = masked_multitime_loss(net, batch, problem.sde, problem.layout, d=0.5, generator=gen,
                                     t_sampling=t_sampling, weighting=weighting)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema.update()
    return ema.module.eval()


def kl_to_exact(problem, samples: torch.Tensor, given: torch.Tensor) -> float:
    mean, cov, unknown = problem.data.conditional(given, problem.value)
    y = samples.double()[:, unknown]
    m_hat, c_hat = y.mean(0), torch.cov(y.T)
    inv = torch.linalg.inv(cov)
    diff = m_hat - mean
    return float(0.5 * (torch.trace(inv @ c_hat) + diff @ inv @ diff - len(mean)
                        + torch.logdet(cov) - torch.logdet(c_hat)))


def score(problem, net, val) -> dict[str, float]:
    out = {}
    with torch.no_grad():
        out["val"] = float(masked_multitime_loss_terms(net, val["z"], problem.sde, problem.layout, given=val["given"],
                                                       t=val["t"], noise=val["noise"]).loss)
    for name, sampler, steps in [("em", "euler_maruyama", 250), ("ddpm20", "ddpm", 20)]:
        kls = []
        for mode, mask in MODES.items():
            given = torch.tensor(mask)
            n = 4000
            known = problem.value.expand(n, -1) if given.any() else None
            x = generate_latents(net, problem.sde, problem.layout, n, known=known, given=given, sampler=sampler,
                                 steps=steps, generator=torch.Generator().manual_seed(7)).latents
            kls.append(kl_to_exact(problem, x, given))
        out[name] = statistics.fmean(kls)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    problem = make_problem()
    gen = torch.Generator().manual_seed(12345)
    z = problem.data.sample(20_000, gen)
    val = {"z": z, "given": sample_given_mask(20_000, 2, 0.5, generator=gen),
           "t": 1e-3 + (1 - 1e-3) * torch.rand(20_000, generator=gen), "noise": torch.randn(20_000, 5, generator=gen)}
    results = {}
    for name in args.configs:
        started = time.time()
        runs = [score(problem, train(problem, args.steps, seed, **CONFIGS[name]), val) for seed in range(args.seeds)]
        summary = {key: (statistics.fmean(r[key] for r in runs), statistics.stdev(r[key] for r in runs)
                         if len(runs) > 1 else 0.0) for key in runs[0]}
        results[name] = summary
        print(f"{name:38s} " + "  ".join(f"{k} {m:.4f}+-{s:.4f}" for k, (m, s) in summary.items())
              + f"  ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    print(json.dumps({"steps": args.steps, "seeds": args.seeds, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
