"""The options of the audio plugin's kind and datasets (pydantic only: registering the plugin, ``mmlatent
plugins`` and ``mmlatent validate`` import no torch).

``AudioOptions``: modality kind ``audio`` (:mod:`mmlatent_audio.modality`); ``SpokenDigitsOptions`` and
``FSDDOptions``: the datasets (:mod:`mmlatent_audio.datasets`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ENGLISH_LANGUAGES", "FSDD_SPLITS", "FSDD_URL", "HUMAN_VARIANTS", "SPOKEN_DIGITS_SPLITS", "AudioOptions",
           "FSDDOptions", "SpeakerCounts", "SpokenDigitsOptions", "fsdd_fields", "fsdd_splits", "spoken_digits_fields",
           "spoken_digits_splits"]


class AudioOptions(BaseModel):
    """Options of an ``audio`` modality (``modalities.<name>.options`` in a recipe)."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: int = Field(8000, ge=1000, le=96000, description="Samples per second of the data space (Hz).")
    duration: float = Field(1.0, gt=0.0, le=30.0, description="Seconds per item: longer audio is trimmed, shorter "
                            "padded with silence at the end.")
    n_fft: int = Field(256, ge=16, le=8192, description="FFT size of the spectrogram (samples).")
    hop_length: int = Field(80, ge=1, le=4096, description="Hop between spectrogram frames (samples).")
    n_mels: int = Field(40, ge=4, le=256, description="Mel bands of the log-mel features.")
    floor_db: float = Field(-80.0, ge=-160.0, le=-10.0, description="Power floor of the log-mel features (dB, "
                            "reference 1): quieter is silence.")
    channels: list[int] = Field([32, 64, 128], min_length=1, max_length=6,
                                description="Channels of the autoencoder's stride-2 stages.")
    loss: str = Field("mse", pattern="^(mse|l1)$", description="Reconstruction loss on the log-mel: mse or l1.")
    griffin_lim_iters: int = Field(32, ge=1, le=1000, description="Griffin-Lim iterations from log-mel back to "
                                   "a waveform.")
    augment: bool = Field(False, description="Random gain (0.5-1), time shift (up to 10% of the duration) and "
                          "noise on the autoencoder's training batches.")

    @model_validator(mode="after")
    def _fits(self) -> AudioOptions:
        samples = self.samples
        if self.n_fft > samples:
            raise ValueError(f"n_fft {self.n_fft} is longer than an item ({samples} samples = "
                             f"{self.sample_rate} Hz x {self.duration} s)")
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length {self.hop_length} is longer than n_fft {self.n_fft} (frames would skip "
                             "samples)")
        if self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(f"n_mels {self.n_mels} exceeds the {self.n_fft // 2 + 1} frequency bins of n_fft "
                             f"{self.n_fft}")
        if any(width < 1 for width in self.channels):
            raise ValueError("every channel count must be >= 1")
        return self

    @property
    def samples(self) -> int:
        """Samples per item."""
        return max(1, round(self.sample_rate * self.duration))


FSDD_SPLITS = ("train", "val", "test")


FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset"


class FSDDOptions(BaseModel):
    """Options of the ``fsdd`` dataset."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field(
        "data/free-spoken-digit-dataset", description=f"Folder holding the 'recordings' folder of {FSDD_URL}."
    )
    sample_rate: int = Field(8000, ge=4000, le=48000, description="Sample rate (Hz) of the items (resampled).")
    duration: float = Field(1.0, gt=0.0, le=10.0, description="Clip length (seconds): recordings are padded or cut.")
    align: Literal["center", "start"] = Field(
        "center", description="Where a recording sits in the clip (and which part is kept when it is too long)."
    )
    test_indices: list[int] = Field([0, 1, 2, 3, 4], min_length=1, description="Recording indices of the test split.")
    val_indices: list[int] = Field(
        [], description="Recording indices of the val split, taken out of train (none: no val split)."
    )
    speakers: list[str] | None = Field(None, description="Only these speakers (none: every speaker found).")

    @field_validator("test_indices", "val_indices")
    @classmethod
    def _indices(cls, indices: list[int]) -> list[int]:
        if any(i < 0 for i in indices):
            raise ValueError("recording indices are >= 0")
        if len(set(indices)) != len(indices):
            raise ValueError("recording indices must not repeat")
        return indices

    @model_validator(mode="after")
    def _disjoint(self) -> FSDDOptions:
        shared = sorted(set(self.test_indices) & set(self.val_indices))
        if shared:
            raise ValueError(f"val_indices and test_indices share {shared}")
        return self


def fsdd_fields(options: FSDDOptions) -> list[str]:
    """The modality fields of the items: ``["audio"]``."""
    return ["audio"]


def fsdd_splits(options: FSDDOptions) -> tuple[str, ...]:
    """The splits these options give: ``val`` only with ``val_indices``."""
    return FSDD_SPLITS if options.val_indices else ("train", "test")


SPOKEN_DIGITS_SPLITS = ("train", "val", "test")


#: espeak-ng's English accents (espeak-ng-data/lang/gmw/en*; en-shaw, the Shavian script, left out).
ENGLISH_LANGUAGES = (
    "en", "en-us", "en-us-nyc", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
)  # fmt: skip


#: Voice variants (espeak-ng-data/voices/!v) that sound like people: the numbered male and female
#: ones and named ones; robotic, whispering, echoing and croaking variants are left out.
HUMAN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "Andy", "Denis", "Gene", "Mario", "Michael", "michel", "paul", "quincy", "robert", "victor", "max", "grandpa",
    "Andrea", "Annie", "anika", "aunty", "belinda", "linda", "steph", "grandma",
)  # fmt: skip


class SpeakerCounts(BaseModel):
    """Speakers (voice settings) per split."""

    model_config = ConfigDict(extra="forbid")

    train: int = Field(120, ge=1, le=5000, description="Speakers of the train split.")
    val: int = Field(20, ge=0, le=5000, description="Speakers of the val split (0: no val split).")
    test: int = Field(40, ge=1, le=5000, description="Speakers of the test split.")



class SpokenDigitsOptions(BaseModel):
    """Options of the ``spoken_digits`` dataset."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field("data/spoken_digits", description="Cache folder of the synthesised set (created if missing).")
    sample_rate: int = Field(8000, ge=4000, le=48000, description="Sample rate (Hz) of the waveforms.")
    duration: float = Field(1.0, gt=0.0, le=4.0, description="Clip length (seconds): words are padded with zeros.")
    speakers: SpeakerCounts = Field(default_factory=SpeakerCounts, description="Speakers per split.")
    repeats: int = Field(
        1, ge=1, le=20, description="Utterances per speaker and word, each with its own amplitude, shift and noise."
    )
    languages: list[str] = Field(
        list(ENGLISH_LANGUAGES), min_length=1, description="espeak-ng languages (accents) the speakers use."
    )
    variants: list[str] = Field(
        list(HUMAN_VARIANTS),
        min_length=1,
        description="espeak-ng voice variants (files of espeak-ng-data/voices/!v; '' = the language's own voice).",
    )
    rate: tuple[int, int] = Field((130, 220), description="Range of the speakers' speeds (words per minute, 80..450).")
    pitch: tuple[int, int] = Field((30, 70), description="Range of the speakers' base pitch (0..100, 50: the voice's).")
    pitch_range: tuple[int, int] = Field((20, 80), description="Range of the speakers' intonation range (0..100).")
    amplitude: tuple[float, float] = Field((0.3, 0.9), description="Range of the utterances' peak amplitude (0..1].")
    noise: float = Field(0.005, ge=0.0, le=0.2, description="Std of the Gaussian noise added to each clip.")
    max_shift: float = Field(0.1, ge=0.0, le=1.0, description="Largest shift (seconds) of a word from the centre.")
    seed: int = Field(0, description="Seed of the speakers, their split and the augmentation.")

    @field_validator("languages", "variants")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("names must not repeat")
        return names

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 80 <= value[0] <= value[1] <= 450:
            raise ValueError(f"rate must be a (low, high) range within 80..450 words per minute, got {value}")
        return value

    @field_validator("pitch", "pitch_range")
    @classmethod
    def _percent(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] <= value[1] <= 100:
            raise ValueError(f"must be a (low, high) range within 0..100, got {value}")
        return value

    @field_validator("amplitude")
    @classmethod
    def _amplitude(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < value[0] <= value[1] <= 1.0:
            raise ValueError(f"amplitude must be a (low, high) range within (0, 1], got {value}")
        return value

    @model_validator(mode="after")
    def _enough_timbres(self) -> SpokenDigitsOptions:
        splits = sum(1 for count in (self.speakers.train, self.speakers.val, self.speakers.test) if count > 0)
        timbres = len(self.languages) * len(self.variants)
        if timbres < splits:
            raise ValueError(
                f"{len(self.languages)} language(s) x {len(self.variants)} variant(s) give {timbres} timbre(s), "
                f"fewer than the {splits} splits that need disjoint ones"
            )
        return self


def spoken_digits_fields(options: SpokenDigitsOptions) -> list[str]:
    """The modality fields of the items: ``["audio"]``."""
    return ["audio"]


def spoken_digits_splits(options: SpokenDigitsOptions) -> tuple[str, ...]:
    """The splits these options give: ``val`` only when ``speakers.val`` > 0."""
    return tuple(split for split in SPOKEN_DIGITS_SPLITS if getattr(options.speakers, split) > 0)
