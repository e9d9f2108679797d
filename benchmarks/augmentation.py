"""TrivialAugmentWide on a training batch: torchvision one image at a time vs the image plugin's batched version.

The per-image path is what the image modality did before the batched one: ``v2.TrivialAugmentWide()`` called
on each uint8 image of the batch (one intra-op thread on the CPU, where more only add overhead for small
images). The batched path is ``mmlatent_image.augmentation.trivial_augment_wide`` on the whole batch (same
operations, magnitudes and pixels). Random uint8 batches of ``--batch`` images at each ``--sizes`` side, on
``--device``; rounds interleave the two paths so that machine noise hits both alike; the figure is the median
time per batch.

    python benchmarks/augmentation.py [--sizes 32,64] [--batch 128] [--rounds 20] [--device cpu]

Last line: one JSON object, e.g. {"device": "cpu", "sizes": {"32": {"per_image_ms": ..., "batched_ms": ...,
"ratio_per_image_over_batched": ...}}}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torchvision.transforms import v2

from mmlatent_image.augmentation import trivial_augment_wide


def per_image(images: torch.Tensor, transform: v2.TrivialAugmentWide) -> torch.Tensor:
    """The former path: one draw and one transform call per image ``(C, H, W)``."""
    threads = torch.get_num_threads()
    if images.device.type == "cpu":
        torch.set_num_threads(1)
    try:
        return torch.stack([transform(image) for image in images])
    finally:
        torch.set_num_threads(threads)


def timed(function, device: torch.device) -> float:
    """Seconds ``function()`` takes, the device's queue included."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    transform = v2.TrivialAugmentWide()
    torch.manual_seed(0)
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        images = torch.randint(0, 256, (args.batch, 3, size, size), dtype=torch.uint8, device=device)
        per_image(images, transform), trivial_augment_wide(images)  # warm-up (lazy imports, kernels, caches)
        old, new = [], []
        for _ in range(args.rounds):
            old.append(timed(lambda: per_image(images, transform), device))
            new.append(timed(lambda: trivial_augment_wide(images), device))
        old_ms, new_ms = 1000 * statistics.median(old), 1000 * statistics.median(new)
        results[str(size)] = {"per_image_ms": round(old_ms, 2), "batched_ms": round(new_ms, 2),
                              "ratio_per_image_over_batched": round(old_ms / new_ms, 2)}
        print(f"{size}x{size}, batch {args.batch}, {device}: per image {old_ms:.1f} ms, batched {new_ms:.1f} ms "
              f"per batch ({old_ms / new_ms:.1f}x)", flush=True)
    summary = {"device": str(device), "batch": args.batch, "threads": torch.get_num_threads(), "sizes": results}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
