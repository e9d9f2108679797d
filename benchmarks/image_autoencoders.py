"""The image autoencoders at equal latent size and equal wall-clock: conv, resnet and ldm (MLD*'s).

    python benchmarks/image_autoencoders.py [--out DIR] [--budget 150] [--sizes 32,64] [--archs conv,resnet,ldm]
                                            [--latent 32] [--mld-size 32] [--diffusion-steps 8000] [--quick]
                                            [--psnr-at 30,60,120] [--ldm-channels 16,32,64,64] [--device cuda]
                                            [--data digits|photos|cub] [--root data/birds] [--lr 1e-3]
                                            [--schedule constant|cosine] [--augment]

Data (``--data``): ``digits`` (default), the colour digits of ``digits_pair`` (scikit-learn's handwritten
digits rendered like SVHN; no download) at each ``--sizes`` side (upsampled from 8x8); ``photos``, crops at
full resolution of scikit-learn's two sample photographs (training crops from the left three quarters of
each, test crops from the right quarter; real photographic detail, no download); ``cub``, the CUB-200-2011
images under ``--root`` (the ``cub`` dataset's layout and class-disjoint split, resized to each size; exit 2
with what to download when missing). Only the digits have labels for the classifier (CUB's test classes are
not among its training ones) and a noise-free version. For every size and architecture, the
image plugin's autoencoder (its default channels, latent ``--latent``, squared error, Adam ``--lr`` (1e-3),
constant or annealed to 0 along a cosine over the budget (``--schedule``), batch 128, TrivialAugmentWide
with ``--augment``, else none) trains on the training images for ``--budget`` seconds of wall-clock (the
same for every architecture; run it alone on the machine), then on the test images:
reconstruction MSE per pixel, PSNR (mean over images of 10 log10(1 / MSE)), the PSNR against the
same test images without their pixel noise (std 0.05: a 32-dimensional latent cannot carry it, so
the plain PSNR of even a perfect reconstruction is that of the noise-free images, printed as the
ceiling, 26.2 dB at 32x32; the signal PSNR has no such ceiling; beside it, that of a reference code of
``--latent`` numbers given each rendering's colours and shift, the digit coded by its leading principal
components: ``factorised_code_psnr``, ``benchmarks/digit_codes.py``), the accuracy of a
colour classifier (trained once per size on the real training images) on the reconstructions, and
the training speed in images/s. ``--psnr-at`` also records the test PSNR at those seconds of training
(the evaluation's time not counted) and the PSNR on 1,000 training images, the curve that shows whether an
architecture has converged, or overfits (training PSNR rising, test PSNR falling);
``--ldm-channels`` sets ``ldm``'s level channels (default: the plugin's); ``--device`` where the
autoencoders train (default cpu; the budget is then that device's wall-clock).

At ``--mld-size`` (default 32 with the digits; none otherwise), an MLD run is built on each: the
quickstart recipe at that size with the colour modality's autoencoder of that architecture trained for
the steps it reached in the budget, ``--diffusion-steps`` score-network steps; coherence of every
direction and Frechet distances by ``mmlatent evaluate``'s code, the same classifiers judging every run.

Writes under ``--out`` (default ``runs/image_autoencoders``): ``table.md``, ``results.json``, one
run directory per architecture, ``reconstructions_<size>.png`` (test images, then each
architecture's reconstructions). Prints the tables and, as its LAST line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402  (training and evaluation as benchmarks/baselines.py does them)

REPO = Path(__file__).resolve().parents[1]
ARCHS = ("conv", "resnet", "ldm")
DATA = ("digits", "photos", "cub")
SCHEDULES = ("constant", "cosine")
RENDERING_NUMBERS = 8  # what a colour digit is beside its shape: foreground and background colour, shift (y, x)
BATCH = 128  # training images per step, every architecture
TRAIN_PROBE = 1000  # training images whose PSNR the curve records beside the test PSNR


@dataclass
class ImageSet:
    """One size's benchmark images, ``(N, 3, size, size)`` in [0, 1]. ``train_labels`` / ``test_labels`` ``(N,)``
    where the test classes are among the training ones (a classifier then judges reconstructions), else None;
    ``noise_free``: the test images without their pixel noise (the colour digits only), else None."""

    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    noise_free: torch.Tensor | None = None


def load_images(data: str, size: int, root: Path = Path("data/birds")) -> ImageSet:
    """The images of ``data`` (one of :data:`DATA`) at ``size``; ``root``: the CUB folder (``data == "cub"``)."""
    if data == "digits":
        (train, train_labels), (test, test_labels) = colour_digits(size, "train"), colour_digits(size, "test")
        return ImageSet(train, test, train_labels, test_labels, colour_digits(size, "test", noise=0.0)[0])
    if data == "photos":
        return ImageSet(photo_crops(size, "train"), photo_crops(size, "test"))
    if data == "cub":
        return ImageSet(cub_images(root, size, "train"), cub_images(root, size, "test"))
    raise ValueError(f"unknown data {data!r} (choose among {', '.join(DATA)})")


def digits_options(size: int, noise: float | None = None) -> dict[str, Any]:
    """The ``digits_pair`` options of the benchmark's colour digits at ``size`` (``noise``: default the dataset's)."""
    return {"k": 5, "captions": False, "seed": 0, "size": size, **({} if noise is None else {"noise": noise})}


def colour_digits(size: int, split: str, noise: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour digits of ``digits_pair``'s ``split`` at ``size``: images (N, 3, size, size) in [0, 1], labels (N,).
    ``noise``: the std of their pixel noise (default: the dataset's); the digits, colours and shifts do not
    depend on it, so ``noise=0`` gives the noise-free renderings of the same images."""
    from mmlatent.plugins import get_registry

    spec = get_registry().dataset("digits_pair")
    dataset = spec.build(spec.validate_options(digits_options(size, noise)), split)
    modality = image_modality("conv", size, 32)
    items = [dataset[i] for i in range(len(dataset))]
    images = torch.stack([modality.preprocess(item["color"]) for item in items])
    return images, torch.tensor([int(item["label"]) for item in items])


def factorised_code_psnr(images: ImageSet, size: int, latent: int) -> tuple[float, float] | None:
    """PSNR (test images, their noise-free renderings) of a reference code of ``latent`` numbers for the colour
    digits' test images ``images.test`` ``(N, 3, size, size)``: each rendering's colours and shift exactly
    (:data:`RENDERING_NUMBERS`) and its digit's projection on the leading ``latent - 8`` principal components of
    the training digits (8x8), rendered as the dataset renders them. It is what a code that takes the rendering
    apart and codes the shape linearly reaches; a nonlinear shape code may do better (``benchmarks/digit_codes.py``),
    no code better than the noise ceiling. None when ``latent`` leaves no number for the shape."""
    if latent <= RENDERING_NUMBERS:
        return None
    digits = digit_shapes()
    train = digits[digit_split(size, "train")].double()
    mean = train.mean(0)
    components = torch.linalg.svd(train - mean, full_matrices=False).Vh[: latent - RENDERING_NUMBERS]  # (k, 64)
    return rendered_shapes_psnr(images, size, ((digits.double() - mean) @ components.T @ components + mean).float())


def digit_shapes() -> torch.Tensor:
    """Every digit of ``digits_pair`` (scikit-learn's 1,797) as the shape the renderings draw: ``(1797, 64)`` in [0, 1]."""
    from mmlatent_image.datasets.digits_pair import scikit_learn_digits

    digits = scikit_learn_digits()[0]
    return torch.tensor(digits.reshape(len(digits), -1))


def digit_split(size: int, split: str, val_fraction: float = 0.0) -> torch.Tensor:
    """The rows of :func:`digit_shapes` in the colour digits' ``split`` (``(n,)``; ``val_fraction`` > 0 takes a
    ``val`` split out of ``train``, as the dataset option does)."""
    from mmlatent.plugins import get_registry
    from mmlatent_image.datasets.digits_pair import split_digits

    spec = get_registry().dataset("digits_pair")
    return torch.tensor(split_digits(spec.validate_options({**digits_options(size), "val_fraction": val_fraction}))[split])


def rendered_shapes_psnr(images: ImageSet, size: int, shapes: torch.Tensor) -> tuple[float, float]:
    """PSNR (test images ``images.test``, their noise-free renderings) of the test renderings redrawn with every
    digit replaced by ``shapes`` ``(1797, 64)`` (a code's reconstructions of :func:`digit_shapes`), each with its
    own colours and shift: the test PSNR of a code that carries the colours and shift exactly."""
    from mmlatent.plugins import get_registry
    from mmlatent_image.datasets.digits_pair import render_dataset_digits

    spec = get_registry().dataset("digits_pair")
    noise_free = spec.validate_options(digits_options(size, noise=0.0))
    _, renderings = render_dataset_digits(noise_free, shapes.reshape(-1, 8, 8).numpy())  # clamped after upsampling
    rows = spec.build(spec.validate_options(digits_options(size)), "test").arrays["color"][1]  # each item's rendering
    modality = image_modality("conv", size, 32)
    coded = torch.stack([modality.preprocess(renderings[row]) for row in rows])
    return psnr(per_image_mse(coded, images.test)), psnr(per_image_mse(coded, images.noise_free))


def sample_photographs() -> list[torch.Tensor]:
    """scikit-learn's two sample photographs (china.jpg, flower.jpg; shipped with it): ``(3, 427, 640)`` in [0, 1]."""
    from sklearn.datasets import load_sample_images

    return [torch.from_numpy(photo.copy()).permute(2, 0, 1).float().div(255) for photo in load_sample_images().images]


def photo_crops(size: int, split: str, per_photo: int | None = None, seed: int = 0) -> torch.Tensor:
    """Crops ``(N, 3, size, size)`` at full resolution of scikit-learn's two sample photographs (china.jpg,
    flower.jpg, 427x640, shipped with scikit-learn: no download). The left three quarters of each photograph give
    the training crops (3,500 each), the right quarter the test crops (400 each): no test pixel is seen in
    training. Real photographic detail, unlike the upsampled digits; no labels, no pixel noise added."""
    if split not in ("train", "test"):
        raise ValueError(f"photo crops have splits 'train' and 'test', not {split!r}")
    count = per_photo or (3500 if split == "train" else 400)
    generator = torch.Generator().manual_seed(seed + (split == "test"))
    crops = []
    for image in sample_photographs():
        height, width = image.shape[1:]
        border = width * 3 // 4
        left, right = (0, border - size) if split == "train" else (border, width - size)
        if right < left or height < size:
            raise ValueError(f"photo crops of side {size} do not fit the {split} part of a {height}x{width} photo")
        xs = torch.randint(left, right + 1, (count,), generator=generator)
        ys = torch.randint(0, height - size + 1, (count,), generator=generator)
        crops += [image[:, y:y + size, x:x + size] for x, y in zip(xs.tolist(), ys.tolist())]
    return torch.stack(crops)


def cub_images(root: Path, size: int, split: str) -> torch.Tensor:
    """The CUB images of ``split`` (the class-disjoint split of the ``cub`` dataset, read by its loader, resized
    to ``size``) ``(N, 3, size, size)``; a missing folder raises the dataset's error, which says what to get."""
    from mmlatent.plugins import get_registry

    spec = get_registry().dataset("cub")
    dataset = spec.build(spec.validate_options({"root": str(root), "captions": "first", "image_size": size,
                                                "cache_images": False}), split)
    modality = image_modality("conv", size, 32)
    return torch.stack([modality.preprocess(dataset.image(i)) for i in range(len(dataset.image_paths))])


def image_modality(arch: str, size: int, latent: int, arch_options: dict[str, Any] | None = None):
    from mmlatent.plugins import get_registry

    options = {"channels": 3, "size": size, "arch": arch, **(arch_options or {})}
    return get_registry().modality("image").build("color", options, latent)


def per_image_mse(reconstructions: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Squared error per pixel of each image: ``(N, C, H, W)`` twice -> ``(N,)``."""
    return (reconstructions - images).pow(2).flatten(1).mean(1)


def psnr(mse: torch.Tensor) -> float:
    """Mean over images of 10 log10(1 / MSE) (images in [0, 1]; ``mse``: :func:`per_image_mse`)."""
    return float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())


def train_classifier(train: tuple[torch.Tensor, torch.Tensor], size: int, epochs: int) -> torch.nn.Module:
    from mmlatent.evaluation.classifiers import ClassifierSettings
    from mmlatent.evaluation.classifiers import train_classifier as fit

    torch.manual_seed(0)
    model = image_modality("conv", size, 32).build_classifier(10)
    return fit(model, train[0], train[1], ClassifierSettings(epochs=epochs), progress=False).eval()


@torch.no_grad()
def reconstruct(autoencoder, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The autoencoder's reconstructions of ``images`` ``(N, C, H, W)``, on the images' device; the batches run on
    the autoencoder's device."""
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    return torch.cat([autoencoder.to_data(autoencoder.decode(autoencoder.encode(x.to(device)))).to(images.device)
                      for x in images.split(batch)])


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (an accelerator runs asynchronously: a clock read without this
    would not count the queued steps)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def learning_rate(lr: float, schedule: str, trained: float, budget: float) -> float:
    """Adam's rate after ``trained`` of ``budget`` seconds: ``lr`` throughout (``constant``), or from ``lr`` down
    to 0 along half a cosine over the wall-clock budget (``cosine``: every architecture ends annealed however
    many steps it made)."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * min(trained / budget, 1.0)))
    raise ValueError(f"unknown schedule {schedule!r} (constant or cosine)")


def train_for(arch: str, size: int, latent: int, images: torch.Tensor, budget: float, batch: int = BATCH,
              lr: float = 1e-3, arch_options: dict[str, Any] | None = None,
              checkpoints: tuple[float, ...] = (), on_checkpoint=None,
              device: torch.device | str = "cpu", schedule: str = "constant") -> tuple[Any, int, float]:
    """Train the ``arch`` autoencoder on ``images`` for ``budget`` seconds on ``device``: (autoencoder, steps, seconds).
    The rate follows ``learning_rate(lr, schedule, ...)``; with ``augment`` in ``arch_options`` the batches
    are augmented as the modality trains them (``ImageModality.augment``: TrivialAugmentWide, one draw per
    image). At each of ``checkpoints`` (seconds of training) ``on_checkpoint(autoencoder, steps, seconds)`` is
    called; its time is not counted."""
    device = torch.device(device)
    torch.manual_seed(0)
    modality = image_modality(arch, size, latent, arch_options)
    autoencoder = modality.build_autoencoder().to(device)
    images = images.to(device)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    steps, trained = 0, 0.0
    for mark in sorted({*(c for c in checkpoints if c < budget), budget}):
        autoencoder.train()
        started = time.perf_counter()
        while (elapsed := trained + time.perf_counter() - started) < mark:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(lr, schedule, elapsed, budget)
            x = modality.augment(images[torch.randint(len(images), (batch,), generator=generator)])
            loss = autoencoder.training_loss(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        synchronize(device)
        trained += time.perf_counter() - started
        if on_checkpoint is not None and mark < budget:
            on_checkpoint(autoencoder, steps, trained)
    return autoencoder, steps, trained


def measure(arch: str, size: int, latent: int, images: ImageSet, classifier, budget: float,
            arch_options: dict[str, Any] | None = None, checkpoints: tuple[float, ...] = (),
            device: torch.device | str = "cpu", lr: float = 1e-3, schedule: str = "constant") -> dict[str, Any]:
    """Train ``arch`` on ``images.train`` for ``budget`` seconds on ``device`` and measure it on ``images.test``;
    with ``images.noise_free`` also the signal PSNR (to the test images without their pixel noise: what a latent
    can carry), with a ``classifier`` (and test labels) its accuracy on the reconstructions (else None). The
    curve also has the PSNR on the first ``TRAIN_PROBE`` training images (test far below it: overfitting;
    both low: the architecture has not fitted yet)."""
    curve: list[dict[str, float | None]] = []
    probe = images.train[:TRAIN_PROBE]

    def record_psnr(autoencoder, steps: int, seconds: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the test PSNRs now to ``curve``: the reconstructions ``(N, C, H, W)`` and their error ``(N,)``."""
        recon = reconstruct(autoencoder, images.test)
        mse = per_image_mse(recon, images.test)
        signal = None if images.noise_free is None else psnr(per_image_mse(recon, images.noise_free))
        train = psnr(per_image_mse(reconstruct(autoencoder, probe), probe))
        curve.append({"seconds": round(seconds, 1), "steps": steps, "psnr": psnr(mse), "signal_psnr": signal,
                      "train_psnr": train})
        return recon, mse

    autoencoder, steps, seconds = train_for(arch, size, latent, images.train, budget, lr=lr, arch_options=arch_options,
                                            checkpoints=checkpoints, on_checkpoint=record_psnr, device=device,
                                            schedule=schedule)
    recon, mse = record_psnr(autoencoder, steps, seconds)
    accuracy = None
    if classifier is not None:
        accuracy = float((classifier(recon).argmax(1) == images.test_labels).double().mean())
    return {"arch": arch, "size": size, "latent": latent, "arch_options": arch_options or {}, "lr": lr,
            "schedule": schedule, "steps": steps,
            "seconds": seconds, "images_per_s": steps * BATCH / seconds,
            "parameters": sum(p.numel() for p in autoencoder.parameters()),
            "mse": float(mse.mean()), "psnr": curve[-1]["psnr"],
            "signal_psnr": curve[-1]["signal_psnr"], "psnr_curve": curve, "classifier_on_reconstructions": accuracy,
            "reconstructions": recon[:8]}


def mld_recipe(arch: str, size: int, latent: int, steps: int, diffusion_steps: int, quick: bool,
               arch_options: dict[str, Any] | None = None) -> dict[str, Any]:
    recipe = baselines.family_recipe("caption", "mld", seed=0)
    recipe["name"] = f"image_ae_{arch}"
    recipe["data"]["options"]["size"] = size
    recipe["modalities"]["gray"]["options"]["size"] = size
    color = recipe["modalities"]["color"]
    color["latent_dim"] = latent
    color["options"] = {"channels": 3, "size": size, "arch": arch, **(arch_options or {})}
    color["train"] = {"steps": max(1, steps), "lr": 1e-3}
    recipe["diffusion"]["train"]["steps"] = diffusion_steps
    if quick:
        for name in ("gray", "caption"):
            recipe["modalities"][name]["train"] = {"steps": 5, "lr": recipe["modalities"][name]["train"]["lr"]}
        recipe["evaluation"]["classifier_epochs"] = 1
    return recipe


def mld_run(out: Path, arch: str, size: int, latent: int, steps: int, diffusion_steps: int, judges: Path | None,
            limit: int | None, quick: bool, arch_options: dict[str, Any] | None = None) -> dict[str, Any]:
    run = out / f"mld_{arch}"
    seconds = baselines.train(mld_recipe(arch, size, latent, steps, diffusion_steps, quick, arch_options), run)
    if judges is not None:
        baselines.copy_judges(judges, run)
    metrics = baselines.evaluate(run, limit, None)
    return {"train_seconds": seconds, "coherence": metrics["coherence"], "fd": metrics["fd"], "run": str(run)}


def save_reconstructions(rows: list[torch.Tensor], path: Path) -> None:
    from torchvision.utils import save_image

    save_image(torch.cat(rows), path, nrow=rows[0].shape[0], padding=1)


def cell(value: float | None, form: str = ".2f", scale: float = 1.0, unit: str = "") -> str:
    """A table cell: ``value * scale`` formatted, or "–" for a figure this data has not (None)."""
    return "–" if value is None else f"{value * scale:{form}}{unit}"


def tables(records: list[dict[str, Any]]) -> str:
    lines = ["| size | arch | parameters | images/s | steps in budget | MSE / pixel | PSNR (dB) | PSNR to noise-free (dB) "
             "| classifier on recon |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['size']} | {r['arch']} | {r['parameters'] / 1e6:.2f} M | {r['images_per_s']:.0f} | {r['steps']} | "
                     f"{r['mse']:.5f} | {r['psnr']:.2f} | {cell(r['signal_psnr'])} | "
                     f"{cell(r['classifier_on_reconstructions'], '.1f', 100, '%')} |")
    with_mld = [r for r in records if "mld" in r]
    if with_mld:
        keys = baselines.direction_order(baselines.VARIANTS["caption"])
        lines += ["", "| MLD on arch | " + " | ".join(k.replace("->", "→") for k in keys) + " | FD color (joint) |",
                  "|" + "---|" * (len(keys) + 2)]
        for r in with_mld:
            cells = [f"{100 * r['mld']['coherence'][k]:.1f}" for k in keys]
            lines.append(f"| {r['arch']} ({r['size']}x{r['size']}) | " + " | ".join(cells) +
                         f" | {r['mld']['fd'].get('joint:color', float('nan')):.2f} |")
    return "\n".join(lines)


def curve_table(records: list[dict[str, Any]]) -> str:
    """The PSNR (dB) at every recorded moment of training, one row per size and arch ("" without checkpoints)."""
    if not any(len(r["psnr_curve"]) > 1 for r in records):
        return ""
    lines = ["", "| size | arch | PSNR (dB) test / test to noise-free / training images, "
             "at seconds of training (steps) |", "|---|---|---|"]
    for r in records:
        cells = ", ".join(f"{p['seconds']:.0f} s ({p['steps']}): {p['psnr']:.2f} / {cell(p['signal_psnr'])} / "
                          f"{p['train_psnr']:.2f}" for p in r["psnr_curve"])
        lines.append(f"| {r['size']} | {r['arch']} | {cells} |")
    return "\n".join(lines)


def noise_ceilings(ceilings: dict[int, float], codes: dict[int, tuple[float, float] | None], latent: int) -> str:
    """The PSNR a reconstruction without the pixel noise would get, per size (no latent carries the noise), and
    that of :func:`factorised_code_psnr` at ``latent`` ("" for data without added noise)."""
    if not ceilings:
        return ""
    cells = ", ".join(f"{size}x{size}: {value:.2f} dB" for size, value in ceilings.items())
    text = f"\n\nPSNR of the noise-free test images against the test images (the ceiling): {cells}"
    coded = ", ".join(f"{size}x{size}: {code[0]:.2f} / {code[1]:.2f} dB" for size, code in codes.items() if code)
    if coded:
        text += (f"\nPSNR test / to noise-free of the factorised linear code ({latent} numbers: colours and shift "
                 f"exact, the digit's {latent - RENDERING_NUMBERS} leading principal components): {coded}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "image_autoencoders")
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per autoencoder")
    parser.add_argument("--sizes", default="32,64")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--data", choices=DATA, default="digits", help="digits: the colour digits; photos: crops "
                        "of scikit-learn's sample photographs; cub: CUB's images (--root)")
    parser.add_argument("--root", type=Path, default=Path("data/birds"), help="the CUB folder (--data cub)")
    parser.add_argument("--mld-size", type=int, default=None, help="size of the MLD runs (0: none; default 32 "
                        "for the digits, none for the other data: the MLD runs are the quickstart's)")
    parser.add_argument("--diffusion-steps", type=int, default=8000)
    parser.add_argument("--limit", type=int, default=None, help="test items per direction in the MLD evaluation")
    parser.add_argument("--classifier-epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="seconds of training, 20 score-net steps (checks the script)")
    parser.add_argument("--psnr-at", default="", help="seconds of training at which to record the test PSNR too")
    parser.add_argument("--ldm-channels", default="", help="level channels of ldm, e.g. 16,32,64,64")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate, the same for every arch "
                        "(the recipes: 1e-3 for conv on the digits, 1e-4 for resnet and ldm on CUB)")
    parser.add_argument("--schedule", choices=SCHEDULES, default="constant", help="the rate over the budget: "
                        "constant, or cosine (annealed to 0 at the budget's end, whatever the steps)")
    parser.add_argument("--augment", action="store_true", help="TrivialAugmentWide on every arch's training "
                        "batches (the image modality's augment option; the MLD runs' autoencoders too)")
    parser.add_argument("--device", default="cpu", help="where the autoencoders train and reconstruct, e.g. cuda "
                                                        "(the classifier runs on the CPU)")
    args = parser.parse_args(argv)
    checkpoints = tuple(float(s) for s in args.psnr_at.split(",") if s.strip())
    options = {arch: {} for arch in ARCHS}
    if args.ldm_channels:
        options["ldm"] = {"conv_channels": [int(c) for c in args.ldm_channels.split(",")]}
    if args.augment:
        options = {arch: {**arch_options, "augment": True} for arch, arch_options in options.items()}
    if args.quick:
        args.budget, args.diffusion_steps, args.limit, args.classifier_epochs = 2.0, 20, 30, 1
    sizes = [int(s) for s in args.sizes.split(",")]
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = set(archs) - set(ARCHS)
    if unknown:
        parser.error(f"unknown archs {sorted(unknown)} (choose among {', '.join(ARCHS)})")
    if args.mld_size is None:
        args.mld_size = 32 if args.data == "digits" else 0
    if args.mld_size and args.data != "digits":
        parser.error("--mld-size needs --data digits (the MLD runs are the quickstart, on the digits)")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    records: list[dict[str, Any]] = []
    judges = None
    ceilings: dict[int, float] = {}
    codes: dict[int, tuple[float, float] | None] = {}
    for size in sizes:
        try:
            images = load_images(args.data, size, args.root)
        except FileNotFoundError as err:  # CUB not there: the dataset's message says what to get
            print(f"error: {err}", file=sys.stderr)
            return 2
        facts = [f"size {size}: {len(images.train)} training and {len(images.test)} test images of {args.data}"]
        classifier, real = None, None
        if images.test_labels is not None:
            classifier = train_classifier((images.train, images.train_labels), size, args.classifier_epochs)
            real = float((classifier(images.test).argmax(1) == images.test_labels).double().mean())
            facts.append(f"classifier on real test images {100 * real:.1f}%")
        if images.noise_free is not None:
            ceilings[size] = psnr(per_image_mse(images.noise_free, images.test))
            facts.append(f"PSNR of the noise-free test images {ceilings[size]:.2f} dB")
            codes[size] = factorised_code_psnr(images, size, args.latent)
            if codes[size]:
                facts.append(f"of the factorised linear code {codes[size][0]:.2f} / {codes[size][1]:.2f} dB to noise-free")
        print(", ".join(facts), flush=True)
        rows = [images.test[:8]]
        for arch in archs:
            record = measure(arch, size, args.latent, images, classifier, args.budget, options[arch], checkpoints,
                             device, args.lr, args.schedule)
            rows.append(record.pop("reconstructions"))
            record["data"] = args.data
            record["classifier_on_real"] = real
            record["noise_ceiling_psnr"] = ceilings.get(size)
            record["factorised_code_psnr"] = codes.get(size)
            if size == args.mld_size:
                record["mld"] = mld_run(args.out, arch, size, args.latent, record["steps"], args.diffusion_steps,
                                        judges, args.limit, args.quick, options[arch])
                if judges is None:
                    judges = Path(record["mld"]["run"]) / "classifiers"
            records.append(record)
            print(f"size {size} {arch}: {record['steps']} steps, PSNR {record['psnr']:.2f} dB, classifier "
                  f"{cell(record['classifier_on_reconstructions'], '.1f', 100, '%')}", flush=True)
        save_reconstructions(rows, args.out / f"reconstructions_{size}.png")
    text = tables(records) + curve_table(records) + noise_ceilings(ceilings, codes, args.latent)
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "results.json").write_text(json.dumps(records, indent=1))
    print(text)
    print(json.dumps({"budget_s": args.budget, "data": args.data, "device": str(device), "schedule": args.schedule,
                      "noise_ceiling_psnr": ceilings, "factorised_code_psnr": codes, "records": records}))
    return 0 if all(math.isfinite(r["psnr"]) for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
