"""The audio kind: options, preprocessing, log-mel features and their inversion, the autoencoder
learning real structure, the classifier, files and the contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile
import torch
from pydantic import ValidationError

from mmlatent.testing import ModalityContract
from mmlatent_audio import AudioModality, AudioOptions
from mmlatent_audio.features import LogMel, MelInversion, frame_count
from mmlatent_audio.files import read_audio, spectrogram_grid, write_wav

RATE = 8000


def tone(frequency: float, seconds: float = 0.5, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * math.pi * frequency * t)).astype(np.float32)


def modality(**options) -> AudioModality:
    return AudioModality("audio", AudioOptions(**options), 8)


class TestAudioContract(ModalityContract):
    kind = "audio"
    options = {"sample_rate": RATE, "duration": 0.25, "channels": [8, 16]}
    latent_dim = 8
    num_classes = 10

    def raw_values(self):
        return [tone(440, 0.3), (tone(300, 0.2, rate=16000), 16000), np.zeros(100, np.float32),
                (np.clip(tone(500, 0.25), -1, 1) * 32767).astype(np.int16), torch.from_numpy(tone(700, 0.1))]


class TestOptions:
    def test_defaults_give_one_second_at_8_khz(self):
        options = AudioOptions()
        assert options.samples == 8000 and modality().item_shape == (8000,)

    @pytest.mark.parametrize("bad, words", [
        ({"n_fft": 16384, "duration": 1.0}, "n_fft"),
        ({"n_fft": 256, "hop_length": 300}, "hop_length"),
        ({"n_fft": 64, "n_mels": 40}, "n_mels"),
        ({"loss": "huber"}, "loss"),
        ({"channels": [16, 0]}, "channel"),
        ({"sample_rte": 8000}, "sample_rte"),
    ])
    def test_inconsistent_options_are_refused(self, bad, words):
        with pytest.raises(ValidationError, match=words):
            AudioOptions(**bad)


class TestPreprocess:
    def test_pads_with_silence_and_trims(self):
        m = modality(duration=0.5)
        short = m.preprocess(tone(440, 0.25))
        assert short.shape == (4000,) and short[2000:].abs().max() == 0 and short[:2000].abs().max() > 0.4
        long = m.preprocess(tone(440, 2.0))
        assert torch.allclose(long, torch.from_numpy(tone(440, 2.0)[:4000]))

    def test_resamples_a_pair_with_its_rate(self):
        m = modality(duration=0.5)
        x = m.preprocess((tone(440, 0.5, rate=16000), 16000))
        spectrum = torch.fft.rfft(x).abs()
        assert abs(int(spectrum.argmax()) * RATE / 4000 - 440) <= 4  # the same pitch at 8 kHz

    def test_pcm_and_channels(self):
        m = modality(duration=0.1)
        pcm = (tone(440, 0.1) * 32768).clip(-32768, 32767).astype(np.int16)
        assert torch.allclose(m.preprocess(pcm), torch.from_numpy(tone(440, 0.1)), atol=1e-4)
        stereo = np.stack([tone(440, 0.1), np.zeros(800, np.float32)])
        assert torch.allclose(m.preprocess(stereo), torch.from_numpy(tone(440, 0.1)) / 2)
        assert torch.allclose(m.preprocess(stereo.T), m.preprocess(stereo))

    def test_clear_errors(self):
        m = modality()
        with pytest.raises(ValueError, match="audio.*peak of 3"):
            m.preprocess(np.full(100, 3.0, np.float32))
        with pytest.raises(ValueError, match="audio.*NaN"):
            m.preprocess(np.full(100, np.nan, np.float32))
        with pytest.raises(ValueError, match="audio.*uint8"):
            m.preprocess(np.zeros(100, np.uint8))
        with pytest.raises(ValueError, match="audio.*got dict"):
            m.preprocess({"wave": 1})

    def test_augment_shifts_scales_and_keeps_range(self):
        m = modality(duration=0.5, augment=True)
        x = torch.stack([m.preprocess(tone(440, 0.3))] * 16)
        torch.manual_seed(0)
        y = m.augment(x)
        assert y.shape == x.shape and y.abs().max() <= 1.0
        assert not torch.allclose(y, x)
        assert (y.abs().amax(1) < 0.55).all()  # gains at most 1 (+ tiny noise)
        assert torch.equal(modality(duration=0.5).augment(x), x)


class TestFeatures:
    def test_log_mel_shape_scale_and_silence(self):
        features = LogMel(RATE, 256, 80, 40)
        x = torch.stack([torch.from_numpy(tone(440, 1.0)), torch.zeros(8000)])
        mel = features(x)
        assert mel.shape == (2, 40, frame_count(8000, 80)) == (2, 40, 101)
        assert mel[1].abs().max() == 0  # silence is the floor
        assert 1.0 < float(mel[0].max()) < 2.0
        assert int(mel[0].mean(1).argmax()) == int(features(torch.from_numpy(tone(440, 1.0))[None]).mean(2).argmax())

    def test_griffin_lim_recovers_the_spectrum_of_a_tone(self):
        features = LogMel(RATE, 256, 80, 40)
        inversion = MelInversion(RATE, 256, 80, 40, samples=8000, iterations=32)
        x = torch.from_numpy(tone(500, 1.0))[None]
        y = inversion(features(x))
        assert y.shape == (1, 8000) and y.abs().max() <= 1.0
        peak = int(torch.fft.rfft(y[0]).abs().argmax())
        assert abs(peak - 500) <= 40  # the mel bands near 500 Hz are ~60 Hz wide
        # the log-mel of the resynthesis is close to the original's where there is sound
        assert (features(y) - features(x)).abs()[:, :, 5:-5].mean() < 0.15


class TestAutoencoder:
    def test_learns_to_tell_tones_apart(self):
        """A few hundred steps on tones of 8 pitches: reconstructions keep each pitch."""
        torch.manual_seed(0)
        m = modality(duration=0.25, channels=[8, 16])
        pitches = [250, 400, 600, 900, 1300, 1800, 2500, 3200]
        x = torch.stack([m.preprocess(tone(p, 0.25)) for p in pitches])
        ae = m.build_autoencoder()
        optimiser = torch.optim.Adam(ae.parameters(), lr=3e-3)
        first = float(ae.training_loss(x).detach())
        for _ in range(300):
            loss = ae.training_loss(x)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        assert float(loss.detach()) < first / 10
        ae.eval()
        with torch.no_grad():
            decoded = ae.decode(ae.encode(x))
            waveforms = ae.to_data(decoded)
        assert waveforms.shape == x.shape
        target_bands = ae.log_mel(x).mean(2).argmax(1)
        assert torch.equal(decoded.mean(2).argmax(1), target_bands)
        assert torch.equal(ae.log_mel(waveforms).mean(2).argmax(1), target_bands)

    def test_encode_is_deterministic_in_eval(self):
        m = modality(duration=0.25, channels=[8])
        ae = m.build_autoencoder().eval()
        x = torch.stack([m.preprocess(tone(440, 0.25))] * 2)
        assert torch.equal(ae.encode(x), ae.encode(x))

    def test_l1_loss(self):
        m = modality(duration=0.25, channels=[8], loss="l1")
        ae = m.build_autoencoder()
        x = torch.stack([m.preprocess(tone(440, 0.25))])
        decoded = ae(x)
        assert torch.allclose(ae.reconstruction_loss(x, decoded), (decoded - ae.log_mel(x)).abs().sum())


class TestFiles:
    def test_render_writes_playable_wavs_and_a_png(self, tmp_path):
        m = modality(duration=0.25)
        batch = torch.stack([m.preprocess(tone(f, 0.25)) for f in (300, 600, 900)])
        written = m.render(batch, tmp_path / "samples" / "joint_audio")
        names = sorted(p.name for p in written)
        assert names == ["joint_audio-000.wav", "joint_audio-001.wav", "joint_audio-002.wav", "joint_audio.png"]
        data, rate = soundfile.read(str(tmp_path / "samples" / "joint_audio-001.wav"))
        assert rate == RATE and data.shape == (2000,)
        assert np.allclose(data, batch[1].numpy(), atol=1 / 16000)
        assert not list((tmp_path / "samples").glob(".*"))  # no temporary file left

    def test_read_file_wav_flac_npy(self, tmp_path):
        m = modality(duration=0.5)
        x = tone(440, 0.3, rate=16000)
        soundfile.write(str(tmp_path / "a.wav"), np.stack([x, x], 1), 16000, subtype="PCM_16")
        soundfile.write(str(tmp_path / "a.flac"), x, 16000)
        from_wav, from_flac = m.read_file(tmp_path / "a.wav"), m.read_file(tmp_path / "a.flac")
        assert from_wav.shape == (1, 4000) and torch.allclose(from_wav, from_flac, atol=1e-3)
        assert torch.allclose(from_wav[0], m.preprocess((x, 16000)), atol=1e-3)
        np.save(tmp_path / "b.npy", np.stack([tone(440, 0.5), tone(880, 0.25)[:4000].repeat(2)[:4000]]))
        assert m.read_file(tmp_path / "b.npy").shape == (2, 4000)

    def test_read_file_errors_name_the_file(self, tmp_path):
        m = modality()
        with pytest.raises(FileNotFoundError, match="missing.wav"):
            m.read_file(tmp_path / "missing.wav")
        (tmp_path / "empty.wav").write_bytes(b"")
        with pytest.raises(ValueError, match="empty.wav"):
            m.read_file(tmp_path / "empty.wav")
        (tmp_path / "text.wav").write_text("not audio")
        with pytest.raises(ValueError, match="text.wav"):
            m.read_file(tmp_path / "text.wav")
        (tmp_path / "x.mp4").write_text("?")
        with pytest.raises(ValueError, match="expected one of"):
            m.read_file(tmp_path / "x.mp4")
        np.save(tmp_path / "loud.npy", np.full(10, 40.0))
        with pytest.raises(ValueError, match="loud.npy"):
            m.read_file(tmp_path / "loud.npy")

    def test_read_audio_and_write_wav_round_trip(self, tmp_path):
        x = torch.from_numpy(tone(440, 0.2))
        path = write_wav(x, RATE, tmp_path / "x.wav")
        y, rate = read_audio(path)
        assert rate == RATE and y.shape == (1, 1600) and torch.allclose(y[0], x, atol=1 / 16000)

    def test_spectrogram_grid(self, tmp_path):
        from PIL import Image

        path = spectrogram_grid(torch.rand(10, 40, 101), tmp_path / "g.png", columns=4)
        image = Image.open(path)
        assert image.size == (4 * (202 + 2) + 2, 3 * (80 + 2) + 2) and image.mode == "RGB"


class TestClassifier:
    def test_features_and_logits(self):
        m = modality(duration=0.5)
        classifier = m.build_classifier(10).eval()
        x = torch.stack([m.preprocess(tone(f, 0.5)) for f in (300, 600)])
        assert classifier(x).shape == (2, 10) and classifier.features(x).shape == (2, 128)
        # loudness does not change the features (per-item standardisation of the log-mel)
        assert torch.allclose(classifier.features(x), classifier.features(x * 0.5), atol=0.2)


def test_nonnegative_mel_inverse_fits_better_than_clamped_least_squares():
    from torchaudio import transforms

    from mmlatent_audio.features import nonnegative_mel_inverse

    scale = transforms.MelScale(n_mels=40, sample_rate=RATE, n_stft=129)
    power = transforms.Spectrogram(256, hop_length=80, power=2.0)(torch.from_numpy(tone(500, 1.0)))
    mel = scale(power)
    ours = nonnegative_mel_inverse(scale.fb, mel)
    clamped = transforms.InverseMelScale(129, 40, RATE)(mel).clamp_min(0.0)
    assert ours.min() >= 0
    residual = (scale(ours) - mel).abs().mean() / mel.mean()
    assert residual < 0.05 and residual < (scale(clamped) - mel).abs().mean() / mel.mean() / 2


def test_autoencoder_and_classifier_weights_round_trip_through_safetensors(tmp_path):
    from safetensors.torch import load_model, save_model

    m = modality(duration=0.25, channels=[8])
    for build in (m.build_autoencoder, lambda: m.build_classifier(10)):
        network, copy = build(), build()
        save_model(network, str(tmp_path / "w.safetensors"))  # torchaudio's windows are views: must not fail
        load_model(copy, str(tmp_path / "w.safetensors"))
        for (name, a), (_, b) in zip(network.state_dict().items(), copy.state_dict().items()):
            assert torch.equal(a, b), name
