"""CLIP-S: agreement of image-caption pairs in the embedding space of a CLIP model.

Definition (Hessel et al. 2021, "CLIPScore"), per pair::

    CLIP-S(image, caption) = w * max(cos(E_image, E_caption), 0),   w = 2.5

and the mean over pairs. **Scale convention**: mmlatent uses Hessel's ``w = 2.5``. The MLD paper
reports CLIP-S of ~0.69 on CUB; plain cosines of CLIP ViT-B/32 for matching image-caption pairs are
~0.25-0.35, so 0.69 is only reachable on the ``w = 2.5`` scale (torchmetrics' ``100 * cos`` would
give ~28). Set ``weight`` to 1 for plain cosines or 100 for torchmetrics' figures.

The model is a transformers ``CLIPModel`` loaded from a local directory (recipe key
``evaluation.clip_model``; ``from_pretrained(path, local_files_only=True)``: never a download), with
its tokenizer and image processor saved beside it (``CLIPProcessor.save_pretrained``). Images are
data-space batches ``(B, C, H, W)`` with values in ``value_range`` (default [0, 1]); they are
resized (bicubic) so the shortest side matches the processor's ``size``, centre-cropped to its
``crop_size`` and normalised with its mean/std, as ``CLIPImageProcessor`` does; grayscale is
repeated to 3 channels. Captions are strings (a text modality's ``Modality.to_values``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmlatent.evaluation.data import EvaluationError
from mmlatent.extras import require_extra

__all__ = ["CLIP_S_WEIGHT", "ClipScorer", "clip_s_from_embeddings"]

CLIP_S_WEIGHT = 2.5


def clip_s_from_embeddings(image_embeddings: Tensor, text_embeddings: Tensor, weight: float = CLIP_S_WEIGHT) -> Tensor:
    """Per-pair CLIP-S ``(B,)`` = ``weight * max(cos, 0)`` of embeddings ``(B, E)`` (any norm)."""
    if image_embeddings.shape != text_embeddings.shape:
        raise ValueError(
            f"embeddings differ in shape: {tuple(image_embeddings.shape)} and {tuple(text_embeddings.shape)}"
        )
    cosine = nn.functional.cosine_similarity(image_embeddings.double(), text_embeddings.double(), dim=-1)
    return weight * cosine.clamp(min=0.0)


def _size_value(size: Any, key: str, default: int) -> int:
    if size is None:
        return default
    if isinstance(size, int):
        return size
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else default


class ClipScorer:
    """CLIP-S with a local transformers CLIP model.

    ``ClipScorer.from_pretrained(path)`` loads model, tokenizer and image preprocessing settings
    from one directory; the constructor takes them directly (tests, custom models).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        image_size: int,
        crop_size: int | None = None,
        image_mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
        image_std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711),
        weight: float = CLIP_S_WEIGHT,
        batch_size: int = 64,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.image_size = int(image_size)
        self.crop_size = int(crop_size or image_size)
        self.image_mean = torch.tensor(list(image_mean), dtype=torch.float32).view(1, 3, 1, 1)
        self.image_std = torch.tensor(list(image_std), dtype=torch.float32).view(1, 3, 1, 1)
        self.weight = float(weight)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, weight: float = CLIP_S_WEIGHT, device: str | torch.device = "cpu"
    ) -> ClipScorer:
        """Load a ``CLIPModel`` and its processor from a local directory (no download)."""
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise EvaluationError(f"CLIP model directory not found: {directory} (evaluation.clip_model)")
        require_extra("clip")  # MissingDependencyError: pip install 'mmlatent[clip]'
        from transformers import AutoProcessor, CLIPModel

        try:
            model = CLIPModel.from_pretrained(str(directory), local_files_only=True)
            processor = AutoProcessor.from_pretrained(str(directory), local_files_only=True)
        except Exception as error:
            raise EvaluationError(
                f"cannot load a CLIP model from {directory}: {type(error).__name__}: {error}"
            ) from error
        image_processor = processor.image_processor
        vision_size = int(model.config.vision_config.image_size)
        size = _size_value(getattr(image_processor, "size", None), "shortest_edge", vision_size)
        crop = _size_value(getattr(image_processor, "crop_size", None), "height", vision_size)
        return cls(
            model,
            processor.tokenizer,
            image_size=size,
            crop_size=crop,
            image_mean=image_processor.image_mean,
            image_std=image_processor.image_std,
            weight=weight,
            device=device,
        )

    # ------------------------------------------------------------------------------ embeddings
    def preprocess_images(self, images: Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
        """Images ``(B, C, H, W)`` -> normalised pixel values ``(B, 3, crop, crop)``."""
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise EvaluationError(f"CLIP-S expects images (B, 1 or 3, H, W), got shape {tuple(images.shape)}")
        low, high = value_range
        x = ((images.float() - low) / (high - low)).clamp(0.0, 1.0)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        height, width = x.shape[-2:]
        scale = self.image_size / min(height, width)
        new_size = (max(self.crop_size, round(height * scale)), max(self.crop_size, round(width * scale)))
        if new_size != (height, width):
            x = nn.functional.interpolate(x, size=new_size, mode="bicubic", align_corners=False, antialias=True)
        top = (x.shape[-2] - self.crop_size) // 2
        left = (x.shape[-1] - self.crop_size) // 2
        x = x[..., top : top + self.crop_size, left : left + self.crop_size].clamp(0.0, 1.0)
        return (x - self.image_mean) / self.image_std

    @torch.no_grad()
    def embed_images(self, images: Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
        """Projected image embeddings ``(B, E)``."""
        chunks = []
        for start in range(0, images.shape[0], self.batch_size):
            pixels = self.preprocess_images(images[start : start + self.batch_size], value_range).to(self.device)
            pooled = self.model.vision_model(pixel_values=pixels).pooler_output
            chunks.append(self.model.visual_projection(pooled).cpu())
        return torch.cat(chunks)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> Tensor:
        """Projected text embeddings ``(B, E)``."""
        max_length = int(self.model.config.text_config.max_position_embeddings)
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            pooled = self.model.text_model(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device),
            ).pooler_output
            chunks.append(self.model.text_projection(pooled).cpu())
        return torch.cat(chunks)

    # ---------------------------------------------------------------------------------- scores
    def pair_scores(
        self, images: Tensor, texts: Sequence[str], value_range: tuple[float, float] = (0.0, 1.0)
    ) -> Tensor:
        """Per-pair CLIP-S ``(B,)`` of images ``(B, C, H, W)`` and ``B`` captions."""
        if images.shape[0] != len(texts):
            raise ValueError(f"{images.shape[0]} images but {len(texts)} captions")
        return clip_s_from_embeddings(self.embed_images(images, value_range), self.embed_texts(texts), self.weight)

    def score(self, images: Tensor, texts: Sequence[str], value_range: tuple[float, float] = (0.0, 1.0)) -> float:
        """Mean CLIP-S over the pairs."""
        return float(self.pair_scores(images, texts, value_range).mean())
