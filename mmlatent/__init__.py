"""mmlatent: Multi-modal Latent Diffusion with modality plugins.

Public names for plugin authors and users. Importing ``mmlatent`` loads no plugin: plugins are
loaded on first use (``mmlatent.plugins.get_registry()``). Nor does it import torch: the
registration names (specs, ``hookimpl``) are torch-free, and ``Autoencoder``, ``Modality`` and
``MLDPipeline`` are imported on first access, so ``mmlatent --help`` starts in a fraction of a second.
"""

from mmlatent.families import ModelSpec
from mmlatent.hookspecs import hookimpl
from mmlatent.specs import DatasetSpec, ModalitySpec, NoOptions, lazy_exports
from mmlatent.version import __version__

__all__ = [
    "Autoencoder",
    "DatasetSpec",
    "MLDPipeline",
    "Modality",
    "ModalitySpec",
    "ModelSpec",
    "NoOptions",
    "__version__",
    "hookimpl",
    "lazy_exports",
]


#: Public names imported on first access (they need torch).
__getattr__ = lazy_exports(__name__, {"Autoencoder": "mmlatent.modality", "Modality": "mmlatent.modality",
                                      "MLDPipeline": "mmlatent.pipeline"})
