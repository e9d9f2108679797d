"""Small audio folders in real formats, for tests on machines without the real data.

::

    from mmlatent_audio.testing import write_fsdd
    write_fsdd(tmp_path)            # tmp_path/recordings/{digit}_{speaker}_{index}.wav; options {"root": str(tmp_path)}

The recordings are tones whose pitch encodes the digit (``digit_tone``), so a classifier can learn them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["digit_tone", "write_fsdd"]


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
