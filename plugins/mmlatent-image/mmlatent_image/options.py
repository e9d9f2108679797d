"""The options of the image plugin's kind and datasets (pydantic only: registering the plugin, ``mmlatent
plugins`` and ``mmlatent validate`` import no torch).

``ImageOptions``: modality kind ``image`` (:mod:`mmlatent_image.modality`); ``MnistSvhnOptions``,
``PolyMNISTOptions``, ``CUBOptions``, ``DigitsPairOptions``: the datasets (:mod:`mmlatent_image.datasets`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CUBOptions", "DEFAULT_CONV_CHANNELS", "DIGITS_SPLITS", "DigitsPairOptions", "ImageOptions",
           "MnistSvhnOptions", "PolyMNISTOptions", "digits_pair_fields"]


#: ``conv_channels`` when the option is left out, per architecture.
DEFAULT_CONV_CHANNELS = {"conv": (32, 64, 128), "resnet": (32, 64, 128, 256), "ldm": (32, 64, 128, 128)}


class ImageOptions(BaseModel):
    """Options of an ``image`` modality (``modalities.<name>.options`` in a recipe)."""

    model_config = ConfigDict(extra="forbid")

    channels: int = Field(1, description="Channels of the data space: 1 (grey), 3 (RGB) or 4 (RGBA).")
    size: int = Field(28, ge=4, le=1024, description="Side of the square data-space images; inputs are resized to it.")
    arch: Literal["mlp", "conv", "resnet", "ldm"] = Field(
        "mlp", description="Autoencoder: mlp (the paper's MNIST one), conv (SVHN), resnet (CUB 64x64), "
                           "ldm (MLD*'s: the LDM autoencoder with a flat latent)."
    )
    loss: Literal["mse", "l1"] = Field("mse", description="Reconstruction loss: mse (Gaussian) or l1 (Laplace).")
    augment: bool = Field(False, description="TrivialAugmentWide on the autoencoder's training batches.")
    hidden: list[int] = Field([400], min_length=1, description="Hidden widths of the mlp autoencoder.")
    conv_channels: list[int] | None = Field(
        None,
        min_length=1,
        max_length=8,
        description="Channels of the stride-2 stages of conv/resnet (default 32-64-128 for conv, 32-64-128-256 for "
                    "resnet); for ldm the channels of its levels, base channels times the channel multipliers "
                    "(default 32-64-128-128: 3 downsamplings).",
    )
    blocks_per_level: int = Field(1, ge=1, le=4, description="ldm: resnet blocks per level (the decoder has one more).")
    attention: bool = Field(True, description="ldm: self-attention in the middle block (at the lowest resolution).")

    @field_validator("channels")
    @classmethod
    def _channel_count(cls, channels: int) -> int:
        if channels not in (1, 3, 4):
            raise ValueError(f"channels must be 1 (grey), 3 (RGB) or 4 (RGBA), got {channels}")
        return channels

    @field_validator("hidden", "conv_channels")
    @classmethod
    def _positive(cls, widths: list[int] | None) -> list[int] | None:
        if widths is not None and any(w < 1 for w in widths):
            raise ValueError("every width must be >= 1")
        return widths

    @model_validator(mode="after")
    def _fits(self) -> ImageOptions:
        if self.arch != "mlp":
            stages = len(self.conv_channels or DEFAULT_CONV_CHANNELS[self.arch])
            if self.size < 2 ** (stages - 1):
                raise ValueError(f"size {self.size} is too small for {stages} stride-2 stages of arch {self.arch!r}")
        return self

    def stage_channels(self) -> tuple[int, ...]:
        """The conv/resnet stage channels in effect."""
        return tuple(self.conv_channels or DEFAULT_CONV_CHANNELS.get(self.arch, ()))


class CUBOptions(BaseModel):
    """Options of the ``cub`` dataset."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field("data/birds", description="Folder with CUB_200_2011/, text_c10/, train/ and test/.")
    images_dir: str = Field("CUB_200_2011/images", description="Image folder, relative to root.")
    captions_dir: str = Field("text_c10", description="Caption folder, relative to root ('text' for AttnGAN's copy).")
    captions: Literal["all", "first", "random"] = Field(
        "all", description="all: one item per (image, caption); first / random: one item per image."
    )
    image_size: int = Field(64, ge=8, le=1024, description="Images are resized to image_size x image_size.")
    cache_images: bool = Field(True, description="Keep resized images in memory after their first read.")


class MnistSvhnOptions(BaseModel):
    """Options of the ``mnist_svhn`` dataset."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field("data", description="Folder holding MNIST/raw/ and the SVHN .mat files (torchvision layout).")
    download: bool = Field(False, description="Let torchvision download missing files (needs a network).")
    k: int = Field(20, ge=1, description="Pairs per kept instance: each is paired with k same-class instances of the other set.")
    k_test: int | None = Field(None, ge=1, description="k for the test split (default: k).")
    max_per_class: int = Field(10000, ge=1, description="At most this many instances of each class and set are kept.")
    seed: int = Field(0, description="Seed of the pairing (the same seed gives the same pairs).")


class PolyMNISTOptions(BaseModel):
    """Options of the ``polymnist`` dataset."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field("data/PolyMNIST", description="Folder holding train/ and test/ with m0..m4 inside.")
    modalities: list[str] = Field(
        ["m0", "m1", "m2", "m3", "m4"], min_length=1, description="Which modality folders to load (their names are the fields)."
    )

    @field_validator("modalities")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("modalities must not repeat")
        bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_\-]+", n) or n == "label"]
        if bad:
            raise ValueError(f"invalid modality folder names: {bad}")
        return names


DIGITS_SPLITS = ("train", "val", "test")


class DigitsPairOptions(BaseModel):
    """Options of the ``digits_pair`` dataset."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(5, ge=1, description="Pairs per gray digit in train (each with a same-class colour digit).")
    k_test: int = Field(1, ge=1, description="Pairs per gray digit in val and test.")
    seed: int = Field(0, description="Seed of the split, the colour renderings, the pairing and the captions.")
    test_size: int = Field(397, ge=10, le=1000, description="Digits held out for test (stratified).")
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction of the train digits held out for val.")
    size: int = Field(16, ge=8, le=64, description="Side of both images.")
    captions: bool = Field(False, description="Add a 'caption' field: a short sentence naming the digit.")
    color_variants: int = Field(1, ge=1, le=16, description="Fixed colour renderings per digit.")
    noise: float = Field(0.05, ge=0.0, le=0.5, description="Std of the Gaussian pixel noise of colour images.")
    max_shift: int = Field(1, ge=0, le=4, description="Largest shift (pixels) of the colour digit.")
    min_contrast: float = Field(0.3, ge=0.0, le=0.8, description="Smallest luma difference of foreground and background.")


def digits_pair_fields(options: DigitsPairOptions) -> list[str]:
    return ["gray", "color", "caption"] if options.captions else ["gray", "color"]
