"""The plugin hooks of mmlatent (pluggy project name and entry-point group: ``mmlatent``).

A plugin is a module, named by an entry point in the ``mmlatent`` group of its distribution's
metadata, that implements one or more of these hooks with the ``@mmlatent.hookimpl`` marker::

    # pyproject.toml
    [project.entry-points.mmlatent]
    audio = "mmlatent_audio.plugin"

    # mmlatent_audio/plugin.py
    import mmlatent

    @mmlatent.hookimpl
    def register_modalities(register):
        register(mmlatent.ModalitySpec(kind="audio", modality=AudioModality, options=AudioOptions))

Hooks use the register-callback style: the core hands the hook a ``register`` function and the
plugin calls it once per thing it provides. Each call is attributed to the plugin's distribution,
so duplicate names are reported with both distributions.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from mmlatent.families import ModelSpec
from mmlatent.specs import DatasetSpec, ModalitySpec

PROJECT_NAME = "mmlatent"
ENTRY_POINT_GROUP = "mmlatent"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_modalities(register: Callable[[ModalitySpec], None]) -> None:
    """Register modality kinds: call ``register(ModalitySpec(...))`` once per kind."""


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets: call ``register(DatasetSpec(...))`` once per dataset."""


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register model families: call ``register(ModelSpec(...))`` once per family (``model.family``)."""
