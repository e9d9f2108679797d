"""What a code of L numbers can reach on the colour digits' test images when it is given the rendering.

    python benchmarks/digit_codes.py [--size 32] [--latents 16,24,32,40] [--steps 4000] [--width 512] [--seed 0]

``benchmarks/image_autoencoders.py`` codes each colour digit in a latent of L numbers. A rendering is 8 numbers
(foreground and background colour, shift; ``RENDERING_NUMBERS``) and a digit shape (8x8, upsampled). Two
reference codes are GIVEN those 8 numbers exactly and code the shape in the other L - 8:

- ``linear``: the shape's projection on the leading principal components of the training digits;
- ``mlp``: a multilayer-perceptron autoencoder of the shapes (64 -> W -> W -> L - 8 -> W -> W -> 64, SiLU;
  AdamW 1e-3, weight decay 1e-4, batch 128, ``--steps`` steps) trained on the training digits, its parameters
  taken at the checkpoint (every 250 steps) with the least error on held-out training digits (the dataset's
  ``val_fraction`` 0.1 split; the test digits are never seen).

Each code's shapes are rendered as the dataset renders them (same colours and shifts, no pixel noise); their
PSNR against the test images and against the noise-free test renderings is what an image autoencoder of latent
L would reach if it learned the rendering perfectly and coded the shape as well as that code. The noise
ceiling (the noise-free renderings themselves) is printed beside them.

Prints a table and, as its LAST line, one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_autoencoders as bench  # noqa: E402  (the colour digits, their renderings and PSNR)

CHECK_EVERY = 250  # steps between the held-out checks that pick the mlp code's parameters
VAL_FRACTION = 0.1


def shape_autoencoder(code: int, width: int) -> torch.nn.Sequential:
    """Shapes ``(B, 64)`` -> ``(B, 64)`` through a code of ``code`` numbers."""
    silu = torch.nn.SiLU
    return torch.nn.Sequential(
        torch.nn.Linear(64, width), silu(), torch.nn.Linear(width, width), silu(), torch.nn.Linear(width, code),
        torch.nn.Linear(code, width), silu(), torch.nn.Linear(width, width), silu(), torch.nn.Linear(width, 64))


def train_shape_code(size: int, code: int, width: int, steps: int, seed: int) -> tuple[torch.nn.Module, dict]:
    """The ``mlp`` code of ``code`` numbers, its parameters from the best held-out checkpoint, and its record
    (``best_step``, ``val_mse`` there and at the first checkpoint, ``train_mse`` there; MSE per shape pixel)."""
    torch.manual_seed(seed)
    shapes = bench.digit_shapes()
    train = shapes[bench.digit_split(size, "train", VAL_FRACTION)]
    held_out = shapes[bench.digit_split(size, "val", VAL_FRACTION)]
    model = shape_autoencoder(code, width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    best, first_val, best_state = None, None, None
    for step in range(1, steps + 1):
        batch = train[torch.randint(len(train), (128,), generator=generator)]
        loss = torch.nn.functional.mse_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % CHECK_EVERY == 0 or step == steps:
            with torch.no_grad():
                val = float(torch.nn.functional.mse_loss(model(held_out), held_out))
            first_val = val if first_val is None else first_val
            if best is None or val < best["val_mse"]:
                with torch.no_grad():
                    train_mse = float(torch.nn.functional.mse_loss(model(train), train))
                best = {"best_step": step, "val_mse": val, "train_mse": train_mse}
                best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval(), {**best, "first_val_mse": first_val}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--latents", default="16,24,32,40", help="latent sizes L (each > 8)")
    parser.add_argument("--steps", type=int, default=4000, help="training steps of each mlp code")
    parser.add_argument("--width", type=int, default=512, help="hidden width W of the mlp codes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    latents = [int(v) for v in args.latents.split(",") if v]
    if not latents or min(latents) <= bench.RENDERING_NUMBERS:
        parser.error(f"--latents: each must be above {bench.RENDERING_NUMBERS} (the rendering's numbers)")
    images = bench.load_images("digits", args.size)
    ceiling = bench.psnr(bench.per_image_mse(images.noise_free, images.test))
    shapes = bench.digit_shapes()
    rows = []
    for latent in latents:
        linear = bench.factorised_code_psnr(images, args.size, latent)
        model, record = train_shape_code(args.size, latent - bench.RENDERING_NUMBERS, args.width, args.steps, args.seed)
        with torch.no_grad():
            mlp = bench.rendered_shapes_psnr(images, args.size, model(shapes))
        rows.append({"latent": latent, "linear_psnr": linear, "mlp_psnr": mlp, "mlp": record})
        print(f"latent {latent}: linear {linear[0]:.2f} / {linear[1]:.2f} dB, mlp {mlp[0]:.2f} / {mlp[1]:.2f} dB "
              f"(step {record['best_step']})", flush=True)
    lines = [f"colour digits {args.size}x{args.size}, {len(images.test)} test images; PSNR test / to noise-free (dB) of "
             "codes given the colours and shift", "",
             "| latent | shape numbers | linear code | mlp code (held-out step) |", "|---|---|---|---|"]
    for row in rows:
        (lt, ln), (mt, mn) = row["linear_psnr"], row["mlp_psnr"]
        lines.append(f"| {row['latent']} | {row['latent'] - bench.RENDERING_NUMBERS} | {lt:.2f} / {ln:.2f} | "
                     f"{mt:.2f} / {mn:.2f} ({row['mlp']['best_step']}) |")
    lines.append(f"\nnoise ceiling (the noise-free renderings against the test images): {ceiling:.2f} dB")
    print("\n".join(lines))
    summary = {"size": args.size, "steps": args.steps, "width": args.width, "noise_ceiling_psnr": ceiling, "codes": rows}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
