"""Coherence and Frechet distances of generated samples (the paper's appendix B.2.1).

**Conditional coherence** of a condition "A -> t" (A a non-empty proper subset of the modalities,
t a modality outside A): for every evaluated test item, generate all modalities given the item's
modalities in A (one sample per item), classify the generated t with t's classifier, and count how
often the predicted class equals the item's label. Key: ``"<A joined by +>-><t>"`` with names in
recipe order (``"gray->color"``, ``"a+b->c"``).

**Joint coherence** (key ``"joint"``): generate n unconditional samples (n = number of evaluated
test items), classify every modality with its classifier and count the fraction of samples on which
all classifiers agree. It needs at least two modalities with classifiers.

**Frechet distances** ("FMD", ``fd``): for every modality with a classifier and every condition,
the Frechet distance between the classifier features (penultimate layer, see
:func:`mmlatent.evaluation.classifiers.classifier_features`) of the generated samples and of the
whole real test split. Keys ``"joint:<name>"`` and ``"<A>-><t>"``. With a local Inception-v3 the
same keys are computed as FID for image modalities (``fid``: floating batches ``(B, 1 or 3, H, W)``),
and with a local CLIP model CLIP-S of image-caption pairs (``clip_s``; text modalities are those whose
``to_values`` gives strings; keys in :func:`clip_key`, plus ``"real"``: the CLIP-S of the real test
pairs, the reference to compare with).

**Which conditions.** For M <= ``max_all_subsets`` modalities (default 6: 62 subsets) every
non-empty proper subset is evaluated. Above that the power set is never enumerated: the M
single-modality subsets and the M leave-one-out subsets are evaluated (2M conditions), which
bracket the others (least and most information given).

Sampling: ``pipe.generate`` in batches of ``batch_size``; batch ``b`` of condition ``c`` uses the
seed derived from ``(seed, c, b)``, so that every number is reproducible and conditions do not share
noise. ``pipe.last_nfe`` after each call gives the network evaluations per sample.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmlatent.diffusion.plan import SamplingPlan
from mmlatent.evaluation.classifiers import TrainedClassifier
from mmlatent.evaluation.data import EvaluationError, num_items, subset
from mmlatent.evaluation.fid import image_features as inception_features
from mmlatent.evaluation.fid import is_image_batch
from mmlatent.evaluation.frechet import (
    GaussianStatistics,
    frechet_distance_from_features,
    gaussian_statistics,
)
from mmlatent.model import GenerativeModel
from mmlatent.progress import progress_bar

__all__ = [
    "MAX_ALL_SUBSETS",
    "CoherenceEvaluator",
    "EvaluationResult",
    "batch_seed",
    "clip_key",
    "condition_key",
    "condition_label",
    "conditioning_subsets",
]

#: Largest number of modalities for which every non-empty proper subset is evaluated.
MAX_ALL_SUBSETS = 6


def conditioning_subsets(names: Sequence[str], max_all_subsets: int = MAX_ALL_SUBSETS) -> list[tuple[str, ...]]:
    """The given-modality subsets to evaluate, names in recipe order.

    All non-empty proper subsets (by size, then recipe order) when ``len(names) <= max_all_subsets``;
    otherwise the single-modality and leave-one-out subsets only (never the power set).
    """
    names = list(names)
    count = len(names)
    if count < 2:
        return []
    if count <= max_all_subsets:
        return [combo for size in range(1, count) for combo in itertools.combinations(names, size)]
    singles = [(name,) for name in names]
    leave_one_out = [tuple(other for other in names if other != name) for name in names]
    return singles + leave_one_out


def condition_key(given: Sequence[str], target: str) -> str:
    """``"a+b->c"``: the metrics key of target ``c`` generated given ``a`` and ``b``."""
    return f"{'+'.join(given)}->{target}"


def condition_label(given: Sequence[str]) -> str:
    """``"joint"`` for no given modality, else the given names joined by ``+`` (samples, report)."""
    return "+".join(given) if given else "joint"


def clip_key(given: Sequence[str], image: str, text: str, several_pairs: bool) -> str:
    """CLIP-S key: ``"joint"``, or ``"<given>-><generated members of the pair>"``.

    With several image-caption pairs in a recipe the pair is appended: ``"joint:image+caption"``.
    """
    if given:
        generated = [name for name in (image, text) if name not in given]
        key = f"{'+'.join(given)}->{'+'.join(generated)}"
    else:
        key = "joint"
    return f"{key}:{image}+{text}" if several_pairs else key


@torch.no_grad()
def _embed(network: Any, x: Tensor, batch_size: int) -> Tensor:
    """Embedding features ``(N, F)`` of a data-space batch ``x (N, ...)``, on the CPU."""
    device = next((p.device for p in network.parameters()), torch.device("cpu")) \
        if isinstance(network, torch.nn.Module) else torch.device("cpu")
    return torch.cat([network.features(x[start:start + batch_size].to(device)).float().cpu()
                      for start in range(0, x.shape[0], batch_size)])


def batch_seed(seed: int, condition_index: int, batch_index: int) -> int:
    """The sampling seed of one generation batch, derived from the evaluation seed."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, condition_index, batch_index]).generate_state(1)[0])


@dataclass
class EvaluationResult:
    """What one evaluation (one sampler, steps and seed) measured."""

    coherence: dict[str, float]
    fd: dict[str, float]
    fid: dict[str, float]
    clip_s: dict[str, float]
    nfe: int | None
    num_items: int
    timings: dict[str, float]
    #: first ``keep_samples`` outputs per condition label ("joint", "gray", "a+b"): {name: batch}
    samples: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    #: the sampling plan every condition was generated with
    plan: SamplingPlan | None = None
    #: Frechet distances in the features of the modalities' embedding networks (same keys as ``fd``)
    fd_embedding: dict[str, float] = field(default_factory=dict)


class CoherenceEvaluator:
    """Coherence, FMD, FID and CLIP-S of a pipeline against a labelled test split.

    Set up once (classifiers, real feature statistics), then :meth:`run` for each sampler,
    step count and seed.

    Args:
        pipe: the model (:class:`~mmlatent.model.GenerativeModel`: ``names``, ``modalities``,
            ``plan(...)``, ``generate(n=, given=, seed=, plan=)``, ``last_nfe``).
        classifiers: ``{name: TrainedClassifier}`` (modalities without one are never targets).
        test_data: the collated test split ``{name: (N, ...), "label": (N,)}``; real statistics
            use all of it.
        limit: evaluate at most this many test items (a fixed random subset) per condition.
        image_features: optional Inception-like extractor (:mod:`mmlatent.evaluation.fid`).
        clip_scorer: optional :class:`mmlatent.evaluation.clip_score.ClipScorer`.
        embeddings: optional ``{name: module with features(x) -> (N, F)}``, the modalities'
            embedding networks (:meth:`~mmlatent.modality.Modality.build_embedding`).
    """

    def __init__(
        self,
        pipe: GenerativeModel,
        classifiers: dict[str, TrainedClassifier],
        test_data: dict[str, Tensor],
        *,
        limit: int | None = None,
        batch_size: int = 256,
        max_all_subsets: int = MAX_ALL_SUBSETS,
        image_features: Any = None,
        clip_scorer: Any = None,
        embeddings: dict[str, Any] | None = None,
        keep_samples: int = 16,
        progress: bool = True,
        selection_seed: int = 0,
    ) -> None:
        if "label" not in test_data:
            raise EvaluationError("coherence needs a labelled test split")
        self.pipe = pipe
        self.names = list(pipe.names)
        self.classifiers = {name: classifiers[name] for name in self.names if name in classifiers}
        if not self.classifiers:
            raise EvaluationError(
                "no modality of this run has a coherence classifier (Modality.build_classifier returned None for all)"
            )
        self.test_data = test_data
        total = num_items(test_data)
        if limit is not None and limit < total:
            generator = torch.Generator().manual_seed(selection_seed)
            index = torch.randperm(total, generator=generator)[:limit].sort().values
            self.items = subset(test_data, index)
        else:
            self.items = test_data
        self.limit = limit
        self.batch_size = int(batch_size)
        self.subsets = conditioning_subsets(self.names, max_all_subsets)
        self.keep_samples = int(keep_samples)
        self.progress = progress
        started = time.perf_counter()
        self.real_features: dict[str, GaussianStatistics] = {
            name: gaussian_statistics(classifier.features(test_data[name]))
            for name, classifier in self.classifiers.items()
        }
        self.image_features = image_features
        self.image_names = [name for name in self.names if is_image_batch(test_data[name])]
        self.real_inception: dict[str, GaussianStatistics] = {}
        if image_features is not None:
            for name in self.image_names:
                self.real_inception[name] = gaussian_statistics(
                    inception_features(image_features, test_data[name], value_range=self._value_range(name))
                )
        self.embeddings = {name: network for name, network in (embeddings or {}).items() if name in self.names}
        self.real_embedding: dict[str, GaussianStatistics] = {
            name: gaussian_statistics(_embed(network, test_data[name], self.batch_size))
            for name, network in self.embeddings.items()
        }
        self.clip_scorer = clip_scorer
        text_names = [name for name in self.names if self._is_text(name)]
        self.clip_pairs = [(image, text) for image in self.image_names for text in text_names] if clip_scorer else []
        # CLIP-S of the real test pairs: the reference the generated pairs are compared with
        self.real_clip_s: dict[str, float] = {}
        for image, text in self.clip_pairs:
            key = "real" if len(self.clip_pairs) == 1 else f"real:{image}+{text}"
            captions = self.pipe.modalities[text].to_values(self.items[text])
            self.real_clip_s[key] = clip_scorer.score(self.items[image], captions, self._value_range(image))
        self.setup_seconds = time.perf_counter() - started

    # ------------------------------------------------------------------------------- helpers
    def _value_range(self, name: str) -> tuple[float, float]:
        value_range = getattr(self.pipe.modalities[name], "value_range", None)
        return tuple(value_range) if value_range is not None else (0.0, 1.0)

    def _is_text(self, name: str) -> bool:
        try:
            values = self.pipe.modalities[name].to_values(self.test_data[name][:1])
        except Exception:
            return False
        return bool(values) and isinstance(values[0], str)

    def _generate(
        self, given: tuple[str, ...], condition_index: int, plan: SamplingPlan, seed: int, bar: Any,
    ) -> tuple[dict[str, Tensor], list[int]]:
        """Generate one sample per evaluated item (conditioned on its ``given`` modalities)."""
        total = num_items(self.items)
        chunks: dict[str, list[Tensor]] = {name: [] for name in self.names}
        nfes: list[int] = []
        for batch_index, start in enumerate(range(0, total, self.batch_size)):
            stop = min(start + self.batch_size, total)
            kwargs: dict[str, Any] = dict(n=stop - start, seed=batch_seed(seed, condition_index, batch_index), plan=plan)
            if given:
                kwargs["given"] = {name: self.items[name][start:stop] for name in given}
            outputs = self.pipe.generate(**kwargs)
            missing = [name for name in self.names if name not in outputs]
            if missing:
                raise EvaluationError(f"pipe.generate returned no output for {', '.join(missing)}")
            for name in self.names:
                value = outputs[name]
                if value.shape[0] != stop - start:
                    raise EvaluationError(
                        f"pipe.generate returned {value.shape[0]} items of {name!r}, expected {stop - start}"
                    )
                chunks[name].append(value.detach().cpu())
            nfe = getattr(self.pipe, "last_nfe", None)
            if nfe is not None:
                nfes.append(int(nfe))
            bar.update(stop - start)
        return {name: torch.cat(parts) for name, parts in chunks.items()}, nfes

    def _quality(
        self, outputs: dict[str, Tensor], targets: Sequence[str], given: tuple[str, ...],
        fd: dict[str, float], fid: dict[str, float], fd_embedding: dict[str, float],
    ) -> None:
        for target in targets:
            key = condition_key(given, target) if given else f"joint:{target}"
            if target in self.classifiers and num_items(self.items) >= 2:
                generated = self.classifiers[target].features(outputs[target])
                fd[key] = frechet_distance_from_features(self.real_features[target], generated)
            if target in self.real_inception and num_items(self.items) >= 2:
                generated = inception_features(
                    self.image_features, outputs[target], value_range=self._value_range(target)
                )
                fid[key] = frechet_distance_from_features(self.real_inception[target], generated)
            if target in self.real_embedding and num_items(self.items) >= 2:
                generated = _embed(self.embeddings[target], outputs[target], self.batch_size)
                fd_embedding[key] = frechet_distance_from_features(self.real_embedding[target], generated)

    def _clip(self, outputs: dict[str, Tensor], given: tuple[str, ...], clip_s: dict[str, float]) -> None:
        for image, text in self.clip_pairs:
            if image in given and text in given:
                continue
            captions = self.pipe.modalities[text].to_values(outputs[text])
            key = clip_key(given, image, text, several_pairs=len(self.clip_pairs) > 1)
            clip_s[key] = self.clip_scorer.score(outputs[image], captions, self._value_range(image))

    def _keep(self, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {name: value[: self.keep_samples] for name, value in outputs.items()}

    # ----------------------------------------------------------------------------------- run
    def run(
        self,
        sampler: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        guidance: dict[str, float] | None = None,
        options: dict[str, Any] | None = None,
        recipe_defaults: bool = True,
        plan: SamplingPlan | None = None,
    ) -> EvaluationResult:
        """Evaluate joint generation and every condition once with one sampling plan and seed.

        The plan is ``plan``, or ``pipe.plan(sampler, steps, guidance, recipe_defaults, **options)``
        (``options``: sampler options, e.g. ``{"eta": 1.0}``); ``result.plan`` records it."""
        if plan is None:
            plan = self.pipe.plan(sampler, steps, guidance, recipe_defaults, **dict(options or {}))
        labels = self.items["label"]
        total = num_items(self.items)
        coherence: dict[str, float] = {}
        fd: dict[str, float] = {}
        fid: dict[str, float] = {}
        fd_embedding: dict[str, float] = {}
        clip_s: dict[str, float] = dict(self.real_clip_s)
        samples: dict[str, dict[str, Tensor]] = {}
        nfes: list[int] = []
        generation = 0.0
        metrics = 0.0
        bar = progress_bar(
            total=total * (1 + len(self.subsets)),
            desc=f"evaluate {plan.sampler}" + (f"/{plan.steps}" if plan.steps else ""),
            unit="sample",
            disable=None if self.progress else True,  # None: only on a terminal
            leave=False,
        )
        try:
            for condition_index, given in enumerate([(), *self.subsets]):
                started = time.perf_counter()
                outputs, condition_nfes = self._generate(given, condition_index, plan, seed, bar)
                nfes.extend(condition_nfes)
                generation += time.perf_counter() - started
                started = time.perf_counter()
                targets = [name for name in self.names if name not in given]
                if not given:
                    if len(self.classifiers) >= 2:
                        predictions = torch.stack([c.predict(outputs[name]) for name, c in self.classifiers.items()])
                        coherence["joint"] = float((predictions == predictions[:1]).all(dim=0).double().mean())
                else:
                    for target in targets:
                        if target in self.classifiers:
                            predicted = self.classifiers[target].predict(outputs[target])
                            coherence[condition_key(given, target)] = float((predicted == labels).double().mean())
                self._quality(outputs, targets, given, fd, fid, fd_embedding)
                self._clip(outputs, given, clip_s)
                samples[condition_label(given)] = self._keep(outputs)
                metrics += time.perf_counter() - started
        finally:
            bar.close()
        generated = total * (1 + len(self.subsets))
        timings = {
            "generation_s": round(generation, 4),
            "metrics_s": round(metrics, 4),
            "generation_ms_per_sample": round(1000.0 * generation / max(generated, 1), 4),
        }
        return EvaluationResult(
            coherence=coherence,
            fd=fd,
            fid=fid,
            clip_s=clip_s,
            nfe=max(nfes) if nfes else None,
            num_items=total,
            timings=timings,
            samples=samples,
            plan=plan,
            fd_embedding=fd_embedding,
        )
