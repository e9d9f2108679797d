"""The built-in plugin (listed as distribution ``mmlatent``): things that need no extra dependency.

- modality kind ``vector`` (:mod:`mmlatent.builtin.vector`): fixed-size real vectors;
- dataset ``tensors`` (:mod:`mmlatent.builtin.tensors`): arrays from a ``.safetensors``/``.npz`` file.

The model family ``mld`` (:mod:`mmlatent.builtin.mld`) is registered by the ``mmlatent``
distribution's own entry point, not from here: it trains through the registry it registers in.

It registers them through the same hooks as any third-party plugin; :mod:`mmlatent.plugins`
always loads it first, whatever ``MMLATENT_LOAD_PLUGINS`` says.
"""

from __future__ import annotations

from mmlatent.builtin.tensors import TENSORS
from mmlatent.builtin.vector import VECTOR
from mmlatent.hookspecs import hookimpl


@hookimpl
def register_modalities(register):
    register(VECTOR)


@hookimpl
def register_datasets(register):
    register(TENSORS)
