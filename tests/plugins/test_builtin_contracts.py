"""The built-in `vector` kind and `tensors` dataset pass the same contract tests as any plugin."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import save_file

from mmlatent.testing import DatasetContract, ModalityContract


class TestVectorModalityMLP(ModalityContract):
    kind = "vector"
    options = {"arch": "mlp", "hidden": [16]}
    latent_dim = 3

    def raw_values(self):
        rng = np.random.default_rng(0)
        return [rng.normal(size=5).astype(np.float32) for _ in range(4)]


class TestVectorModalityIdentity(ModalityContract):
    kind = "vector"
    options = {"arch": "identity"}
    latent_dim = 4

    def raw_values(self):  # tensor rows, as the tensors dataset yields them
        return list(torch.arange(12, dtype=torch.float64).reshape(3, 4))


class TestVectorModalityScalars(ModalityContract):
    kind = "vector"
    options = {"hidden": [8, 8], "size": 1}
    latent_dim = 2

    def raw_values(self):  # one number per item: vectors of size 1
        return [0.5, -1.0, 2.0]


class TestTensorsSingleFile(DatasetContract):
    name = "tensors"

    def make_options(self, tmp_path):
        path = tmp_path / "data.npz"
        rng = np.random.default_rng(0)
        np.savez(path, a=rng.normal(size=(20, 3)), b=rng.integers(0, 255, size=(20, 2, 2), dtype=np.uint8),
                 label=np.arange(20) % 3)
        return {"path": str(path), "test_fraction": 0.25, "seed": 1}


class TestTensorsSplitFiles(DatasetContract):
    name = "tensors"

    def make_options(self, tmp_path):
        for split, n in (("train", 6), ("test", 3)):
            save_file({"x": torch.randn(n, 4), "y": torch.randn(n, 2)}, str(tmp_path / f"{split}.safetensors"))
        return {"train_path": str(tmp_path / "train.safetensors"), "test_path": str(tmp_path / "test.safetensors")}
