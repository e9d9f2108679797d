"""A small fake pipeline implementing the documented MLDPipeline API, so that the metric logic is
tested independently of training.

Data: every modality is a 4-d vector ``prototype[name][label] + noise`` with well separated
prototypes. Modes of the fake generator:

- ``perfect``: infers the label from the given modalities (nearest prototype) and generates every
  other modality from that label (joint: one random label per sample): coherence 1;
- ``random``: every generated modality gets its own random label: coherence ~1/K;
- ``collapsed``: every generated modality is the first prototype (bad quality, large FD).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from mmlatent.diffusion import SamplingPlan, resolve_plan
from mmlatent.modality import Modality

NUM_CLASSES = 4
DIM = 4


class FakeVectorModality(Modality):
    """A vector modality with an MLP classifier and a PNG renderer."""

    shape = (DIM,)

    def preprocess(self, value):
        return torch.as_tensor(value, dtype=torch.float32).reshape(self.shape)

    @property
    def item_shape(self):
        return self.shape

    def build_classifier(self, num_classes):
        return nn.Sequential(nn.Flatten(1), nn.Linear(DIM, 16), nn.ReLU(), nn.Linear(16, num_classes))

    def render(self, batch, path):
        from matplotlib import image

        out = Path(path).with_suffix(".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        x = batch.detach().float().flatten(1)
        x = (x - x.min()) / (x.max() - x.min() + 1e-8)
        image.imsave(out, x.numpy(), cmap="gray")
        return [out]


class NoClassifierModality(FakeVectorModality):
    def build_classifier(self, num_classes):
        return None


class FakeImageModality(FakeVectorModality):
    """The same 4 values as a 1 x 2 x 2 image (for the FID and CLIP-S code paths)."""

    shape = (1, 2, 2)


class FakeTextModality(FakeVectorModality):
    """Vectors that read as captions naming their nearest prototype (for CLIP-S)."""

    prototypes = None

    def to_values(self, batch):
        nearest = torch.cdist(batch.float().flatten(1), self.prototypes).argmin(dim=1)
        return [f"class {int(k)}" for k in nearest]


class FakePipeline:
    """Documented pipeline API over synthetic labelled vectors."""

    NUM_CLASSES = NUM_CLASSES

    def __init__(self, names=("a", "b"), mode="perfect", n_train=400, n_test=200, seed=0,
                 no_classifier=(), nfe_per_step=1, image=(), text=(), n_val=0):
        self.names = list(names)
        self.mode = mode
        rng = np.random.default_rng(seed)
        self.prototypes = {name: torch.tensor(rng.normal(0, 3, size=(NUM_CLASSES, DIM)), dtype=torch.float32)
                           for name in self.names}
        def kind(name):
            if name in no_classifier:
                return NoClassifierModality
            return FakeImageModality if name in image else FakeTextModality if name in text else FakeVectorModality

        self.modalities = {name: kind(name)(name, None, DIM) for name in self.names}
        for name in text:
            self.modalities[name].prototypes = self.prototypes[name]
        self.splits = {"train": self._items(rng, n_train), "test": self._items(rng, n_test)}
        if n_val:
            self.splits["val"] = self._items(rng, n_val)
        self.recipe = SimpleNamespace(
            name="fake",
            sampling=SimpleNamespace(sampler="heun", steps=10),
            evaluation=SimpleNamespace(classifier_epochs=5, limit=None, inception_weights=None,
                                       clip_model=None, samples=8),
        )
        self.nfe_per_step = nfe_per_step
        self.last_nfe = None
        self.calls: list[dict] = []

    def _items(self, rng, n):
        labels = rng.integers(0, NUM_CLASSES, size=n)
        return [
            {**{name: (self.prototypes[name][y].numpy() + rng.normal(0, 0.3, DIM)).astype(np.float32)
                for name in self.names}, "label": int(y)}
            for y in labels
        ]

    def dataset(self, split):
        if split not in self.splits:
            raise KeyError(split)
        return self.splits[split]

    def collate(self, items):
        batch = {name: torch.stack([self.modalities[name].preprocess(item[name]) for item in items])
                 for name in self.names}
        if all("label" in item for item in items):
            batch["label"] = torch.tensor([item["label"] for item in items])
        return batch

    def _infer_labels(self, given):
        name = next(iter(given))
        distances = torch.cdist(given[name].float().flatten(1), self.prototypes[name])
        return distances.argmin(dim=1)

    def plan(self, sampler=None, steps=None, guidance=None, recipe_defaults=True, **options):
        default = SamplingPlan(self.recipe.sampling.sampler, self.recipe.sampling.steps)
        return resolve_plan(default, sampler, steps, options, guidance, use_defaults=recipe_defaults)

    def generate(self, n=None, given=None, seed=0, plan=None, **settings):
        plan = plan or self.plan(**settings)
        given = dict(given or {})
        if given:
            n = next(iter(given.values())).shape[0]
        generator = torch.Generator().manual_seed(int(seed))
        self.calls.append({"n": n, "given": sorted(given), "sampler": plan.sampler, "steps": plan.steps,
                           "seed": seed, "guidance": dict(plan.guidance) or None, "options": dict(plan.options)})
        if self.mode == "perfect":
            labels = self._infer_labels(given) if given else torch.randint(0, NUM_CLASSES, (n,), generator=generator)
        out = {}
        for name in self.names:
            if name in given:
                out[name] = given[name]
                continue
            if self.mode == "random":
                labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
            elif self.mode == "collapsed":
                labels = torch.zeros(n, dtype=torch.long)
            noise = 0.3 * torch.randn(n, DIM, generator=generator)
            out[name] = (self.prototypes[name][labels] + noise).reshape(n, *self.modalities[name].shape)
        self.last_nfe = (plan.steps or self.recipe.sampling.steps) * self.nfe_per_step
        return out

    def render(self, outputs, out_dir, prefix=""):
        written = []
        for name, batch in outputs.items():
            written += self.modalities[name].render(batch, Path(out_dir) / f"{prefix}{name}")
        return written


@pytest.fixture(scope="session")
def fake_pipeline():
    """The FakePipeline class (call it with the options a test needs)."""
    return FakePipeline
