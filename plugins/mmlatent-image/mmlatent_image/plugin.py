"""The hook implementations: the ``image`` kind and the datasets mnist_svhn, polymnist, cub, digits_pair."""

from __future__ import annotations

import mmlatent
from mmlatent_image.datasets import (
    CUBOptions,
    DigitsPairOptions,
    MnistSvhnOptions,
    PolyMNISTOptions,
    build_cub,
    build_digits_pair,
    build_mnist_svhn,
    build_polymnist,
    digits_pair_fields,
)
from mmlatent_image.datasets.digits_pair import SPLITS as DIGITS_SPLITS
from mmlatent_image.modality import ImageModality, ImageOptions


@mmlatent.hookimpl
def register_modalities(register):
    register(
        mmlatent.ModalitySpec(
            kind="image",
            modality=ImageModality,
            options=ImageOptions,
            description="Images (B, C, H, W) in [0, 1] with MLP, convolutional or residual autoencoders.",
        )
    )


@mmlatent.hookimpl
def register_datasets(register):
    register(
        mmlatent.DatasetSpec(
            name="mnist_svhn",
            build=build_mnist_svhn,
            fields=lambda options: ["mnist", "svhn"],
            options=MnistSvhnOptions,
            description="MNIST and SVHN paired by class (MMVAE protocol, seeded); torchvision files under root.",
        )
    )
    register(
        mmlatent.DatasetSpec(
            name="polymnist",
            build=build_polymnist,
            fields=lambda options: list(options.modalities),
            options=PolyMNISTOptions,
            description="PolyMNIST: five MNIST views on textured backgrounds (folders m0..m4).",
        )
    )
    register(
        mmlatent.DatasetSpec(
            name="cub",
            build=build_cub,
            fields=lambda options: ["image", "caption"],
            options=CUBOptions,
            description="CUB-200-2011 images with the text_c10 captions (StackGAN/AttnGAN 'birds' layout).",
        )
    )
    register(
        mmlatent.DatasetSpec(
            name="digits_pair",
            build=build_digits_pair,
            fields=digits_pair_fields,
            options=DigitsPairOptions,
            splits=DIGITS_SPLITS,
            description="Offline: scikit-learn digits as gray 16x16 paired with same-class SVHN-like colour renderings.",
        )
    )
