"""CLIP-S arithmetic and the local-directory code path with a tiny random CLIP (no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmlatent.evaluation.clip_score import (
    CLIP_S_WEIGHT,
    ClipScorer,
    clip_s_from_embeddings,
)
from mmlatent.evaluation.data import EvaluationError

WORDS = ["a", "bird", "with", "red", "wings", "small", "yellow", "belly", "black", "tail"]


def test_clip_s_arithmetic():
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    text = torch.tensor([[0.6, 0.8], [-1.0, 0.0], [6.0, 8.0]])  # cos 0.6, -1 (clipped to 0), 1
    scores = clip_s_from_embeddings(image, text)
    assert CLIP_S_WEIGHT == 2.5
    assert torch.allclose(scores, torch.tensor([1.5, 0.0, 2.5], dtype=torch.float64))
    assert torch.allclose(clip_s_from_embeddings(image, text, weight=1.0), scores / 2.5)
    with pytest.raises(ValueError):
        clip_s_from_embeddings(image, text[:2])


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    """A randomly initialised CLIPModel with a hand-made BPE vocabulary, saved like a real checkpoint."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    root = tmp_path_factory.mktemp("clip")
    vocab: dict[str, int] = {}
    for char in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(char, len(vocab))
    for char in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(char + "</w>", len(vocab))
    for word in WORDS:
        vocab.setdefault(word + "</w>", len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"))
    end = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=40, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=end, pad_token_id=end),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    model = CLIPModel(config)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    out = root / "tiny-clip"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def test_scores_match_the_reference_pipeline(tiny_clip_dir):
    """Our preprocessing + embeddings against CLIPProcessor + CLIPModel.forward (normalised embeddings)."""
    from transformers import CLIPModel, CLIPProcessor

    scorer = ClipScorer.from_pretrained(tiny_clip_dir)
    assert scorer.image_size == 32 and scorer.crop_size == 32
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    captions = ["a small bird with red wings", "yellow belly", "black tail a bird"]
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0

    model = CLIPModel.from_pretrained(tiny_clip_dir, local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip_dir, local_files_only=True)
    inputs = processor(text=captions, images=list(pixels), return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**inputs)
    cosine = (out.image_embeds * out.text_embeds).sum(-1).double()
    expected = 2.5 * cosine.clamp(min=0)

    scores = scorer.pair_scores(images, captions)
    assert torch.allclose(scores, expected, atol=1e-4), (scores, expected)
    assert scorer.score(images, captions) == pytest.approx(float(expected.mean()), abs=1e-4)
    # all scores are in [0, w]
    assert (scores >= 0).all() and (scores <= 2.5).all()


def test_gray_and_resized_images_and_weight(tiny_clip_dir):
    scorer = ClipScorer.from_pretrained(tiny_clip_dir, weight=1.0)
    gray = torch.rand(2, 1, 20, 28)
    pixels = scorer.preprocess_images(gray)
    assert pixels.shape == (2, 3, 32, 32)
    scores = scorer.pair_scores(gray, ["a bird", "red wings"])
    assert scores.shape == (2,) and (scores <= 1.0).all()
    with pytest.raises(ValueError, match="captions"):
        scorer.pair_scores(gray, ["only one"])


def test_missing_model_directory(tmp_path):
    with pytest.raises(EvaluationError, match="not found"):
        ClipScorer.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="cannot load"):
        ClipScorer.from_pretrained(tmp_path / "empty")
