"""The speech embedding network for a Frechet audio distance: loaded from a local safetensors file
(architecture from its metadata), features of the right shape, clear errors, and the evaluation's
``fd_embedding`` through ``evaluation.embeddings``."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from torchaudio import functional, models

from mmlatent_audio.embedding import SpeechEmbedding
from mmlatent_audio.modality import AudioModality, AudioOptions
from mmlatent_audio.testing import TINY_SPEECH_EMBEDDING, write_speech_embedding

TINY = TINY_SPEECH_EMBEDDING


def test_features_of_the_file_encoder(tmp_path):
    encoder = write_speech_embedding(tmp_path / "tiny.safetensors").eval()
    modality = AudioModality("audio", AudioOptions(sample_rate=8000, duration=0.5), 8)
    embedding = modality.build_embedding(tmp_path / "tiny.safetensors")
    waves = torch.rand(3, 4000) * 2 - 1
    features = embedding.features(waves)
    assert features.shape == (3, 16)
    resampled = torch.nn.functional.interpolate(waves[:, None], size=8000, mode="linear")[:, 0]  # not the same
    layers, _ = encoder.extract_features(functional.resample(waves, 8000, 16000))
    torch.testing.assert_close(features, layers[-1].mean(1))
    assert not torch.allclose(embedding.features(resampled[:, :4000]), features)


def test_wrong_architecture_is_refused(tmp_path):
    other = {**TINY, "encoder_embed_dim": 32, "encoder_ff_interm_features": 64}
    state = models.wav2vec2_model(**TINY).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "mislabelled.safetensors"),
              {"config": json.dumps(other)})
    with pytest.raises((ValueError, RuntimeError)):
        SpeechEmbedding.from_file(tmp_path / "mislabelled.safetensors", 8000)


def test_evaluation_reports_fd_in_the_embedding(tmp_path):
    """``load_embeddings`` + the evaluator on a hand-made pipeline: real audio is at distance ~0 from
    itself and farther from noise."""
    from mmlatent.evaluation.command import load_embeddings
    from mmlatent.evaluation.data import EvaluationError

    write_speech_embedding(tmp_path / "tiny.safetensors")
    modality = AudioModality("audio", AudioOptions(sample_rate=8000, duration=0.5), 8)
    networks = load_embeddings({"audio": modality}, {"audio": tmp_path / "tiny.safetensors"})
    from mmlatent.evaluation.coherence import _embed
    from mmlatent.evaluation.frechet import frechet_distance_from_features, gaussian_statistics

    torch.manual_seed(1)
    t = torch.arange(4000) / 8000
    real = torch.stack([0.5 * torch.sin(2 * torch.pi * (200 + 20 * i) * t) for i in range(40)])
    stats = gaussian_statistics(_embed(networks["audio"], real, 16))
    same = frechet_distance_from_features(stats, _embed(networks["audio"], real, 16))
    noise = frechet_distance_from_features(stats, _embed(networks["audio"], torch.rand(40, 4000) - 0.5, 16))
    assert same < 1e-3 < noise
    with pytest.raises(EvaluationError, match="weights file not found"):
        load_embeddings({"audio": modality}, {"audio": tmp_path / "none.safetensors"})
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(EvaluationError, match="cannot load"):
        load_embeddings({"audio": modality}, {"audio": tmp_path / "bad.safetensors"})
