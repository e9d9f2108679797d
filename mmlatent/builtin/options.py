"""The options of the built-in kinds and datasets (pydantic only: registering them imports no torch).

``VectorOptions``: modality kind ``vector`` (:mod:`mmlatent.builtin.vector`); ``TensorsOptions``:
dataset ``tensors`` (:mod:`mmlatent.builtin.tensors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

__all__ = ["LABEL", "SUFFIXES", "TensorsOptions", "VectorOptions"]


class VectorOptions(BaseModel):
    """Options of modality kind ``vector``."""

    model_config = ConfigDict(extra="forbid")

    arch: Literal["identity", "mlp"] = Field("mlp", description="'mlp' autoencoder, or 'identity' (latent_dim == size)")
    hidden: list[PositiveInt] = Field(default_factory=lambda: [256, 256], description="hidden widths of the MLPs")
    size: PositiveInt | None = Field(None, description="input size; None = taken from the training data")


LABEL = "label"
SUFFIXES = (".safetensors", ".npz")


class TensorsOptions(BaseModel):
    """Options of dataset ``tensors``: ``path`` with fractions, or ``train_path``/``test_path``."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = Field(None, description="one .safetensors/.npz file, split at random")
    train_path: Path | None = Field(None, description="training split file (with test_path)")
    test_path: Path | None = Field(None, description="test split file (with train_path)")
    val_path: Path | None = Field(None, description="optional validation split file (with train_path)")
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="test share when splitting `path`")
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="validation share when splitting `path`")
    seed: int = Field(0, description="seed of the random split of `path`")

    @model_validator(mode="after")
    def _one_source(self) -> TensorsOptions:
        split_files = [self.train_path, self.test_path, self.val_path]
        if self.path is not None and any(p is not None for p in split_files):
            raise ValueError("set either path or train_path/test_path (val_path), not both")
        if self.path is None:
            if self.train_path is None and self.test_path is None:
                raise ValueError("set path (one file, split at random) or train_path and test_path")
            if self.train_path is None or self.test_path is None:
                raise ValueError("train_path and test_path go together")
        if self.test_fraction + self.val_fraction >= 1.0:
            raise ValueError("test_fraction + val_fraction must be below 1")
        for p in [self.path, *split_files]:
            if p is not None and p.suffix not in SUFFIXES:
                raise ValueError(f"{p}: expected a {' or '.join(SUFFIXES)} file")
        return self

    def files(self) -> list[Path]:
        """The files these options read (the first one is the training data)."""
        if self.path is not None:
            return [self.path]
        return [p for p in (self.train_path, self.test_path, self.val_path) if p is not None]

    def splits(self) -> tuple[str, ...]:
        """The splits these options provide: train, test, and val when configured."""
        has_val = self.val_path is not None if self.path is None else self.val_fraction > 0
        return ("train", "test", "val") if has_val else ("train", "test")
