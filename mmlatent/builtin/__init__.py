"""The built-in plugin (listed as distribution ``mmlatent``): things that need no extra dependency.

- modality kind ``vector`` (:mod:`mmlatent.builtin.vector`): fixed-size real vectors;
- dataset ``tensors`` (:mod:`mmlatent.builtin.tensors`): arrays from a ``.safetensors``/``.npz`` file.

The model family ``mld`` (:mod:`mmlatent.builtin.mld`) and the dataset ``paired``
(:mod:`mmlatent.builtin.paired`: registered datasets joined by label) are registered by the
``mmlatent`` distribution's own entry points, not from here: they use the registry they register in
(``mld`` trains through it, ``paired`` builds its sources through it), and the registry imports
this package, so importing them from here would close an import circle.

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
