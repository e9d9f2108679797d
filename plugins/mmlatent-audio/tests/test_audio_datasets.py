"""The audio datasets: the espeak-ng binding, spoken_digits (tiny configurations) and fsdd on files in its layout."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile
from pydantic import ValidationError

from mmlatent.testing import DatasetContract
from mmlatent_audio.datasets import espeak
from mmlatent_audio.datasets import spoken_digits as sd
from mmlatent_audio.datasets.fsdd import FSDD_URL, FSDDOptions, build_fsdd, fit_length, fsdd_splits
from mmlatent_audio.datasets.spoken_digits import (
    SPLITS,
    SpokenDigitsOptions,
    build_spoken_digits,
    cache_path,
    spoken_digits_fields,
    spoken_digits_splits,
)
from mmlatent_audio.testing import write_fsdd


def tiny_spoken_digits(root, **changes) -> dict:
    """4 speakers over 4 timbres, 2 repeats: 40 train, 20 val, 20 test utterances of 0.8 s at 8 kHz."""
    options = {
        "root": str(root),
        "speakers": {"train": 2, "val": 1, "test": 1},
        "repeats": 2,
        "languages": ["en", "en-us"],
        "variants": ["m3", "f2"],
        "duration": 0.8,
    }
    return {**options, **changes}


def dominant_frequency(wave: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1.0 / sample_rate)[spectrum.argmax()])


# ------------------------------------------------------------------------------------- espeak
@pytest.mark.parametrize("voice", ["en", "en+f3", "en-us+m5"])
def test_espeak_speaks_a_word_reproducibly(voice):
    wave = espeak.synthesise("seven", voice)
    assert espeak.sample_rate() == 22050
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.3 < len(wave) / espeak.sample_rate() < 0.8  # ~0.45-0.5 s with espeak's short silences
    assert 0.1 < np.abs(wave).max() <= 1.0
    assert np.sqrt(np.mean(wave**2)) > 0.02
    assert np.array_equal(wave, espeak.synthesise("seven", voice)), "each synthesise() starts from a fresh state"


def test_espeak_settings_change_the_speech():
    slow, fast = espeak.synthesise("three", rate=100), espeak.synthesise("three", rate=300)
    assert len(slow) > 1.5 * len(fast)
    with espeak.EspeakSession() as session:
        words = [session.synthesise(word, "en+m3") for word in ("one", "two")]
    assert all(len(w) > 2000 for w in words) and not np.array_equal(words[0][:2000], words[1][:2000])


def test_espeak_rejects_unknown_voices_and_bad_settings():
    with pytest.raises(espeak.EspeakError, match="no voice 'xx-nowhere'"):
        espeak.synthesise("one", "xx-nowhere")
    with pytest.raises(ValueError, match="rate"):
        espeak.synthesise("one", rate=20)
    assert {"m1", "m7", "f1", "f5"} <= set(espeak.list_variants())
    assert {"en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029"} <= set(espeak.list_languages("en"))


def test_espeak_missing_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import espeakng_loader -> ImportError
    with pytest.raises(ImportError, match="pip install espeakng-loader"):
        espeak.synthesise("one")


# ------------------------------------------------------------------------------ spoken_digits
@pytest.fixture(scope="module")
def tiny_built(tmp_path_factory):
    """``(options, {split: dataset})`` of the tiny configuration, built once for the module."""
    options = SpokenDigitsOptions.model_validate(tiny_spoken_digits(tmp_path_factory.mktemp("spoken")))
    return options, {split: build_spoken_digits(options, split) for split in SPLITS}


def test_spoken_digits_items_shapes_and_balance(tiny_built):
    options, datasets = tiny_built
    assert spoken_digits_fields(options) == ["audio"]
    for split, count in (("train", 2), ("val", 1), ("test", 1)):
        dataset = datasets[split]
        assert len(dataset) == count * 2 * 10
        assert dataset.labels.dtype == np.int64
        assert np.bincount(dataset.labels, minlength=10).tolist() == [count * 2] * 10
        for i in (0, 7, len(dataset) - 1):
            item = dataset[i]
            assert set(item) == {"audio", "label"} and item["label"] == dataset.labels[i]
            audio = item["audio"]
            assert audio.dtype == np.float32 and audio.shape == (6400,)  # 0.8 s at 8 kHz
            assert np.abs(audio).max() <= 1.0
            assert 0.25 < np.abs(audio).max() < 0.95  # peak amplitude in (0.3, 0.9) plus noise
            audio[:] = 0  # items are copies
        assert np.abs(dataset[i]["audio"]).max() > 0.25
    # the repeats of one (speaker, word) are different renderings of the same synthesised word
    first, again = datasets["train"][0]["audio"], datasets["train"][10]["audio"]
    assert datasets["train"].labels[0] == datasets["train"].labels[10] == 0
    assert not np.allclose(first, again)


def test_spoken_digits_speakers_are_disjoint_between_splits(tiny_built):
    _, datasets = tiny_built
    settings = {split: set(d.speaker_settings.values()) for split, d in datasets.items()}
    timbres = {split: {s.voice for s in rows} for split, rows in settings.items()}
    ids = {split: set(d.speakers.tolist()) for split, d in datasets.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not ids[a] & ids[b]
        assert not timbres[a] & timbres[b], f"{a} and {b} share voices"
    assert len(settings["train"]) == 2 and all(s.split == "train" for s in settings["train"])
    assert all(130 <= s.rate <= 220 and 30 <= s.pitch <= 70 for rows in settings.values() for s in rows)


def test_spoken_digits_is_deterministic_and_cached(tiny_built, tmp_path, monkeypatch):
    options, datasets = tiny_built
    path = cache_path(options)
    assert path.is_file() and path.name.startswith("spoken_digits-") and path.suffix == ".npz"
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left behind"

    elsewhere = SpokenDigitsOptions.model_validate(tiny_spoken_digits(tmp_path / "other"))
    assert cache_path(elsewhere).name == path.name  # root is not part of the hash
    rebuilt = build_spoken_digits(elsewhere, "test")
    assert np.array_equal(rebuilt.waveforms, datasets["test"].waveforms)
    assert np.array_equal(rebuilt.labels, datasets["test"].labels)

    def no_synthesis(*args, **kwargs):
        raise AssertionError("the cached set must be reused")

    monkeypatch.setattr(sd, "synthesise_spoken_digits", no_synthesis)
    sd._read_cache.cache_clear()  # read the file again, not the in-memory copy
    again = build_spoken_digits(options, "train")
    assert np.array_equal(again.waveforms, datasets["train"].waveforms)
    reseeded = options.model_copy(update={"seed": 1})
    assert cache_path(reseeded) != path
    with pytest.raises(AssertionError, match="must be reused"):
        build_spoken_digits(reseeded, "train")


def test_spoken_digits_options_and_splits(tmp_path):
    with pytest.raises(ValidationError):
        SpokenDigitsOptions(no_such_option=1)
    with pytest.raises(ValidationError):
        SpokenDigitsOptions(rate=(200, 100))
    with pytest.raises(ValidationError):
        SpokenDigitsOptions(speakers={"train": 1, "test": 1, "extra": 1})
    with pytest.raises(ValidationError, match="timbre"):
        SpokenDigitsOptions(languages=["en"], variants=["m1"])
    no_val = SpokenDigitsOptions.model_validate(
        tiny_spoken_digits(tmp_path, speakers={"train": 1, "val": 0, "test": 1})
    )
    assert spoken_digits_splits(no_val) == ("train", "test")
    with pytest.raises(ValueError, match="splits train, test"):
        build_spoken_digits(no_val, "val")
    unknown = SpokenDigitsOptions.model_validate(tiny_spoken_digits(tmp_path, variants=["m3", "nobody"]))
    with pytest.raises(ValueError, match="nobody"):
        build_spoken_digits(unknown, "train")  # espeak-ng itself would ignore the variant silently
    defaults = SpokenDigitsOptions()
    assert defaults.sample_rate == 8000 and defaults.duration == 1.0 and defaults.root == "data/spoken_digits"
    assert sum(1 for s in sd.choose_speakers(defaults) if s.split == "train") * 10 >= 1000


def test_spoken_digits_resamples_and_places_words(tmp_path):
    options = SpokenDigitsOptions.model_validate(
        tiny_spoken_digits(tmp_path, sample_rate=16000, speakers={"train": 1, "val": 0, "test": 1}, repeats=1,
                           noise=0.0, max_shift=0.0)
    )
    dataset = build_spoken_digits(options, "test")
    assert len(dataset) == 10
    for i in (1, 7):
        audio = dataset[i]["audio"]
        assert audio.shape == (12800,)  # 0.8 s at 16 kHz
        loud = np.flatnonzero(np.abs(audio) > 0.003)
        assert loud[0] > 0 and loud[-1] < len(audio) - 1, "a word shorter than the clip is zero padded"
        assert abs((loud[0] + loud[-1]) / 2 - 6400) < 400, "words are centred when max_shift is 0"
        assert 0.12 < (loud[-1] - loud[0]) / 16000 < 0.7


# ---------------------------------------------------------------------------------------- fsdd
@pytest.fixture(scope="module")
def fsdd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdd")
    write_fsdd(root, speakers=("jackson", "theo"), indices=range(7))
    return root


def test_fsdd_reads_the_index_split_with_the_right_labels(fsdd_root):
    options = FSDDOptions(root=str(fsdd_root), val_indices=[5])
    assert fsdd_splits(options) == ("train", "val", "test")
    assert fsdd_splits(FSDDOptions(root=str(fsdd_root))) == ("train", "test")
    test, val, train = (build_fsdd(options, s) for s in ("test", "val", "train"))
    assert (len(test), len(val), len(train)) == (2 * 10 * 5, 2 * 10, 2 * 10)
    assert {p.name.rsplit("_", 1)[1] for p in train.paths} == {"6.wav"}
    assert {p.name.rsplit("_", 1)[1] for p in val.paths} == {"5.wav"}
    assert {int(p.stem.rsplit("_", 1)[1]) for p in test.paths} == {0, 1, 2, 3, 4}
    assert set(test.speakers) == {"jackson", "theo"}
    assert np.bincount(test.labels).tolist() == [10] * 10
    for i in (0, 13, 99):
        item = test[i]
        assert item["label"] == int(test.paths[i].name[0]) == test.labels[i]
        assert item["audio"].dtype == np.float32 and item["audio"].shape == (8000,)
        assert abs(dominant_frequency(item["audio"], 8000) - (200 + 60 * item["label"])) < 15
    everything = build_fsdd(FSDDOptions(root=str(fsdd_root)), "train")
    assert len(everything) == 2 * 10 * 2  # indices 5 and 6 without a val split
    only_theo = build_fsdd(FSDDOptions(root=str(fsdd_root), speakers=["theo"]), "test")
    assert set(only_theo.speakers) == {"theo"} and len(only_theo) == 50
    with pytest.raises(ValueError, match="splits train, test"):
        build_fsdd(FSDDOptions(root=str(fsdd_root)), "val")


def test_fsdd_resamples_and_mixes_stereo(tmp_path):
    write_fsdd(tmp_path / "wide", speakers=("lucas",), indices=[0], digits=[3], sample_rate=16000, seconds=(0.5, 0.5))
    item = build_fsdd(FSDDOptions(root=str(tmp_path / "wide")), "test")[0]
    assert item["audio"].shape == (8000,) and item["label"] == 3
    assert abs(dominant_frequency(item["audio"], 8000) - 380) < 15
    assert 3900 < np.count_nonzero(np.abs(item["audio"]) > 0.001) < 4100  # 0.5 s of sound, padded to 1 s

    paths = write_fsdd(tmp_path / "stereo", speakers=("george",), indices=[0], digits=[4], channels=2)
    data, rate = soundfile.read(str(paths[0]), dtype="float32", always_2d=True)
    assert data.shape[1] == 2 and rate == 8000
    dataset = build_fsdd(FSDDOptions(root=str(tmp_path / "stereo"), align="start", duration=2.0), "test")
    assert np.allclose(dataset.read(0), data.mean(axis=1))
    assert np.allclose(dataset[0]["audio"][: len(data)], data.mean(axis=1)) and dataset[0]["audio"].shape == (16000,)


def test_fsdd_missing_data_names_the_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere") as error:
        build_fsdd(FSDDOptions(root=str(missing)), "train")
    assert FSDD_URL in str(error.value) and "recordings" in str(error.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="recordings") as error:
        build_fsdd(FSDDOptions(root=str(tmp_path / "empty")), "train")
    assert str(tmp_path / "empty" / "recordings") in str(error.value)
    (tmp_path / "empty" / "recordings").mkdir()
    (tmp_path / "empty" / "recordings" / "notes.txt").write_text("no audio here")
    with pytest.raises(FileNotFoundError, match="digit"):
        build_fsdd(FSDDOptions(root=str(tmp_path / "empty")), "test")
    with pytest.raises(ValidationError):
        FSDDOptions(val_indices=[4])  # a test index


def test_fit_length_pads_and_cuts():
    wave = np.arange(1, 5, dtype=np.float32)
    assert fit_length(wave, 8).tolist() == [0, 0, 1, 2, 3, 4, 0, 0]
    assert fit_length(wave, 6, "start").tolist() == [1, 2, 3, 4, 0, 0]
    assert fit_length(wave, 2).tolist() == [2, 3]
    assert fit_length(wave, 2, "start").tolist() == [1, 2]


# ----------------------------------------------------------------------------------- contract
def test_registered_splits_follow_the_options(tmp_path):
    from mmlatent.plugins import get_registry

    registry = get_registry()
    assert registry.dataset("fsdd").available_splits({}) == ("train", "test")
    assert registry.dataset("fsdd").available_splits({"val_indices": [5]}) == ("train", "val", "test")
    assert registry.dataset("spoken_digits").available_splits({}) == ("train", "val", "test")
    no_val = {"speakers": {"train": 2, "val": 0, "test": 1}}
    assert registry.dataset("spoken_digits").available_splits(no_val) == ("train", "test")


class TestSpokenDigitsContract(DatasetContract):
    name = "spoken_digits"

    def make_options(self, tmp_path):
        return tiny_spoken_digits(tmp_path / "spoken_digits", repeats=1)


class TestFSDDContract(DatasetContract):
    name = "fsdd"

    def make_options(self, tmp_path):
        if not (tmp_path / "recordings").exists():
            write_fsdd(tmp_path, speakers=("theo",), indices=range(7))
        return {"root": str(tmp_path), "val_indices": [5]}
