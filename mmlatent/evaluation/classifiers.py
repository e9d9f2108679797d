"""Per-modality classifiers for coherence and for Frechet distances in their feature space (FMD).

Each modality's plugin gives the architecture (``Modality.build_classifier(num_classes)``: a module
mapping a data-space batch ``(B, *item_shape)`` to logits ``(B, num_classes)``). mmlatent trains it
on the labelled training split in data space (Adam, cross-entropy, a few epochs), measures its test
accuracy (an upper bound for coherence), and stores it in the run directory::

    RUN/classifiers/<name>.safetensors   weights
    RUN/classifiers/<name>.json          {"num_classes", "accuracy", "epochs", "train_items", ...}

A classifier found there (with a matching number of classes) is loaded instead of trained again.

Modalities whose plugin returns ``None`` have no classifier: they can be *given* in a coherence
condition but are never a target, and get no FMD.

``ClassifierSettings.with_reconstructions`` names modalities whose classifier trains on the training
items *and* on their autoencoder reconstructions (same labels; MLD runs, which have autoencoders).
A judge trained on real data only can be brittle to an autoencoder's smoothing: on ``digits_audio``
classifiers trained on the real audio with different seeds read the same reconstructions at 54-77%,
while one trained on real audio and its reconstructions reads real test audio at 99% and
reconstructions at 96%. Generated data are decoded by the same autoencoder, so such a judge reads
them in their own domain; the labels are always the true ones.

**Feature convention** (for FMD, :func:`classifier_features`): the features of a classifier are
its penultimate activations. A classifier may define them explicitly with a method
``features(x) -> (B, F)`` on its class; otherwise they are the input of its *last registered*
``nn.Linear`` (which must be the output layer, ``out_features == num_classes``: anything else is
refused with a message asking for a ``features`` method).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import Tensor, nn

from mmlatent.evaluation.data import EvaluationError
from mmlatent.manifest import record_files, verify_files
from mmlatent.model import GenerativeModel
from mmlatent.progress import progress_bar

__all__ = [
    "ClassifierSettings",
    "TrainedClassifier",
    "autoencoder_reconstructions",
    "classifier_accuracy",
    "classifier_features",
    "load_or_train_classifiers",
    "train_classifier",
]


@dataclass
class ClassifierSettings:
    """How coherence classifiers are trained (overridable from code, recipes and benchmarks)."""

    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    seed: int = 0
    retrain: bool = False  #: train again even when RUN/classifiers holds a classifier
    #: modalities whose classifier also trains on the autoencoder's reconstructions of the training items
    #: (None: the recipe's ``evaluation.classifier_reconstructions`` where an evaluation reads it, else none)
    with_reconstructions: tuple[str, ...] | None = None

    @classmethod
    def from_mapping(cls, values: Any) -> ClassifierSettings:
        """Settings from a dict or pydantic model with any subset of the fields (None -> defaults)."""
        if values is None:
            return cls()
        if isinstance(values, cls):
            return values
        if hasattr(values, "model_dump"):
            values = values.model_dump()
        fields = cls.__dataclass_fields__
        known = {key: value for key, value in dict(values).items() if key in fields and value is not None}
        if "with_reconstructions" in known:
            known["with_reconstructions"] = tuple(known["with_reconstructions"])
        return cls(**known)


def _last_linear(model: nn.Module) -> nn.Linear | None:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return last


def classifier_features(model: nn.Module, x: Tensor, num_classes: int | None = None) -> Tensor:
    """Penultimate features ``(B, F)`` of a classifier on a data-space batch ``(B, *item_shape)``.

    Uses ``model.features(x)`` when the classifier's class defines such a method, else the input
    of the last ``nn.Linear`` (see the module docstring).
    """
    method = getattr(type(model), "features", None)
    if callable(method) and not isinstance(method, nn.Module):
        return model.features(x).flatten(1)
    linear = _last_linear(model)
    if linear is None:
        raise EvaluationError(
            f"classifier {type(model).__name__} has no nn.Linear output layer: define a "
            "`features(x) -> (B, F)` method for Frechet distances in its feature space"
        )
    if num_classes is not None and linear.out_features != num_classes:
        raise EvaluationError(
            f"the last nn.Linear of classifier {type(model).__name__} has {linear.out_features} "
            f"outputs, not {num_classes} classes: define a `features(x) -> (B, F)` method"
        )
    captured: list[Tensor] = []

    def hook(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        captured.append(inputs[0])

    handle = linear.register_forward_pre_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    if not captured:
        raise EvaluationError(f"the last nn.Linear of classifier {type(model).__name__} was not called")
    return captured[-1].flatten(1)


def _batches(size: int, batch_size: int):
    for start in range(0, size, batch_size):
        yield slice(start, min(start + batch_size, size))


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def _predict_logits(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    """Logits ``(N, C)`` on the CPU; batches run on the model's device."""
    model.eval()
    device = _device_of(model)
    return torch.cat([model(x[s].to(device)).cpu() for s in _batches(x.shape[0], batch_size)])


def classifier_accuracy(model: nn.Module, x: Tensor, labels: Tensor, batch_size: int = 512) -> float:
    """Fraction of items ``x`` (N, ...) whose predicted class equals ``labels`` (N,)."""
    predictions = _predict_logits(model, x, batch_size).argmax(dim=1)
    return float((predictions == labels.to(predictions.device)).double().mean())


def train_classifier(
    model: nn.Module,
    x: Tensor,
    labels: Tensor,
    settings: ClassifierSettings | None = None,
    *,
    progress: bool = True,
    description: str = "classifier",
) -> nn.Module:
    """Train ``model`` on data-space items ``x`` ``(N, ...)`` with integer ``labels`` ``(N,)`` (in place)."""
    settings = settings or ClassifierSettings()
    device = _device_of(model)
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    size = x.shape[0]
    steps_per_epoch = (size + settings.batch_size - 1) // settings.batch_size
    bar = progress_bar(total=settings.epochs * steps_per_epoch, desc=description, leave=False,
               disable=None if progress else True)  # None: only on a terminal
    model.train()
    for _epoch in range(settings.epochs):
        order = torch.randperm(size, generator=generator)
        for batch in _batches(size, settings.batch_size):
            index = order[batch]
            logits = model(x[index].to(device))
            loss = nn.functional.cross_entropy(logits, labels[index].to(device))
            if not torch.isfinite(loss):  # one sync per step: negligible beside a classifier step
                raise EvaluationError(f"{description}: the training loss is {loss.item()}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update(1)
            if not bar.disable and bar.n % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    model.eval()
    return model


def _items_with(data: dict[str, Tensor], name: str, names: Sequence[str]) -> tuple[Tensor, Tensor]:
    """The items of a collated split that have modality ``name``: ``(x (n, ...), labels (n,))``."""
    if "present" not in data:
        return data[name], data["label"]
    rows = data["present"][:, list(names).index(name)]
    if not bool(rows.any()):
        raise EvaluationError(f"no training item has modality {name!r}: its classifier cannot be trained")
    return data[name][rows], data["label"][rows]


@dataclass
class TrainedClassifier:
    """A trained classifier of one modality, with its test accuracy."""

    name: str
    model: nn.Module
    num_classes: int
    accuracy: float | None
    trained_now: bool = False
    batch_size: int = 512

    def predict(self, x: Tensor) -> Tensor:
        """Predicted classes ``(N,)`` of a data-space batch ``(N, ...)``."""
        return _predict_logits(self.model, x, self.batch_size).argmax(dim=1)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(N, F)`` (see :func:`classifier_features`)."""
        self.model.eval()
        device = _device_of(self.model)
        return torch.cat([
            classifier_features(self.model, x[s].to(device), self.num_classes).cpu()
            for s in _batches(x.shape[0], self.batch_size)
        ])


@torch.no_grad()
def autoencoder_reconstructions(pipe: GenerativeModel, name: str, x: Tensor, batch_size: int = 256) -> Tensor:
    """Data-space batch ``(N, *item_shape)`` of modality ``name`` -> its autoencoder's reconstructions
    ``(N, *item_shape)`` (encode, decode, back to data space), on the CPU."""
    if not (callable(getattr(pipe, "encode", None)) and callable(getattr(pipe, "decode", None))):
        raise EvaluationError(f"classifier {name!r}: training on reconstructions needs a model with autoencoders "
                              f"(MLD); {type(pipe).__name__} has none")
    return torch.cat([pipe.decode(pipe.encode({name: x[s]}))[name].cpu() for s in _batches(x.shape[0], batch_size)])


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _save(directory: Path, classifier: TrainedClassifier, info: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / f"{classifier.name}.safetensors", lambda p: save_model(classifier.model, str(p)))
    text = json.dumps(info, indent=2)
    _write_atomic(directory / f"{classifier.name}.json", lambda p: p.write_text(text))
    run_root = directory.parent
    if (run_root / "manifest.json").is_file():  # in a run directory: recorded like every run file
        record_files(run_root, [directory / f"{classifier.name}.safetensors", directory / f"{classifier.name}.json"])


def _try_load(directory: Path, name: str, model: nn.Module, num_classes: int,
              with_reconstructions: bool = False) -> dict[str, Any] | None:
    """Load a stored classifier into ``model``; None (with a note) when absent or unusable."""
    weights, info_path = directory / f"{name}.safetensors", directory / f"{name}.json"
    if not weights.exists() or not info_path.exists():
        return None
    try:
        if (directory.parent / "manifest.json").is_file():
            verify_files(directory.parent, [weights, info_path])
        info = json.loads(info_path.read_text())
        if int(info.get("num_classes", -1)) != num_classes:
            print(f"classifier {name!r}: stored for {info.get('num_classes')} classes, not {num_classes}; "
                  "training again")
            return None
        if bool(info.get("with_reconstructions", False)) != with_reconstructions:
            print(f"classifier {name!r}: stored {'with' if info.get('with_reconstructions') else 'without'} "
                  "reconstructions in its training data; training again")
            return None
        load_model(model, str(weights), strict=True, device=str(_device_of(model)))
    except Exception as error:  # a corrupt or mismatching cache is rebuilt, never trusted
        print(f"classifier {name!r}: cannot reuse {weights} ({type(error).__name__}: {error}); training again")
        return None
    model.eval()
    return info


def _read_info(directory: Path | None, name: str) -> dict[str, Any] | None:
    if directory is None:
        return None
    path = directory / f"{name}.json"
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except (OSError, ValueError):
        return None


def load_or_train_classifiers(
    pipe: GenerativeModel,
    run_dir: str | Path | None,
    test_data: dict[str, Tensor],
    train_data: dict[str, Tensor] | Callable[[], dict[str, Tensor]],
    settings: ClassifierSettings | None = None,
    *,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> dict[str, TrainedClassifier]:
    """A classifier per modality of ``pipe.names`` that has one, trained once and kept in ``RUN/classifiers``.

    ``test_data``: the collated test split (:func:`mmlatent.evaluation.data.load_split`);
    ``train_data``: the collated training split, or a function returning it (called only when some
    classifier has to be trained). Test accuracy is measured on ``test_data`` after training and
    read back from the JSON file when a stored classifier is reused. ``run_dir=None`` trains
    without storing. ``device``: where the classifiers run (default: ``pipe.device`` or the CPU);
    data stay on the CPU and move batch by batch.
    """
    settings = settings or ClassifierSettings()
    if "label" not in test_data:
        raise EvaluationError("classifiers need a labelled test split")
    directory = Path(run_dir) / "classifiers" if run_dir is not None else None
    test_classes = int(test_data["label"].max()) + 1
    loaded_train: dict[str, Tensor] | None = None

    def training_split() -> dict[str, Tensor]:
        nonlocal loaded_train
        if loaded_train is None:
            loaded_train = train_data() if callable(train_data) else train_data
            if "label" not in loaded_train:
                raise EvaluationError("classifiers need a labelled training split")
        return loaded_train

    # The number of classes: the one stored with the classifiers when they agree and cover the test
    # labels (no need to read the training split), else from the labels of both splits.
    stored = {int(info.get("num_classes", -1)) for name in pipe.names if (info := _read_info(directory, name))}
    if not settings.retrain and len(stored) == 1 and next(iter(stored)) >= test_classes:
        num_classes = next(iter(stored))
    else:
        num_classes = max(int(training_split()["label"].max()) + 1, test_classes)

    reconstructed = tuple(settings.with_reconstructions or ())
    unknown = sorted(set(reconstructed) - set(pipe.names))
    if unknown:
        raise EvaluationError(f"classifiers with reconstructions: unknown modalities {unknown} "
                              f"(modalities: {', '.join(pipe.names)})")
    result: dict[str, TrainedClassifier] = {}
    for name in pipe.names:
        with_reconstructions = name in reconstructed
        with torch.random.fork_rng():  # seeded initialisation and dropout, without touching the caller's RNG
            torch.manual_seed(settings.seed)
            model = pipe.modalities[name].build_classifier(num_classes)
            if model is None:
                continue
            model = model.to(device or getattr(pipe, "device", None) or "cpu")
            info = None
            if directory is not None and not settings.retrain:
                info = _try_load(directory, name, model, num_classes, with_reconstructions)
            if info is not None:
                result[name] = TrainedClassifier(name, model, num_classes, info.get("accuracy"), trained_now=False)
                continue
            train = training_split()
            x, labels = _items_with(train, name, pipe.names)
            started = time.perf_counter()
            if with_reconstructions:
                x = torch.cat([x, autoencoder_reconstructions(pipe, name, x)])
                labels = torch.cat([labels, labels])
            train_classifier(model, x, labels, settings, progress=progress, description=f"classifier {name}")
        accuracy = classifier_accuracy(model, test_data[name], test_data["label"])
        classifier = TrainedClassifier(name, model, num_classes, accuracy, trained_now=True)
        if directory is not None:
            info = {
                "name": name,
                "num_classes": num_classes,
                "accuracy": accuracy,
                "train_items": int(labels.shape[0]),
                "test_items": int(test_data["label"].shape[0]),
                "with_reconstructions": with_reconstructions,
                "settings": asdict(settings),
                "seconds": round(time.perf_counter() - started, 3),
            }
            _save(directory, classifier, info)
        result[name] = classifier
    return result
