"""What plugins register: :class:`ModalitySpec` (a modality kind) and :class:`DatasetSpec` (a dataset).

This module imports neither torch nor any modality: ``mmlatent --help``, ``mmlatent plugins`` and
``mmlatent validate`` load the plugins' registrations without the deep-learning stack (the
registering module of a plugin imports its pydantic options and names the heavy classes by
``"module:Class"`` references or wraps them in functions that import on call).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["DatasetSpec", "DeferredCallable", "ModalitySpec", "NoOptions", "deferred", "is_reference",
           "lazy_exports", "resolve_reference"]


def is_reference(value: Any) -> bool:
    """Whether ``value`` is a ``"package.module:Attribute"`` reference (not checked for existence)."""
    if not isinstance(value, str) or value.count(":") != 1:
        return False
    module, attribute = value.split(":")
    return all(part.isidentifier() for part in module.split(".")) and attribute.isidentifier()


def resolve_reference(reference: str) -> Any:
    """Import ``"package.module:Attribute"`` and return the attribute."""
    if not is_reference(reference):
        raise ValueError(f"{reference!r} is not a 'package.module:Attribute' reference")
    module, attribute = reference.split(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except AttributeError:
        raise ImportError(f"module {module!r} has no attribute {attribute!r} (reference {reference!r})") from None


def lazy_exports(module: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) importing the public names ``exports`` (name -> the module
    defining it) on first access, so that importing a package imports no torch::

        __getattr__ = mmlatent.lazy_exports(__name__, {"ImageModality": "mmlatent_image.modality"})
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__


class DeferredCallable:
    """A function named by a ``"module:function"`` reference, imported on its first call."""

    def __init__(self, reference: str) -> None:
        if not is_reference(reference):
            raise ValueError(f"{reference!r} is not a 'package.module:function' reference")
        self.reference = reference
        self._function: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._function is None:
            self._function = resolve_reference(self.reference)
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"DeferredCallable({self.reference!r})"


def deferred(spec: Any, *names: str) -> None:
    """Replace the ``"module:function"`` references among the fields ``names`` of the frozen
    dataclass ``spec`` by :class:`DeferredCallable` objects (the specs' ``__post_init__``)."""
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, str):
            object.__setattr__(spec, name, DeferredCallable(value))


class NoOptions(BaseModel):
    """Options model for a modality kind or dataset that takes no options."""

    model_config = ConfigDict(extra="forbid")



@dataclass(frozen=True)
class ModalitySpec:
    """What a plugin registers for one modality kind.

    ``kind`` is the name recipes use (``modalities.<name>.kind``); ``options`` is a pydantic model
    with ``extra="forbid"`` validating ``modalities.<name>.options``; ``modality`` is the
    :class:`Modality` subclass the core instantiates as ``modality(name, options, latent_dim)``, or a
    ``"module:Class"`` reference to it, imported only when a modality is built: a plugin whose
    registering module imports only its options (pydantic) keeps ``mmlatent plugins`` and
    ``mmlatent validate`` from importing torch.
    """

    kind: str
    modality: type | str  # a mmlatent.modality.Modality subclass, or a reference to one
    options: type[BaseModel] = NoOptions
    description: str = ""

    @property
    def modality_class(self) -> type:
        """The :class:`Modality` subclass, imported now when ``modality`` is a ``"module:Class"`` reference."""
        return resolve_reference(self.modality) if isinstance(self.modality, str) else self.modality

    def build(self, name: str, options: BaseModel | dict[str, Any] | None, latent_dim: int) -> Any:
        """Validate ``options`` (dict or model) and instantiate the modality."""
        if not isinstance(options, self.options):
            options = self.options.model_validate(dict(options or {}))
        return self.modality_class(name, options, latent_dim)


@dataclass(frozen=True)
class DatasetSpec:
    """What a plugin registers for one dataset.

    ``build(options, split)`` returns a ``torch.utils.data.Dataset`` for ``split`` (one of
    ``available_splits(options)``) whose items are dicts ``{field: raw value, ..., "label": int}``
    ("label" optional). ``fields(options)`` names the modality fields the items carry (recipes'
    modality names, or their ``field`` key, refer to these).

    ``build``, ``fields``, ``has_labels`` and ``splits_for`` may be given as ``"module:function"``
    references (imported on first call), so that registering a dataset imports only its options.

    ``splits`` are the dataset's splits. A dataset whose splits depend on its options (a
    validation split only when one is configured, or the splits its sources share) sets
    ``splits_for(options) -> split names`` as well: :meth:`available_splits` then calls it, and
    ``splits`` only names the usual ones (for people). Training loads every available split.
    """

    name: str
    build: Callable[[BaseModel, str], Any]
    fields: Callable[[BaseModel], Sequence[str]]
    options: type[BaseModel] = NoOptions
    splits: tuple[str, ...] = ("train", "test")
    has_labels: Callable[[BaseModel], bool] = field(default=lambda options: True)
    description: str = ""
    splits_for: Callable[[BaseModel], Sequence[str]] | None = None

    def __post_init__(self) -> None:
        deferred(self, "build", "fields", "has_labels", "splits_for")

    def validate_options(self, options: BaseModel | dict[str, Any] | None) -> BaseModel:
        if isinstance(options, self.options):
            return options
        return self.options.model_validate(dict(options or {}))

    def available_splits(self, options: BaseModel | dict[str, Any] | None) -> tuple[str, ...]:
        """The split names a dataset with these options offers: ``splits_for(options)`` (options
        validated first) when the spec sets it, else ``splits``."""
        if self.splits_for is None:
            return tuple(self.splits)
        return tuple(self.splits_for(self.validate_options(options)))
