"""Audio files and pictures of spectrograms.

File I/O uses ``soundfile`` (libsndfile, bundled in its wheels: it installs with pip alone and reads
and writes WAV, FLAC and OGG). torchaudio 2.9+ moved its own ``load``/``save`` to torchcodec, which
needs FFmpeg libraries on the machine; the standard ``wave`` module reads PCM WAV only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["AUDIO_SUFFIXES", "read_audio", "spectrogram_grid", "write_wav"]

#: Suffixes :func:`read_audio` reads.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
#: Anchor colours of the spectrogram colour map (dark -> bright, "magma"-like).
_COLOURS = np.array([[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]], dtype=np.float64)


def read_audio(path: Path) -> tuple[Tensor, int]:
    """An audio file -> ``(waveform (channels, samples) float32 in [-1, 1], sample rate)``.

    Raises ``ValueError`` naming the file when it is empty, truncated or not audio.
    """
    import soundfile

    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError(f"cannot read {path.name!r}: the file is empty")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"cannot read {path.name!r} as audio: {error}") from None
    if data.shape[0] == 0:
        raise ValueError(f"cannot read {path.name!r}: it holds no samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


def write_wav(waveform: Tensor, sample_rate: int, path: Path) -> Path:
    """Write one waveform ``(samples,)`` in [-1, 1] as 16-bit PCM WAV, atomically; returns ``path``."""
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = waveform.detach().float().clamp(-1.0, 1.0).cpu().numpy()
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".wav")
    os.close(handle)
    try:
        soundfile.write(temporary, data, int(sample_rate), subtype="PCM_16", format="WAV")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def _colour(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] ``(H, W)`` -> RGB uint8 ``(H, W, 3)`` through the anchor colours."""
    position = np.clip(values, 0.0, 1.0) * (len(_COLOURS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_COLOURS) - 2)
    weight = (position - low)[..., None]
    return np.round(_COLOURS[low] * (1 - weight) + _COLOURS[low + 1] * weight).astype(np.uint8)


def spectrogram_grid(spectrograms: Tensor, path: Path, columns: int = 8, scale: int = 2, gap: int = 2) -> Path:
    """Write scaled log-mel spectrograms ``(N, n_mels, frames)`` (0 = silence, ~1 = loud) as one PNG
    grid, low frequencies at the bottom of each tile; returns the path."""
    values = spectrograms.detach().float().cpu().numpy()
    count, height, width = values.shape
    columns = max(1, min(columns, count))
    rows = max(1, -(-count // columns))
    tile_h, tile_w = height * scale, width * scale
    canvas = np.full((rows * (tile_h + gap) + gap, columns * (tile_w + gap) + gap, 3), 255, dtype=np.uint8)
    for index in range(count):
        row, column = divmod(index, columns)
        tile = _colour(values[index][::-1] / 1.2).repeat(scale, axis=0).repeat(scale, axis=1)
        top, left = gap + row * (tile_h + gap), gap + column * (tile_w + gap)
        canvas[top:top + tile_h, left:left + tile_w] = tile
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return path
