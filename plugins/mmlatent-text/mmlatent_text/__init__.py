"""mmlatent-text: the ``text`` modality kind (short captions) for mmlatent.

Public names: :class:`TextModality`, :class:`TextOptions`, :class:`TextAutoencoder`,
:class:`TextClassifier`, :class:`Vocabulary`. The plugin entry point is :mod:`mmlatent_text.plugin`.
"""

from mmlatent_text.autoencoder import TextAutoencoder
from mmlatent_text.classifier import TextClassifier
from mmlatent_text.modality import TextModality, TextOptions
from mmlatent_text.vocabulary import Vocabulary

__version__ = "0.1.0"

__all__ = ["TextAutoencoder", "TextClassifier", "TextModality", "TextOptions", "Vocabulary", "__version__"]
