"""An mmlatent plugin: modality kind ``category`` and dataset ``remainders``.

``category``: integer class ids in ``range(num_categories)``. Items are 0-d long tensors, the
autoencoder embeds them and decodes logits, ``to_data`` takes the argmax back to ids.

``remainders``: synthetic pairs ``{"number": k, "remainder": k % modulus, "label": k % modulus}``,
so the remainder can be generated from the number.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.utils.data import Dataset

import mmlatent


# ------------------------------------------------------------------------- modality kind "category"
class CategoryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")  # misspelled options are errors, not silently ignored

    num_categories: int = Field(ge=2, description="class ids are 0 .. num_categories - 1")
    hidden: int = Field(64, gt=0, description="width of the encoder and decoder")


class CategoryAutoencoder(mmlatent.Autoencoder):
    """Ids ``(B,)`` -> latents ``(B, latent_dim)`` -> logits ``(B, num_categories)``."""

    def __init__(self, num_categories: int, latent_dim: int, hidden: int) -> None:
        super().__init__(latent_dim)
        self.encoder = nn.Sequential(nn.Embedding(num_categories, hidden), nn.SiLU(), nn.Linear(hidden, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, num_categories))

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # logits, not data: to_data() maps them back to ids

    def to_data(self, decoded: Tensor) -> Tensor:
        return decoded.argmax(dim=-1)

    def reconstruction_loss(self, x: Tensor, decoded: Tensor) -> Tensor:
        return F.cross_entropy(decoded, x)


class CategoryModality(mmlatent.Modality):
    """The core builds it as ``CategoryModality(name, options, latent_dim)``."""

    @property
    def item_shape(self) -> tuple[int, ...]:
        return ()  # one id per item: a batch is (B,)

    def preprocess(self, value) -> Tensor:
        k = int(value)
        if not 0 <= k < self.options.num_categories:
            raise ValueError(f"modality {self.name!r}: {k} is not in 0..{self.options.num_categories - 1}")
        return torch.tensor(k, dtype=torch.long)

    def build_autoencoder(self) -> CategoryAutoencoder:
        return CategoryAutoencoder(self.options.num_categories, self.latent_dim, self.options.hidden)

    def build_classifier(self, num_classes: int) -> nn.Module:
        # (B,) ids -> (B, hidden) features -> (B, num_classes) logits; the evaluation's Frechet
        # distances use the input of the last nn.Linear as the features
        hidden = self.options.hidden
        return nn.Sequential(nn.Embedding(self.options.num_categories, hidden), nn.Linear(hidden, num_classes))

    def to_values(self, batch: Tensor) -> list[int]:
        return [int(k) for k in batch]

    def render(self, batch: Tensor, path: Path) -> list[Path]:
        out = Path(path).with_suffix(".txt")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(f"{k}\n" for k in self.to_values(batch)))
        return [out]


# ------------------------------------------------------------------------------ dataset "remainders"
class RemaindersOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(400, ge=8, description="training items (the test split has a quarter as many)")
    maximum: int = Field(30, ge=2, description="numbers are drawn from 0 .. maximum - 1")
    modulus: int = Field(3, ge=2)


class Remainders(Dataset):
    def __init__(self, options: RemaindersOptions, split: str) -> None:
        n = options.size if split == "train" else max(2, options.size // 4)
        generator = torch.Generator().manual_seed({"train": 0, "test": 1}[split])
        self.numbers = torch.randint(0, options.maximum, (n,), generator=generator).tolist()
        self.modulus = options.modulus

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, i: int) -> dict:
        k = self.numbers[i]
        return {"number": k, "remainder": k % self.modulus, "label": k % self.modulus}


# ------------------------------------------------------------------------------------------ hooks
@mmlatent.hookimpl
def register_modalities(register):
    register(
        mmlatent.ModalitySpec(
            kind="category",
            modality=CategoryModality,
            options=CategoryOptions,
            description="integer class ids (embedding autoencoder, cross-entropy loss)",
        )
    )


@mmlatent.hookimpl
def register_datasets(register):
    register(
        mmlatent.DatasetSpec(
            name="remainders",
            build=Remainders,  # called as build(options, split)
            fields=lambda options: ["number", "remainder"],
            options=RemaindersOptions,
            splits=("train", "test"),
            has_labels=lambda options: True,
            description="numbers and their remainders (synthetic)",
        )
    )
