"""mmlatent-text: the ``text`` modality kind (short captions) for mmlatent.

Public names: :class:`TextModality`, :class:`TextOptions`, :class:`TextAutoencoder`,
:class:`TextClassifier`, :class:`Vocabulary`. The plugin entry point is :mod:`mmlatent_text.plugin`.
"""

import mmlatent

__version__ = "0.1.0"

__all__ = ["TextAutoencoder", "TextClassifier", "TextModality", "TextOptions", "Vocabulary", "__version__"]


# the public classes, imported on first access (they need torch; registering the plugin does not)
__getattr__ = mmlatent.lazy_exports(__name__, {
    "TextAutoencoder": "mmlatent_text.autoencoder",
    "TextClassifier": "mmlatent_text.classifier",
    "TextModality": "mmlatent_text.modality",
    "TextOptions": "mmlatent_text.options",
    "Vocabulary": "mmlatent_text.vocabulary",
})
