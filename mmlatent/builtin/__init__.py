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

from mmlatent.builtin.options import TensorsOptions, VectorOptions
from mmlatent.hookspecs import hookimpl
from mmlatent.specs import DatasetSpec, ModalitySpec

# the heavy parts (torch) are named by "module:name" references: imported when a run builds them
VECTOR = ModalitySpec(
    kind="vector",
    modality="mmlatent.builtin.vector:VectorModality",
    options=VectorOptions,
    description="fixed-size real vectors (tabular rows, embeddings): MLP or identity autoencoder",
)

TENSORS = DatasetSpec(
    name="tensors",
    build="mmlatent.builtin.tensors:build",
    fields="mmlatent.builtin.tensors:fields",
    options=TensorsOptions,
    splits=("train", "test"),
    has_labels="mmlatent.builtin.tensors:has_labels",
    description="arrays from a .safetensors or .npz file, one per modality field (first axis = samples)",
)


@hookimpl
def register_modalities(register):
    register(VECTOR)


@hookimpl
def register_datasets(register):
    register(TENSORS)
