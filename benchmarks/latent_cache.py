"""Stage-2 epoch time with the encode-once latent cache vs re-encoding every batch.

Two modalities shaped like MNIST-SVHN (gray 1x28x28 through the image plugin's ``mlp`` autoencoder,
latent 16; colour 3x32x32 through its ``conv`` autoencoder, latent 64) when mmlatent-image is
installed, else two built-in ``vector`` MLP autoencoders. One stage-2 epoch = every training item
once, batch 128, a width-512 score network, Adam + EMA. The cached epoch indexes precomputed
standardised latents; the uncached one runs both encoders on every batch (no grad), as training
without a cache would. Rounds are interleaved so that machine noise hits both alike.

    python benchmarks/latent_cache.py [--items 4096] [--rounds 3] [--threads 1]

Last line: one JSON object, e.g. {"ratio_uncached_over_cached": 3.1, ...}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from mmlatent.diffusion import EMA, VPSDE, LatentLayout, ScoreNet, masked_multitime_loss
from mmlatent.latents import LatentStats
from mmlatent.plugins import get_registry


def build_modalities():
    registry = get_registry()
    if "image" in registry.modalities:
        spec = registry.modality("image")
        gray = spec.build("gray", {"channels": 1, "size": 28, "arch": "mlp"}, 16)
        color = spec.build("color", {"channels": 3, "size": 32, "arch": "conv"}, 64)
        return {"gray": (gray, (1, 28, 28)), "color": (color, (3, 32, 32))}, "image (mlp 28x28 + conv 32x32)"
    spec = registry.modality("vector")
    a = spec.build("a", {"arch": "mlp", "size": 784, "hidden": [400]}, 16)
    b = spec.build("b", {"arch": "mlp", "size": 3072, "hidden": [512, 256]}, 64)
    return {"a": (a, (784,)), "b": (b, (3072,))}, "vector (mlp)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    modalities, kind = build_modalities()
    names = list(modalities)
    autoencoders = {n: m.build_autoencoder().eval() for n, (m, _) in modalities.items()}
    data = {n: torch.rand(args.items, *shape) for n, (_, shape) in modalities.items()}

    start = time.perf_counter()
    with torch.no_grad():
        raw = {n: torch.cat([autoencoders[n].encode(x) for x in data[n].split(512)]) for n in names}
    encode_once_s = time.perf_counter() - start
    stats = LatentStats.fit(raw)
    cache = stats.concat(raw, names)

    layout = LatentLayout([autoencoders[n].latent_dim for n in names], names)
    sde = VPSDE()
    net = ScoreNet(layout.total_dim, layout.num_modalities, width=512, blocks=2, time_embed=256)
    ema = EMA(net, 0.999)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step(z: torch.Tensor) -> None:
        loss = masked_multitime_loss(net, z, sde, layout, d=0.5)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ema.update()

    def epoch(cached: bool) -> float:
        order = torch.randperm(args.items)
        begin = time.perf_counter()
        for idx in order.split(args.batch):
            if cached:
                z = cache[idx]
            else:
                with torch.no_grad():
                    z = stats.concat({n: autoencoders[n].encode(data[n][idx]) for n in names}, names)
            step(z)
        return time.perf_counter() - begin

    epoch(True)  # warm-up
    cached_s, uncached_s = [], []
    for _ in range(args.rounds):
        cached_s.append(epoch(True))
        uncached_s.append(epoch(False))
    cached, uncached = min(cached_s), min(uncached_s)
    figures = {
        "autoencoders": kind,
        "items": args.items,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "cached_epoch_s": round(cached, 3),
        "uncached_epoch_s": round(uncached, 3),
        "encode_once_s": round(encode_once_s, 3),
        "ratio_uncached_over_cached": round(uncached / cached, 3),
    }
    print(f"stage-2 epoch of {args.items} items: cached {cached:.2f} s, re-encoding {uncached:.2f} s "
          f"({uncached / cached:.2f}x); encoding once costs {encode_once_s:.2f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
