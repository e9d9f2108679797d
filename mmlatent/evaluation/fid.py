"""FID: Frechet distance in the pool features (2048-d) of torchvision's Inception-v3.

Weights are never downloaded: the user gives a local file (recipe key
``evaluation.inception_weights``, or ``evaluate_run(..., inception_weights=PATH)``) holding the
state dict of ``torchvision.models.inception_v3`` (e.g. ``Inception_V3_Weights.IMAGENET1K_V1``
saved once with ``torch.save(model.state_dict(), path)`` or ``safetensors.torch.save_file``). A
``.safetensors`` file is read with safetensors, anything else with ``torch.load(weights_only=True)``.

Images: data-space batches ``(B, C, H, W)`` with ``C`` in {1, 3} and values in the modality's
``value_range`` (attribute of the ``Modality``; default ``(0, 1)``). They are mapped to [0, 1],
grayscale is repeated to 3 channels, resized (bilinear) to 299 x 299 and scaled to [-1, 1], which is
exactly what torchvision's Inception with ``transform_input=True`` feeds its first layer for
ImageNet-normalised input. Note that FID values computed with torchvision's weights are not
comparable to the TensorFlow FID-Inception figures of other papers (pytorch-fid's
``pt_inception`` weights); compare runs with the same weights file.

torchvision is imported only when an Inception network is built: the core does not need it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from mmlatent.evaluation.data import EvaluationError
from mmlatent.extras import require_extra
from mmlatent.evaluation.frechet import (
    GaussianStatistics,
    frechet_distance_from_features,
    gaussian_statistics,
)

__all__ = [
    "InceptionFeatures",
    "fid",
    "image_features",
    "is_image_batch",
    "load_inception",
    "prepare_images",
]

FeatureExtractor = Callable[[Tensor], Tensor]
"""Anything mapping images ``(B, 3, S, S)`` in [-1, 1] to features ``(B, F)``; ``S`` is its
``input_size`` attribute (299 for Inception)."""


def is_image_batch(x: Tensor) -> bool:
    """True for a floating batch ``(B, C, H, W)`` with 1 or 3 channels."""
    return x.dim() == 4 and x.shape[1] in (1, 3) and x.is_floating_point()


def prepare_images(images: Tensor, size: int = 299, value_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Images ``(B, C, H, W)`` (C in {1, 3}) in ``value_range`` -> ``(B, 3, size, size)`` in [-1, 1]."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise EvaluationError(f"expected images (B, 1 or 3, H, W), got shape {tuple(images.shape)}")
    low, high = value_range
    x = ((images.float() - low) / (high - low)).clamp(0.0, 1.0)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if tuple(x.shape[-2:]) != (size, size):
        x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x * 2.0 - 1.0


class InceptionFeatures(nn.Module):
    """torchvision Inception-v3 up to its 2048-d average pool (``fc`` replaced by identity).

    ``forward`` takes images ``(B, 3, 299, 299)`` in [-1, 1] (see :func:`prepare_images`) and
    returns ``(B, 2048)``.
    """

    input_size = 299

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        network.fc = nn.Identity()
        network.transform_input = False  # prepare_images already gives [-1, 1] inputs
        network.aux_logits = False
        network.AuxLogits = None
        self.network = network.eval()

    def forward(self, x: Tensor) -> Tensor:
        out = self.network(x)
        if not isinstance(out, Tensor):  # InceptionOutputs in training mode
            out = out[0]
        return out.flatten(1)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise EvaluationError(f"{path}: expected a state dict of Inception-v3, got {type(state).__name__}")
    return state


def load_inception(weights_path: str | Path, device: str | torch.device = "cpu") -> InceptionFeatures:
    """torchvision Inception-v3 feature extractor with weights from a local file (no download)."""
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise EvaluationError(f"Inception weights not found: {path} (evaluation.inception_weights)")
    require_extra("fid")  # MissingDependencyError: pip install 'mmlatent[fid]'
    import torchvision
    try:
        state = _read_state_dict(path)
    except EvaluationError:
        raise
    except Exception as error:
        raise EvaluationError(f"cannot read Inception weights {path}: {type(error).__name__}: {error}") from error
    state = {key.removeprefix("module."): value for key, value in state.items()}
    has_aux = any(key.startswith("AuxLogits.") for key in state)
    network = torchvision.models.inception_v3(weights=None, aux_logits=has_aux, init_weights=False)
    # The classifier head is not used: accept weights saved without it (or with a different one).
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    missing, unexpected = network.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith("fc.")]
    if missing or unexpected:
        raise EvaluationError(
            f"{path} is not a torchvision Inception-v3 state dict "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})"
        )
    return InceptionFeatures(network).to(device)


@torch.no_grad()
def image_features(
    extractor: FeatureExtractor,
    images: Tensor,
    *,
    batch_size: int = 64,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """Features ``(N, F)`` of images ``(N, C, H, W)`` with an extractor (Inception or a test double)."""
    size = int(getattr(extractor, "input_size", 299))
    if isinstance(extractor, nn.Module):
        extractor.eval()
        device = next(extractor.parameters(), torch.empty(0)).device
    else:
        device = torch.device("cpu")
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        batch = prepare_images(images[start : start + batch_size], size, value_range).to(device)
        chunks.append(extractor(batch).flatten(1).double().cpu())
    return torch.cat(chunks)


def fid(
    extractor: FeatureExtractor,
    real: Tensor | GaussianStatistics,
    generated: Tensor,
    *,
    batch_size: int = 64,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> float:
    """FID between real images (or their precomputed feature statistics) and generated images."""
    if not isinstance(real, GaussianStatistics):
        real = gaussian_statistics(image_features(extractor, real, batch_size=batch_size, value_range=value_range))
    fake = image_features(extractor, generated, batch_size=batch_size, value_range=value_range)
    return frechet_distance_from_features(real, fake)
