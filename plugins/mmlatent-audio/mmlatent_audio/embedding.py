"""A speech embedding network from a local weights file, for a Frechet audio distance (FAD).

:class:`SpeechEmbedding` is a torchaudio wav2vec 2.0 / HuBERT encoder (``torchaudio.models.wav2vec2_model``)
whose weights come from a local ``.safetensors`` file (never downloaded): waveforms ``(N, samples)``
at the modality's rate are resampled to 16 kHz, encoded, and the last transformer layer's outputs
are averaged over time: features ``(N, encoder_embed_dim)`` (768 for the base models). The
architecture is the file's metadata ``config`` (a JSON object of ``wav2vec2_model`` arguments) or,
when absent, torchaudio's base configuration (``wav2vec2_base``: HUBERT_BASE and WAV2VEC2_BASE).
Write such a file on a machine with a network::

    python -c "import json, torchaudio, safetensors.torch as st; b = torchaudio.pipelines.HUBERT_BASE; \
st.save_file(b.get_model().state_dict(), 'hubert_base.safetensors', {'config': json.dumps(b._params)})"

and name it in a recipe: ``evaluation.embeddings: {audio: hubert_base.safetensors}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn
from torchaudio import functional, models

__all__ = ["EMBEDDING_RATE", "SpeechEmbedding"]

#: Sample rate (Hz) the wav2vec 2.0 / HuBERT encoders were trained at.
EMBEDDING_RATE = 16000


class SpeechEmbedding(nn.Module):
    """wav2vec 2.0 / HuBERT features of waveforms; see the module docstring.

    Args:
        encoder: a ``torchaudio.models.Wav2Vec2Model`` with loaded weights.
        sample_rate: the rate of the waveforms given to :meth:`features`.
    """

    def __init__(self, encoder: nn.Module, sample_rate: int) -> None:
        super().__init__()
        self.encoder = encoder.eval()
        self.sample_rate = int(sample_rate)

    @classmethod
    def from_file(cls, path: str | Path, sample_rate: int) -> SpeechEmbedding:
        """The encoder of the safetensors file ``path`` (architecture from its ``config`` metadata)."""
        path = Path(path)
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        config: dict[str, Any] = json.loads(metadata["config"]) if "config" in metadata else {}
        encoder = models.wav2vec2_model(**{**config, "aux_num_out": None}) if config else models.wav2vec2_base()
        state = load_file(str(path))
        missing, unexpected = encoder.load_state_dict(state, strict=False)
        unexpected = [key for key in unexpected if not key.startswith("aux.")]  # an ASR head is not used
        if missing or unexpected:
            raise ValueError(f"{path} does not hold the weights of this wav2vec2/HuBERT architecture (missing "
                             f"{missing[:3]}, unexpected {unexpected[:3]}); save the config as the file's "
                             "'config' metadata (mmlatent_audio.embedding)")
        return cls(encoder, sample_rate)

    @torch.no_grad()
    def features(self, waveforms: Tensor) -> Tensor:
        """Waveforms ``(N, samples)`` in [-1, 1] -> features ``(N, encoder_embed_dim)``."""
        x = waveforms.float()
        if self.sample_rate != EMBEDDING_RATE:
            x = functional.resample(x, self.sample_rate, EMBEDDING_RATE)
        layers, _ = self.encoder.extract_features(x)
        return layers[-1].mean(dim=1)
