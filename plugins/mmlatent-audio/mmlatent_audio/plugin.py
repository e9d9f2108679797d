"""The hook implementations: the ``audio`` kind and the datasets spoken_digits and fsdd."""

from __future__ import annotations

import mmlatent
from mmlatent_audio.options import (
    FSDD_SPLITS,
    SPOKEN_DIGITS_SPLITS,
    AudioOptions,
    FSDDOptions,
    SpokenDigitsOptions,
    fsdd_fields,
    fsdd_splits,
    spoken_digits_fields,
    spoken_digits_splits,
)


@mmlatent.hookimpl
def register_modalities(register):
    register(
        mmlatent.ModalitySpec(
            kind="audio",
            modality="mmlatent_audio.modality:AudioModality",
            options=AudioOptions,
            description="Mono waveforms (B, samples) in [-1, 1]; log-mel convolutional autoencoder, Griffin-Lim back.",
        )
    )


@mmlatent.hookimpl
def register_datasets(register):
    register(
        mmlatent.DatasetSpec(
            name="spoken_digits",
            build="mmlatent_audio.datasets.spoken_digits:build_spoken_digits",
            fields=spoken_digits_fields,
            options=SpokenDigitsOptions,
            splits=SPOKEN_DIGITS_SPLITS,
            splits_for=spoken_digits_splits,
            description="Offline: the ten digit words synthesised with espeak-ng over voices, pitches and speeds "
                        "(speakers disjoint between splits), cached under root.",
        )
    )
    register(
        mmlatent.DatasetSpec(
            name="fsdd",
            build="mmlatent_audio.datasets.fsdd:build_fsdd",
            fields=fsdd_fields,
            options=FSDDOptions,
            splits=FSDD_SPLITS,
            splits_for=fsdd_splits,
            description="Free Spoken Digit Dataset (recordings/{digit}_{speaker}_{index}.wav, 8 kHz): test = "
                        "indices 0-4, train = the rest.",
        )
    )
