"""mmlatent-image: the ``image`` modality kind and image datasets for mmlatent.

Registered through the ``mmlatent`` entry point ``image = "mmlatent_image.plugin"``.
"""

import mmlatent

__version__ = "0.1.0"

__all__ = ["ImageModality", "ImageOptions", "__version__"]


# the public classes, imported on first access (they need torch; registering the plugin does not)
__getattr__ = mmlatent.lazy_exports(__name__, {
    "ImageModality": "mmlatent_image.modality",
    "ImageOptions": "mmlatent_image.options",
})
