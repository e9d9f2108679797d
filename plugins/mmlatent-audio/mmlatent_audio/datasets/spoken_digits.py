"""``spoken_digits``: the ten digit words ("zero" .. "nine") spoken by espeak-ng, built offline.

A *speaker* is one espeak-ng voice setting: an English accent (``languages``, e.g. ``en-us``) with
a voice variant (``variants``, e.g. ``m3``, ``f2``, ``belinda``), a speed (``rate``, words per
minute), a base pitch (``pitch``) and an intonation range (``pitch_range``). Each speaker says the
ten words once; each saying gives ``repeats`` utterances, each with its own peak amplitude
(``amplitude``), position in the clip (centred, shifted by up to ``max_shift`` seconds) and
Gaussian noise (std ``noise``). So a split holds ``speakers * repeats * 10`` utterances, ten per
label per speaker and repeat (balanced).

Splits are disjoint in speakers and, more strictly, in timbres: the (accent, variant) pairs are
shuffled and dealt to ``train``/``val``/``test`` in proportion to their speaker counts, and a split's
speakers only use its own pairs. ``val`` is absent when ``speakers.val`` is 0.

Items: ``{"audio": float32 (samples,) in [-1, 1] at sample_rate Hz, samples = round(duration *
sample_rate), "label": int}``. Everything is a function of the options (``seed`` included): the set
is synthesised once (the defaults: 1,800 utterances in ~15 s on two busy cores), resampled from
espeak's 22050 Hz with ``torchaudio`` (``transforms.Resample``) and cached under ``root`` as
``spoken_digits-<hash of the options but root>.npz`` (int16 waveforms, labels and speaker ids of
every split, ~29 MB), written atomically and reused by later builds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import uuid
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mmlatent_audio.datasets import espeak
from mmlatent_audio.options import SPOKEN_DIGITS_SPLITS as SPLITS
from mmlatent_audio.options import (
    ENGLISH_LANGUAGES,
    HUMAN_VARIANTS,
    SpeakerCounts,
    SpokenDigitsOptions,
    spoken_digits_fields,
    spoken_digits_splits,
)

__all__ = [
    "DIGIT_WORDS",
    "ENGLISH_LANGUAGES",
    "HUMAN_VARIANTS",
    "SPLITS",
    "Speaker",
    "SpeakerCounts",
    "SpokenDigitsOptions",
    "WaveformDataset",
    "build_spoken_digits",
    "cache_path",
    "choose_speakers",
    "load_spoken_digits",
    "options_hash",
    "spoken_digits_fields",
    "spoken_digits_splits",
    "synthesise_spoken_digits",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_FORMAT = 1  # version of the cache file's layout (part of its hash)
_TRIM_LEVEL = 0.01  # leading/trailing samples below this fraction of the peak are silence
_TRIM_MARGIN_S = 0.005  # silence kept around a trimmed word (seconds)
_INT16_SCALE = 32767.0



@dataclass(frozen=True)
class Speaker:
    """One espeak-ng voice setting: ``voice`` (``language+variant``), speed (words per minute), pitch, range."""

    split: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int


def _voice(language: str, variant: str) -> str:
    return f"{language}+{variant}" if variant else language


def choose_speakers(options: SpokenDigitsOptions) -> list[Speaker]:
    """All speakers of all splits (train first, then val, then test), a function of the options.

    The (language, variant) timbres are shuffled and dealt to the splits in proportion to their
    speaker counts (at least one each); a split's speakers cycle through its timbres, each with its
    own rate, pitch and range drawn uniformly from the option ranges (no two speakers alike).
    """
    counts = {split: getattr(options.speakers, split) for split in SPLITS}
    timbres = [(language, variant) for language in options.languages for variant in options.variants]
    order = np.random.default_rng([options.seed, 0]).permutation(len(timbres))
    shares = _deal(len(timbres), counts)
    speakers: list[Speaker] = []
    start = 0
    for code, split in enumerate(SPLITS):
        own = [timbres[i] for i in order[start : start + shares[split]]]
        start += shares[split]
        rng = np.random.default_rng([options.seed, 1, code])
        seen: set[tuple[str, int, int, int]] = set()
        for i in range(counts[split]):
            voice = _voice(*own[i % len(own)])
            while True:
                rate = int(rng.integers(options.rate[0], options.rate[1] + 1))
                pitch = int(rng.integers(options.pitch[0], options.pitch[1] + 1))
                pitch_range = int(rng.integers(options.pitch_range[0], options.pitch_range[1] + 1))
                key = (voice, rate, pitch, pitch_range)
                if key not in seen or len(seen) >= _settings_per_voice(options) * len(own):
                    break
            seen.add(key)
            speakers.append(Speaker(split, voice, rate, pitch, pitch_range))
    return speakers


def _settings_per_voice(options: SpokenDigitsOptions) -> int:
    (r0, r1), (p0, p1), (g0, g1) = options.rate, options.pitch, options.pitch_range
    return (r1 - r0 + 1) * (p1 - p0 + 1) * (g1 - g0 + 1)


def _deal(total: int, counts: dict[str, int]) -> dict[str, int]:
    """Split ``total`` timbres between the splits in proportion to ``counts`` (>= 1 per non-empty split)."""
    wanted = sum(counts.values())
    shares = {split: (max(1, int(total * count // wanted)) if count else 0) for split, count in counts.items()}
    by_size = sorted((s for s in counts if counts[s]), key=lambda s: -counts[s])
    i = 0
    while sum(shares.values()) < total:  # leftovers to the biggest splits first
        shares[by_size[i % len(by_size)]] += 1
        i += 1
    while sum(shares.values()) > total:  # only when many splits got their minimum of one
        biggest = max(by_size, key=lambda s: shares[s])
        shares[biggest] -= 1
    return shares


def options_hash(options: SpokenDigitsOptions) -> str:
    """12 hex digits identifying the synthesised set: every option but ``root``, and the file layout."""
    content = options.model_dump(mode="json", exclude={"root"})
    text = json.dumps({"format": _FORMAT, "options": content}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_path(options: SpokenDigitsOptions) -> Path:
    """Where the synthesised set of these options is cached: ``root/spoken_digits-<hash>.npz``."""
    return Path(options.root).expanduser() / f"spoken_digits-{options_hash(options)}.npz"


def _trim(wave: np.ndarray, rate: int) -> np.ndarray:
    """Cut the leading and trailing silence of a word (keeping a few ms)."""
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak == 0.0:
        return wave
    loud = np.flatnonzero(np.abs(wave) > _TRIM_LEVEL * peak)
    margin = round(_TRIM_MARGIN_S * rate)
    return wave[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def _check_voices(options: SpokenDigitsOptions) -> None:
    """espeak-ng ignores unknown variants silently: name them here instead."""
    variants = set(espeak.list_variants())
    languages = set(espeak.list_languages(""))
    unknown = [v for v in options.variants if v and v not in variants]
    unknown += [lang for lang in options.languages if lang.lower() not in languages]
    if unknown:
        raise ValueError(
            f"dataset 'spoken_digits': espeak-ng has no language or variant {unknown}; variants are "
            f"{', '.join(sorted(variants))}"
        )


def _synthesise_speaker(session: espeak.EspeakSession, speaker: Speaker) -> list[np.ndarray]:
    """The ten words of one speaker, silence trimmed: float32 ``(samples,)`` at espeak's 22050 Hz."""
    return [
        _trim(session.synthesise(word, speaker.voice, speaker.rate, speaker.pitch, speaker.pitch_range),
              session.sample_rate)
        for word in DIGIT_WORDS
    ]  # fmt: skip


def _resampler(source_rate: int, target_rate: int):
    """``words -> words`` at ``target_rate``: one ``torchaudio`` resampler (kernel computed once) for a whole build."""
    if source_rate == target_rate:
        return lambda words: words
    import torchaudio

    resample = torchaudio.transforms.Resample(source_rate, target_rate)

    def apply(words: list[np.ndarray]) -> list[np.ndarray]:
        """Words of different lengths resampled in one zero-padded batch, each cut to its new length."""
        batch = np.zeros((len(words), max(len(w) for w in words)), np.float32)
        for i, word in enumerate(words):
            batch[i, : len(word)] = word
        with torch.no_grad():
            resampled = resample(torch.from_numpy(batch)).numpy()
        return [resampled[i, : int(np.ceil(len(w) * target_rate / source_rate))] for i, w in enumerate(words)]

    return apply


def _place(word: np.ndarray, samples: int, shift: int) -> np.ndarray:
    """The word in a zero clip of ``samples``: centred, moved by ``shift`` (kept inside when it fits)."""
    clip = np.zeros(samples, np.float32)
    free = samples - len(word)
    offset = free // 2 + shift
    offset = min(max(offset, min(0, free)), max(0, free))
    start, stop = max(0, offset), min(samples, offset + len(word))
    clip[start:stop] = word[start - offset : stop - offset]
    return clip


def synthesise_spoken_digits(options: SpokenDigitsOptions, progress: bool = True) -> dict[str, np.ndarray]:
    """Synthesise every split: ``{"<split>_audio": int16 (n, samples), "<split>_labels": int64 (n,),
    "<split>_speakers": int64 (n,) (indices into the speaker table), "speakers_json", "meta_json"}``.

    Items of a split are ordered by speaker, then repeat, then word.
    """
    from mmlatent.progress import progress_bar

    _check_voices(options)
    speakers = choose_speakers(options)
    samples = round(options.duration * options.sample_rate)
    max_shift = round(options.max_shift * options.sample_rate)
    resample = _resampler(espeak.sample_rate(), options.sample_rate)
    out: dict[str, np.ndarray] = {}
    bar = progress_bar(total=len(speakers), desc="spoken_digits: synthesising", unit="speaker", leave=False,
                       file=sys.stderr, disable=None if progress else True)  # None: only on a terminal
    for code, split in enumerate(SPLITS):
        members = [i for i, s in enumerate(speakers) if s.split == split]
        rng = np.random.default_rng([options.seed, 2, code])
        clips = np.zeros((len(members) * options.repeats * len(DIGIT_WORDS), samples), np.int16)
        labels = np.tile(np.arange(len(DIGIT_WORDS), dtype=np.int64), len(members) * options.repeats)
        speaker_ids = np.repeat(np.asarray(members, dtype=np.int64), options.repeats * len(DIGIT_WORDS))
        row = 0
        for index in members:
            with espeak.EspeakSession() as session:  # fresh espeak state: a speaker's words depend on it alone
                words = _synthesise_speaker(session, speakers[index])
            words = resample(words)
            for _ in range(options.repeats):
                amplitudes = rng.uniform(options.amplitude[0], options.amplitude[1], size=len(words))
                shifts = rng.integers(-max_shift, max_shift + 1, size=len(words))
                for word, amplitude, shift in zip(words, amplitudes, shifts):
                    peak = float(np.abs(word).max()) or 1.0
                    clip = _place(word * np.float32(amplitude / peak), samples, int(shift))
                    if options.noise > 0:
                        clip += rng.normal(0.0, options.noise, size=samples).astype(np.float32)
                    clips[row] = np.round(np.clip(clip, -1.0, 1.0) * _INT16_SCALE).astype(np.int16)
                    row += 1
            bar.update(1)
        out[f"{split}_audio"], out[f"{split}_labels"], out[f"{split}_speakers"] = clips, labels, speaker_ids
    bar.close()
    out["speakers_json"] = np.array(json.dumps([asdict(s) for s in speakers]))
    settings = options.model_dump(mode="json", exclude={"root"})
    meta = {"format": _FORMAT, "espeak": espeak.espeak_version(), "options": settings}
    out["meta_json"] = np.array(json.dumps(meta))
    return out


def _write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary file next to ``path`` (the usual permissions), then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@functools.lru_cache(maxsize=2)
def _read_cache(path: str, modified_ns: int, size: int) -> dict[str, np.ndarray]:
    """The arrays of a cache file (keyed by its path, time and size), read-only."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def load_spoken_digits(options: SpokenDigitsOptions, progress: bool = True) -> dict[str, np.ndarray]:
    """The synthesised set of these options: read from :func:`cache_path`, or built and cached there."""
    path = cache_path(options)
    if path.is_file():
        stat = path.stat()
        try:
            arrays = _read_cache(str(path), stat.st_mtime_ns, stat.st_size)
            if all(f"{split}_audio" in arrays for split in SPLITS):
                return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # unreadable (e.g. cut short by a full disk): build it again
    arrays = synthesise_spoken_digits(options, progress=progress)
    _write_atomic(path, arrays)
    return arrays


class WaveformDataset(Dataset):
    """Item ``i`` = ``{"audio": float32 (samples,) in [-1, 1], "label": int}`` from stored int16 clips.

    ``waveforms``: int16 ``(N, samples)`` (full scale 32767) or float32; ``labels``: ``(N,)``;
    ``speakers``: optional speaker id per item. Items are fresh arrays the caller may modify.
    """

    def __init__(self, waveforms: np.ndarray, labels: np.ndarray, speakers: np.ndarray | None = None,
                 sample_rate: int = 8000) -> None:
        if len(waveforms) != len(labels):
            raise ValueError(f"{len(waveforms)} waveforms but {len(labels)} labels")
        self.waveforms = waveforms
        self.labels = np.asarray(labels, dtype=np.int64)
        self.speakers = None if speakers is None else np.asarray(speakers, dtype=np.int64)
        self.sample_rate = int(sample_rate)
        self.speaker_settings: dict[int, Speaker] = {}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} items")
        wave = self.waveforms[i]
        audio = wave.astype(np.float32)
        if wave.dtype == np.int16:
            audio /= np.float32(_INT16_SCALE)
        return {"audio": audio, "label": int(self.labels[i])}


def build_spoken_digits(options: SpokenDigitsOptions, split: str) -> WaveformDataset:
    """The ``split`` of the synthesised set (built and cached on first use; see the module docstring).

    The dataset has ``labels`` (int64 ``(N,)``), ``speakers`` (speaker index per item) and
    ``speaker_settings`` (the split's :class:`Speaker` settings by index).
    """
    available = spoken_digits_splits(options)
    if split not in available:
        raise ValueError(f"dataset 'spoken_digits' has splits {', '.join(available)}, not {split!r}")
    arrays = load_spoken_digits(options)
    dataset = WaveformDataset(
        arrays[f"{split}_audio"], arrays[f"{split}_labels"], arrays[f"{split}_speakers"], options.sample_rate
    )
    table = [Speaker(**row) for row in json.loads(str(arrays["speakers_json"]))]
    dataset.speaker_settings = {int(i): table[int(i)] for i in np.unique(dataset.speakers)}
    return dataset
