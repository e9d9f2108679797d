"""The shared plugin contract (mmlatent.testing) for the image kind and the four datasets."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mmlatent.testing import DatasetContract, ModalityContract
from mmlatent_image.testing import write_cub, write_mnist, write_polymnist, write_svhn


def _raw_images(channels_last: bool = True) -> list:
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, size=(28, 28), dtype=np.uint8),  # MNIST item
        rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8),  # SVHN item
        Image.fromarray(rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8)),  # a photo of another size
        torch.rand(3, 16, 16),  # a tensor, channels first
    ]


class TestImageMLPGray(ModalityContract):
    kind = "image"
    options = {"channels": 1, "size": 28, "arch": "mlp"}
    latent_dim = 16
    num_classes = 10

    def raw_values(self):
        return _raw_images()


class TestImageConvColour(ModalityContract):
    kind = "image"
    options = {"channels": 3, "size": 32, "arch": "conv", "loss": "l1"}
    latent_dim = 20

    def raw_values(self):
        return _raw_images()


class TestImageResNetAugmented(ModalityContract):
    kind = "image"
    options = {"channels": 3, "size": 64, "arch": "resnet", "augment": True, "conv_channels": [8, 16, 16, 32]}
    latent_dim = 12

    def raw_values(self):
        return _raw_images()


class TestMnistSvhnContract(DatasetContract):
    name = "mnist_svhn"

    def make_options(self, tmp_path):
        if not (tmp_path / "MNIST").exists():
            write_mnist(tmp_path)
            write_svhn(tmp_path)
        return {"root": str(tmp_path), "k": 2}


class TestPolyMNISTContract(DatasetContract):
    name = "polymnist"

    def make_options(self, tmp_path):
        if not (tmp_path / "train").exists():
            write_polymnist(tmp_path)
        return {"root": str(tmp_path)}


class TestCUBContract(DatasetContract):
    name = "cub"

    def make_options(self, tmp_path):
        if not (tmp_path / "text_c10").exists():
            write_cub(tmp_path)
        return {"root": str(tmp_path)}


class TestDigitsPairContract(DatasetContract):
    name = "digits_pair"

    def make_options(self, tmp_path):
        return {"k": 2, "captions": True, "val_fraction": 0.1}
