"""The datasets of the image plugin: mnist_svhn, polymnist, cub and digits_pair."""

from mmlatent_image.datasets.cub import CUBOptions, build_cub
from mmlatent_image.datasets.digits_pair import DigitsPairOptions, build_digits_pair, digits_pair_fields
from mmlatent_image.datasets.mnist_svhn import MnistSvhnOptions, build_mnist_svhn
from mmlatent_image.datasets.pairing import pair_same_class
from mmlatent_image.datasets.polymnist import PolyMNISTOptions, build_polymnist

__all__ = [
    "CUBOptions",
    "DigitsPairOptions",
    "MnistSvhnOptions",
    "PolyMNISTOptions",
    "build_cub",
    "build_digits_pair",
    "build_mnist_svhn",
    "build_polymnist",
    "digits_pair_fields",
    "pair_same_class",
]
