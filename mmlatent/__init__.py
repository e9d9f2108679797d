"""mmlatent: Multi-modal Latent Diffusion with modality plugins.

Public names for plugin authors and users. Importing ``mmlatent`` loads no plugin: plugins are
loaded on first use (``mmlatent.plugins.get_registry()``).
"""

from mmlatent.families import ModelSpec
from mmlatent.hookspecs import hookimpl
from mmlatent.modality import (
    Autoencoder,
    DatasetSpec,
    Modality,
    ModalitySpec,
    NoOptions,
)
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
]


def __getattr__(name: str):
    if name == "MLDPipeline":  # lazy: the pipeline pulls in the diffusion engine
        from mmlatent.pipeline import MLDPipeline

        return MLDPipeline
    raise AttributeError(f"module 'mmlatent' has no attribute {name!r}")
