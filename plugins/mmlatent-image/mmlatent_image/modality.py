"""The ``image`` modality kind: options, preprocessing, autoencoders, classifier, files.

Data space: float32 batches ``(B, channels, size, size)`` with values in [0, 1]. Batches given to
the pipeline may also be uint8 (0..255) or bool (:meth:`ImageModality.prepare_batch`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmlatent import Modality
from mmlatent_image.autoencoders import (
    ConvAutoencoder,
    ImageAutoencoder,
    LDMAutoencoder,
    MLPAutoencoder,
    ResNetAutoencoder,
)
from mmlatent_image.classifier import ImageClassifier
from mmlatent_image.conversion import convert_channels, resize, to_float_chw
from mmlatent_image.files import IMAGE_SUFFIXES, read_images, write_grid
from mmlatent_image.options import DEFAULT_CONV_CHANNELS, ImageOptions

__all__ = ["DEFAULT_CONV_CHANNELS", "RANGE_TOLERANCE", "ImageModality", "ImageOptions"]

#: Float pixels given by users may leave [0, 1] by this much (rounding); they are clamped.
RANGE_TOLERANCE = 1e-4



class ImageModality(Modality):
    """Images as float tensors ``(channels, size, size)`` in [0, 1].

    ``preprocess`` accepts PIL images, numpy arrays and tensors (see :mod:`mmlatent_image.conversion`),
    converts the channels (grey <-> RGB, alpha dropped) and resizes to ``size`` (bilinear).
    """

    file_suffixes = (*IMAGE_SUFFIXES, ".npy", ".safetensors")
    options: ImageOptions

    # ------------------------------------------------------------------------------------- data
    @property
    def item_shape(self) -> tuple[int, int, int]:
        return (self.options.channels, self.options.size, self.options.size)

    def _conform(self, x: Tensor) -> Tensor:
        """``(C, H, W)`` float in [0, 1] -> ``item_shape``."""
        return resize(convert_channels(x, self.options.channels), self.options.size).contiguous()

    def preprocess(self, value: Any) -> Tensor:
        try:
            x = to_float_chw(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"modality {self.name!r}: {err}") from None
        return self._conform(x)

    def prepare_batch(self, batch: Any) -> Tensor:
        """Check and convert a batch given by a user: ``(N, channels, size, size)`` -> the same,
        float32 in [0, 1].

        uint8 batches are read as 0..255 (divided by 255, as :meth:`preprocess` reads uint8
        arrays), bool batches as 0/1. Float batches must lie in [0, 1] (up to
        :data:`RANGE_TOLERANCE`): images in 0..255 or normalised by a mean and std are errors, not
        clamped. Other integer dtypes are errors (0..255 or 0..65535 would be a guess).
        """
        x = super().prepare_batch(batch)
        if x.dtype == torch.uint8:
            return x.to(torch.float32) / 255.0
        if x.dtype == torch.bool:
            return x.to(torch.float32)
        if not x.is_floating_point():
            raise ValueError(
                f"modality {self.name!r}: expected float32 pixels in [0, 1], uint8 (0..255) or bool, got {x.dtype}"
            )
        return self._in_unit_range(x)

    def _in_unit_range(self, x: Tensor, source: str = "") -> Tensor:
        """Float pixels in [0, 1] (clamped within :data:`RANGE_TOLERANCE`), else ValueError naming the range."""
        if not x.numel():
            return x
        low, high = float(x.min()), float(x.max())
        if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
            raise ValueError(
                f"modality {self.name!r}: float pixels must lie in [0, 1], got values in [{low:g}, {high:g}]{source} "
                "(uint8 images are read as 0..255)"
            )
        return x.clamp(0.0, 1.0) if low < 0.0 or high > 1.0 else x

    def augment(self, x: Tensor) -> Tensor:
        """TrivialAugmentWide when ``augment`` is on (a fresh draw per image, the whole batch at once on its
        device: :func:`mmlatent_image.augmentation.trivial_augment_wide`); else ``x``."""
        if not self.options.augment:
            return x
        from mmlatent_image.augmentation import trivial_augment_wide

        pixels = (x.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
        colour, alpha = (pixels[:, :3], pixels[:, 3:]) if self.options.channels == 4 else (pixels, None)
        out = trivial_augment_wide(colour)
        if alpha is not None:  # colour operations need 1 or 3 channels: augment RGB, keep alpha
            out = torch.cat([out, alpha], dim=1)
        return out.to(x.dtype) / 255.0

    # ------------------------------------------------------------------------------------ model
    def build_autoencoder(self) -> ImageAutoencoder:
        o = self.options
        if o.arch == "mlp":
            return MLPAutoencoder(self.latent_dim, o.channels, o.size, hidden=o.hidden, loss=o.loss)
        if o.arch == "ldm":
            return LDMAutoencoder(self.latent_dim, o.channels, o.size, level_channels=o.stage_channels(),
                                  blocks_per_level=o.blocks_per_level, attention=o.attention, loss=o.loss)
        cls = ConvAutoencoder if o.arch == "conv" else ResNetAutoencoder
        return cls(self.latent_dim, o.channels, o.size, conv_channels=o.stage_channels(), loss=o.loss)

    def build_classifier(self, num_classes: int) -> nn.Module:
        return ImageClassifier(self.options.channels, self.options.size, num_classes)

    # ----------------------------------------------------------------------------------- people
    def render(self, batch: Tensor, path: Path) -> list[Path]:
        """Write the batch as one PNG grid ``<path>.png`` (readable back with :meth:`read_file`)."""
        return [write_grid(batch, Path(path))]

    def read_file(self, path: Path) -> Tensor:
        """PNG/JPEG (a grid written by :meth:`render` gives its tiles), ``.npy`` or ``.safetensors``
        -> batch ``(N, channels, size, size)`` in [0, 1], converted as :meth:`preprocess` converts
        one image (float arrays must already lie in [0, 1]) and checked by :meth:`prepare_batch`.
        A missing file raises ``FileNotFoundError``; an unreadable one ``ValueError`` naming it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"modality {self.name!r}: no such file {str(path)!r}")
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            try:
                images = read_images(path)
            except ValueError as error:
                raise ValueError(f"modality {self.name!r}: {error}") from None
            return self.prepare_batch(torch.stack([self._conform(x) for x in images]))
        if suffix not in (".npy", ".safetensors"):
            raise ValueError(
                f"modality {self.name!r}: cannot read {path.name!r} (expected one of {', '.join(self.file_suffixes)})"
            )
        raw: Any = self.read_array(path)
        if raw.is_floating_point():  # preprocess would clamp 0..255 floats to white
            self._in_unit_range(raw.float(), source=f" in {path.name!r}")
        if suffix == ".npy":
            raw = raw.numpy()  # numpy's conventions: channels last when ambiguous, uint16 as 0..65535
        shape = tuple(raw.shape)
        if len(shape) == 4:  # a batch, channels first or last
            items = [raw[i] for i in range(shape[0])]
        elif len(shape) == 3 and self.options.channels == 1 and shape[0] not in (1, 3, 4) and shape[-1] not in (1, 3, 4):
            items = [raw[i] for i in range(shape[0])]  # (N, H, W) grey batch
        elif len(shape) in (2, 3):
            items = [raw]
        else:
            raise ValueError(f"modality {self.name!r}: cannot read images of shape {shape} from {path.name!r}")
        try:
            return self.prepare_batch(torch.stack([self.preprocess(item) for item in items]))
        except ValueError as error:
            raise ValueError(f"{error} (in {path.name!r})") from None
