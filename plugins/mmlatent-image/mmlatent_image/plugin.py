"""The hook implementations: the ``image`` kind and the datasets mnist_svhn, polymnist, cub, digits_pair.

Registering imports only the options (:mod:`mmlatent_image.options`); the modality and the dataset
builders are ``"module:name"`` references, imported when a run uses them.
"""

from __future__ import annotations

import mmlatent
from mmlatent_image.options import (
    DIGITS_SPLITS,
    CUBOptions,
    DigitsPairOptions,
    ImageOptions,
    MnistSvhnOptions,
    PolyMNISTOptions,
    digits_pair_fields,
)


@mmlatent.hookimpl
def register_modalities(register):
    register(
        mmlatent.ModalitySpec(
            kind="image",
            modality="mmlatent_image.modality:ImageModality",
            options=ImageOptions,
            description="Images (B, C, H, W) in [0, 1] with MLP, convolutional or residual autoencoders.",
        )
    )


@mmlatent.hookimpl
def register_datasets(register):
    register(
        mmlatent.DatasetSpec(
            name="mnist_svhn",
            build="mmlatent_image.datasets.mnist_svhn:build_mnist_svhn",
            fields=lambda options: ["mnist", "svhn"],
            options=MnistSvhnOptions,
            description="MNIST and SVHN paired by class (MMVAE protocol, seeded); torchvision files under root.",
        )
    )
    register(
        mmlatent.DatasetSpec(
            name="polymnist",
            build="mmlatent_image.datasets.polymnist:build_polymnist",
            fields=lambda options: list(options.modalities),
            options=PolyMNISTOptions,
            description="PolyMNIST: five MNIST views on textured backgrounds (folders m0..m4).",
        )
    )
    register(
        mmlatent.DatasetSpec(
            name="cub",
            build="mmlatent_image.datasets.cub:build_cub",
            fields=lambda options: ["image", "caption"],
            options=CUBOptions,
            description="CUB-200-2011 images with the text_c10 captions (StackGAN/AttnGAN 'birds' layout).",
        )
    )
    register(
        mmlatent.DatasetSpec(
            name="digits_pair",
            build="mmlatent_image.datasets.digits_pair:build_digits_pair",
            fields=digits_pair_fields,
            options=DigitsPairOptions,
            splits=DIGITS_SPLITS,
            description="Offline: scikit-learn digits as gray 16x16 paired with same-class SVHN-like colour renderings.",
        )
    )
