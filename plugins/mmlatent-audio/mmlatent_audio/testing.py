"""Small audio folders in real formats, for tests on machines without the real data.

::

    from mmlatent_audio.testing import write_fsdd, write_speech_embedding
    write_fsdd(tmp_path)            # tmp_path/recordings/{digit}_{speaker}_{index}.wav; options {"root": str(tmp_path)}
    write_speech_embedding(tmp_path / "tiny.safetensors")   # evaluation.embeddings: {audio: ...}

The recordings are tones whose pitch encodes the digit (``digit_tone``), so a classifier can learn them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["TINY_SPEECH_EMBEDDING", "digit_tone", "write_fsdd", "write_speech_embedding"]


def digit_tone(digit: int, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 ``(round(seconds * sample_rate),)`` tone in [-1, 1]: fundamental ``200 + 60 * digit`` Hz and
    its second harmonic under a Hann envelope, peak ~0.5, plus a little noise."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    frequency = 200.0 + 60.0 * digit
    tone = np.sin(2 * np.pi * frequency * t) + 0.4 * np.sin(2 * np.pi * 2 * frequency * t + rng.uniform(0, np.pi))
    wave = 0.35 * tone * np.hanning(n) + rng.normal(0.0, 0.005, size=n)
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def write_fsdd(
    root: str | Path,
    speakers: Iterable[str] = ("jackson", "theo"),
    indices: Iterable[int] = range(8),
    digits: Iterable[int] = range(10),
    sample_rate: int = 8000,
    channels: int = 1,
    seconds: tuple[float, float] = (0.3, 0.6),
    seed: int = 0,
) -> list[Path]:
    """Write ``root/recordings/{digit}_{speaker}_{index}.wav`` (16-bit PCM) for every combination; return the paths.

    Each file is a :func:`digit_tone` of a random length in ``seconds``, at ``sample_rate`` Hz, with
    ``channels`` channels (the others a scaled copy of the first, so their mean is the tone times 0.75
    for 2 channels).
    """
    import soundfile

    folder = Path(root) / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for speaker in speakers:
        for digit in digits:
            for index in indices:
                wave = digit_tone(int(digit), float(rng.uniform(*seconds)), sample_rate, rng)
                data = wave if channels == 1 else np.stack([wave] + [0.5 * wave] * (channels - 1), axis=1)
                path = folder / f"{digit}_{speaker}_{index}.wav"
                soundfile.write(str(path), data, sample_rate, subtype="PCM_16", format="WAV")
                paths.append(path)
    return paths


#: A tiny wav2vec 2.0 architecture (``torchaudio.models.wav2vec2_model`` arguments): 16-d features.
TINY_SPEECH_EMBEDDING = {
    "extractor_mode": "group_norm", "extractor_conv_layer_config": [[8, 10, 5], [8, 3, 2]],
    "extractor_conv_bias": False, "encoder_embed_dim": 16, "encoder_projection_dropout": 0.0,
    "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 2, "encoder_num_layers": 1, "encoder_num_heads": 2,
    "encoder_attention_dropout": 0.0, "encoder_ff_interm_features": 32, "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.0, "encoder_layer_norm_first": False, "encoder_layer_drop": 0.0, "aux_num_out": None,
}


def write_speech_embedding(path: Path, config: dict | None = None, seed: int = 0):
    """A randomly initialised wav2vec 2.0 encoder saved as the embedding network's weights file
    (safetensors, its architecture in the ``config`` metadata); returns the encoder."""
    import json

    import torch
    from safetensors.torch import save_file
    from torchaudio import models

    config = dict(config or TINY_SPEECH_EMBEDDING)
    torch.manual_seed(seed)
    encoder = models.wav2vec2_model(**config)
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(path), {"config": json.dumps(config)})
    return encoder
