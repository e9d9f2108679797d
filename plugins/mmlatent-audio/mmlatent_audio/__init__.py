"""mmlatent-audio: the ``audio`` modality kind and spoken-digit datasets for mmlatent.

Registered through the ``mmlatent`` entry point ``audio = "mmlatent_audio.plugin"``.
"""

import mmlatent

__version__ = "0.1.0"

__all__ = ["AudioModality", "AudioOptions", "__version__"]


# the public classes, imported on first access (they need torch; registering the plugin does not)
__getattr__ = mmlatent.lazy_exports(__name__, {
    "AudioModality": "mmlatent_audio.modality",
    "AudioOptions": "mmlatent_audio.options",
})
