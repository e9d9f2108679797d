"""Evaluation of MLD runs: coherence, Frechet distances (FMD, FID), CLIP-S, reports.

Modules (one concept each):

- :mod:`~mmlatent.evaluation.data`: a labelled split collated into data-space tensors;
- :mod:`~mmlatent.evaluation.classifiers`: per-modality coherence classifiers (trained once per
  run, stored in ``RUN/classifiers``) and the feature convention used for FMD;
- :mod:`~mmlatent.evaluation.frechet`: the Frechet distance between feature sets;
- :mod:`~mmlatent.evaluation.fid`: FID with a local torchvision Inception-v3;
- :mod:`~mmlatent.evaluation.clip_score`: CLIP-S with a local transformers CLIP model;
- :mod:`~mmlatent.evaluation.coherence`: joint and conditional coherence and the distances per
  condition (:class:`CoherenceEvaluator`);
- :mod:`~mmlatent.evaluation.report`: ``RUN/report.md`` with sample renderings;
- :mod:`~mmlatent.evaluation.command`: :func:`evaluate_run` and ``mmlatent evaluate``.
"""

from mmlatent.evaluation.classifiers import (
    ClassifierSettings,
    classifier_features,
    load_or_train_classifiers,
)
from mmlatent.evaluation.coherence import (
    CoherenceEvaluator,
    EvaluationResult,
    conditioning_subsets,
)
from mmlatent.evaluation.command import build_evaluator, evaluate_run
from mmlatent.evaluation.data import EvaluationError, load_split
from mmlatent.evaluation.frechet import (
    frechet_distance,
    frechet_distance_from_features,
    gaussian_statistics,
)

__all__ = [
    "ClassifierSettings",
    "CoherenceEvaluator",
    "EvaluationError",
    "EvaluationResult",
    "build_evaluator",
    "classifier_features",
    "conditioning_subsets",
    "evaluate_run",
    "frechet_distance",
    "frechet_distance_from_features",
    "gaussian_statistics",
    "load_or_train_classifiers",
    "load_split",
]
