"""mmlatent-image: the ``image`` modality kind and image datasets for mmlatent.

Registered through the ``mmlatent`` entry point ``image = "mmlatent_image.plugin"``.
"""

from mmlatent_image.modality import ImageModality, ImageOptions

__version__ = "0.1.0"

__all__ = ["ImageModality", "ImageOptions", "__version__"]
