"""mmlatent-audio: the ``audio`` modality kind and spoken-digit datasets for mmlatent.

Registered through the ``mmlatent`` entry point ``audio = "mmlatent_audio.plugin"``.
"""

from mmlatent_audio.modality import AudioModality, AudioOptions

__version__ = "0.1.0"

__all__ = ["AudioModality", "AudioOptions", "__version__"]
