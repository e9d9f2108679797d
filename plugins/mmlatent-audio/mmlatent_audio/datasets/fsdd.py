"""``fsdd``: the Free Spoken Digit Dataset (https://github.com/Jakobovski/free-spoken-digit-dataset).

Layout (the repository's ``recordings`` folder under ``root``)::

    root/recordings/{digit}_{speaker}_{index}.wav      e.g. 7_jackson_32.wav

8 kHz mono 16-bit WAV files, 50 per digit and speaker (index 0..49; speakers jackson, nicolas,
theo, yweweler, george, lucas in the current release). The usual split is by index: ``test`` =
indices 0-4 (``test_indices``), ``train`` = the rest; ``val`` (only with ``val_indices``) takes its
indices out of train.

Items: ``{"audio": float32 (samples,) in [-1, 1] at sample_rate Hz, samples = round(duration *
sample_rate), "label": int}``. Files are read lazily with ``soundfile`` (stereo is averaged to mono),
resampled with ``torchaudio`` when their rate differs from ``sample_rate``, and padded with zeros or
cut to ``duration`` (the recording centred, or at the start, see ``align``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from mmlatent_audio.options import (
    FSDDOptions,
    FSDD_SPLITS,
    FSDD_URL,
    fsdd_fields,
    fsdd_splits,
)

__all__ = [
    "FSDD",
    "FSDD_SPLITS",
    "FSDD_URL",
    "FSDDOptions",
    "build_fsdd",
    "fit_length",
    "fsdd_fields",
    "fsdd_splits",
    "list_recordings",
]

_NAME = re.compile(r"^(\d)_([A-Za-z0-9\-]+)_(\d+)\.wav$", re.IGNORECASE)



def fit_length(wave: np.ndarray, samples: int, align: str = "center") -> np.ndarray:
    """A waveform ``(n,)`` -> float32 ``(samples,)``: zero padded or cut, centred or from the start."""
    out = np.zeros(samples, np.float32)
    n = len(wave)
    if align == "start":
        out[: min(n, samples)] = wave[:samples]
    elif n <= samples:
        start = (samples - n) // 2
        out[start : start + n] = wave
    else:
        start = (n - samples) // 2
        out[:] = wave[start : start + samples]
    return out


def list_recordings(root: Path) -> list[tuple[Path, int, str, int]]:
    """``(path, digit, speaker, index)`` of every ``recordings/{digit}_{speaker}_{index}.wav`` under ``root``,
    sorted by speaker, digit and index; FileNotFoundError naming the folder when there are none."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset 'fsdd': the root folder {str(root)!r} does not exist. Get the Free Spoken Digit Dataset "
            f"from {FSDD_URL} (git clone it, or download its archive) and put its 'recordings/' folder under "
            f"{str(root)!r}, or set the option root to the folder holding 'recordings/'"
        )
    folder = root / "recordings"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"dataset 'fsdd': there is no 'recordings' folder in {str(root)!r} (looked for {str(folder)!r}). "
            f"Put the 'recordings/' folder of the Free Spoken Digit Dataset ({FSDD_URL}) there"
        )
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append((path, int(match.group(1)), match.group(2), int(match.group(3))))
    if not found:
        raise FileNotFoundError(
            f"dataset 'fsdd': no '{{digit}}_{{speaker}}_{{index}}.wav' files in {str(folder)!r}. "
            f"Put the 'recordings/' folder of the Free Spoken Digit Dataset ({FSDD_URL}) there"
        )
    found.sort(key=lambda row: (row[2], row[1], row[3]))
    return found


class FSDD(Dataset):
    """Recordings read lazily: item ``i`` = ``{"audio": float32 (samples,), "label": int}``.

    ``paths`` (one per item), ``labels`` (int64 ``(N,)``), ``speakers`` (speaker name per item).
    """

    def __init__(self, paths: list[Path], labels: np.ndarray, speakers: list[str], sample_rate: int = 8000,
                 duration: float = 1.0, align: str = "center") -> None:
        if not len(paths) == len(labels) == len(speakers):
            raise ValueError(f"{len(paths)} paths, {len(labels)} labels and {len(speakers)} speakers")
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.speakers = list(speakers)
        self.sample_rate = int(sample_rate)
        self.samples = round(duration * sample_rate)
        self.align = align
        self._resamplers: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, i: int) -> np.ndarray:
        """Recording ``i`` as it is: float32 ``(n,)`` mono at :attr:`sample_rate` Hz, before padding/cutting."""
        import soundfile

        path = self.paths[i]
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (frames, channels)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            raise ValueError(f"dataset 'fsdd': cannot read {str(path)!r} as audio: {error}") from None
        wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        if rate != self.sample_rate and len(wave):
            if rate not in self._resamplers:
                import torchaudio

                self._resamplers[rate] = torchaudio.transforms.Resample(int(rate), self.sample_rate)
            with torch.no_grad():
                wave = self._resamplers[rate](torch.from_numpy(np.ascontiguousarray(wave))).numpy()
        return np.asarray(wave, dtype=np.float32)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} items")
        return {"audio": fit_length(self.read(i), self.samples, self.align), "label": int(self.labels[i])}


def build_fsdd(options: FSDDOptions, split: str) -> FSDD:
    """The ``split`` of the recordings under ``options.root`` (see the module docstring)."""
    available = fsdd_splits(options)
    if split not in available:
        raise ValueError(f"dataset 'fsdd' has splits {', '.join(available)}, not {split!r}")
    root = Path(options.root).expanduser()
    recordings = list_recordings(root)
    if options.speakers is not None:
        wanted = set(options.speakers)
        recordings = [row for row in recordings if row[2] in wanted]
        if not recordings:
            found = sorted({row[2] for row in list_recordings(root)})
            raise ValueError(
                f"dataset 'fsdd': none of the speakers {options.speakers} in {str(root)!r} (found {found})"
            )
    test, val = set(options.test_indices), set(options.val_indices)
    if split == "test":
        chosen = [row for row in recordings if row[3] in test]
    elif split == "val":
        chosen = [row for row in recordings if row[3] in val]
    else:
        chosen = [row for row in recordings if row[3] not in test and row[3] not in val]
    if not chosen:
        raise ValueError(
            f"dataset 'fsdd': split {split!r} is empty: no recordings in {str(root / 'recordings')!r} with "
            f"{'indices ' + str(sorted(test if split == 'test' else val)) if split != 'train' else 'other indices'}"
        )
    return FSDD(
        [row[0] for row in chosen],
        np.array([row[1] for row in chosen], dtype=np.int64),
        [row[2] for row in chosen],
        options.sample_rate,
        options.duration,
        options.align,
    )
