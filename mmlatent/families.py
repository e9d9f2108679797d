"""Model families: the extension point for whole generative models (MLD, the VAE baselines, ...).

A family says how a recipe is trained into a run directory and how a run directory is loaded
back as an object of the model interface (:class:`mmlatent.model.GenerativeModel`), so that
``mmlatent train``, ``sample``, ``evaluate``, reports and ``--compare`` work for every family.
Plugins register families with the ``register_models`` hook::

    @mmlatent.hookimpl
    def register_models(register):
        register(mmlatent.ModelSpec(name="mvae", options=MVAEOptions, train=train_mvae, load=load_mvae))

A recipe picks one with ``model: {family: mvae, options: {...}}``; without a ``model`` section it
is MLD (registered by the core's built-in plugin). This module sits low: it imports pydantic only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from mmlatent.specs import deferred

__all__ = ["DEFAULT_FAMILY", "ModelSpec"]

#: The family of recipes without a ``model`` section.
DEFAULT_FAMILY = "mld"


class _NoModelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ModelSpec:
    """What a plugin registers for one model family.

    ``name``: the recipe's ``model.family``; ``options``: a pydantic model with ``extra="forbid"``
    validating ``model.options``; ``train(recipe, run_dir, accelerator, **context)`` trains the
    recipe into ``run_dir`` (a :class:`pathlib.Path` that ``mmlatent train`` has checked and
    locked; ``context``: ``resume``, ``progress``, ``evaluate``, ``stop``, ``datasets``, as
    :class:`mmlatent.training.StagedTrainer` takes them); ``load(run_dir, device)`` returns the
    trained model (a :class:`~mmlatent.model.GenerativeModel`); ``check(recipe, options)``
    (optional) raises ``ValueError`` when the validated options do not fit the rest of the
    recipe (e.g. an option naming a modality the recipe does not have): ``mmlatent validate`` and
    ``mmlatent train`` report it as a recipe error. ``train``, ``load`` and ``check`` may be
    ``"module:function"`` references, imported on first call.
    """

    name: str
    train: Callable[..., Any]
    load: Callable[..., Any]
    options: type[BaseModel] = _NoModelOptions
    description: str = ""
    check: Callable[[Any, BaseModel], None] | None = None

    def __post_init__(self) -> None:
        deferred(self, "train", "load", "check")

    def validate_options(self, options: BaseModel | dict[str, Any] | None) -> BaseModel:
        """``model.options`` (dict or model) as the family's validated options model."""
        if isinstance(options, self.options):
            return options
        return self.options.model_validate(dict(options or {}))
