"""The fitted word vocabulary: fit, save/reload, unknown words, truncation, padding, decoding."""

from __future__ import annotations

import json

import pytest
import torch
from mmlatent_text.vocabulary import EOS_ID, PAD_ID, UNK_ID


def test_fit_builds_a_word_vocabulary_with_special_ids_first(text, captions):
    vocab = text.vocabulary
    assert vocab.tokenizer.id_to_token(PAD_ID) == "<pad>"
    assert vocab.tokenizer.id_to_token(UNK_ID) == "<unk>"
    assert vocab.tokenizer.id_to_token(EOS_ID) == "<eos>"
    words = set(vocab.words)
    assert {"a", "handwritten", "seven", "7", "digit", ",", "."} <= words
    assert len(vocab) == len(words) + 3
    # The most frequent word ("a": in 3 of 4 templates) gets the first word id.
    assert vocab.words[0] == "a"


def test_preprocess_pads_with_eos_then_pad(text):
    ids = text.preprocess("a handwritten seven")
    assert ids.dtype == torch.long and tuple(ids.shape) == (32,)
    vocab = text.vocabulary.tokenizer
    assert [vocab.id_to_token(int(i)) for i in ids[:4]] == ["a", "handwritten", "seven", "<eos>"]
    assert (ids[4:] == PAD_ID).all()


def test_unknown_words_become_unk(text):
    ids = text.preprocess("a handwritten zebra")
    assert ids[2].item() == UNK_ID
    assert ids[3].item() == EOS_ID
    assert text.to_values(ids.unsqueeze(0)) == ["a handwritten <unk>"]


def test_lowercasing_is_an_option(captions, make_text):
    lower = make_text(fit=captions)
    assert torch.equal(lower.preprocess("A HANDWRITTEN Seven"), lower.preprocess("a handwritten seven"))
    cased = make_text(fit=captions, lowercase=False)
    assert cased.preprocess("A handwritten seven")[0].item() == UNK_ID


def test_truncation_keeps_eos_at_max_length(captions, make_text):
    text = make_text(fit=captions, max_length=5)
    long = "a handwritten seven a handwritten seven a handwritten seven"
    ids = text.preprocess(long)
    assert tuple(ids.shape) == (5,)
    assert ids[-1].item() == EOS_ID
    assert text.to_values(ids.unsqueeze(0)) == ["a handwritten seven a"]
    # exactly max_length - 1 words: no truncation, no padding
    full = text.preprocess("the digit 7 written")
    assert full[-1].item() == EOS_ID and (full != PAD_ID).all()


def test_empty_caption_is_just_eos(text):
    ids = text.preprocess("")
    assert ids[0].item() == EOS_ID and (ids[1:] == PAD_ID).all()
    assert text.to_values(ids.unsqueeze(0)) == [""]


def test_to_values_round_trips_in_vocabulary_sentences(text, captions):
    batch = text.collate([text.preprocess(c) for c in captions])
    assert text.to_values(batch) == captions
    # Punctuation marks are tokens and are written back attached to the word before them.
    assert "this is a seven, drawn in ink" in text.to_values(batch)


def test_to_values_stops_at_eos_and_accepts_logits(text):
    ids = text.preprocess("a handwritten seven")
    garbage = ids.clone()
    garbage[4:] = ids[1]  # words after <eos> are not read
    assert text.to_values(garbage) == ["a handwritten seven"]
    logits = torch.nn.functional.one_hot(ids, len(text.vocabulary)).float().unsqueeze(0)
    assert text.to_values(logits) == ["a handwritten seven"]


def test_hyphens_and_apostrophes_stay_inside_words(make_text):
    text = make_text(fit=["the medium-sized bird's beak", "a bird"])
    assert {"medium-sized", "bird's"} <= set(text.vocabulary.words)
    batch = text.preprocess("the medium-sized bird's beak").unsqueeze(0)
    assert text.to_values(batch) == ["the medium-sized bird's beak"]


def test_strip_punctuation_option(make_text):
    text = make_text(fit=["a bird, red.", "a bird"], strip_punctuation=True)
    assert "," not in text.vocabulary.words and "." not in text.vocabulary.words
    assert text.to_values(text.preprocess("A bird, red!").unsqueeze(0)) == ["a bird red"]


def test_min_frequency_and_max_vocab(captions, make_text):
    # counts over the 40 captions: "a" 30, "the" 20, template words 10 each, digit words 3, numerals 1
    assert set(make_text(fit=captions, min_frequency=11).vocabulary.words) == {"a", "the"}
    frequent = make_text(fit=captions, min_frequency=10)
    assert "seven" not in frequent.vocabulary.words and "written" in frequent.vocabulary.words
    assert frequent.preprocess("seven")[0].item() == UNK_ID
    assert "seven" in make_text(fit=captions, min_frequency=3).vocabulary.words
    assert "7" not in make_text(fit=captions, min_frequency=2).vocabulary.words
    capped = make_text(fit=captions, max_vocab=5)
    assert len(capped.vocabulary.words) == 5
    assert capped.vocabulary.words[:2] == ["a", "the"]


def test_empty_vocabulary_is_an_error(make_text):
    with pytest.raises(ValueError, match="empty vocabulary"):
        make_text(fit=["a b c"], min_frequency=2)


def test_fit_rejects_non_strings_naming_the_modality(make_text):
    with pytest.raises(TypeError, match="'caption'.*strings"):
        make_text(fit=["a bird", 3])
    text = make_text(fit=["a bird"])
    with pytest.raises(TypeError, match="'caption'"):
        text.preprocess(None)


def test_fit_is_deterministic(captions, make_text):
    a = make_text(fit=captions)
    b = make_text(fit=list(reversed(captions)))
    assert a.vocabulary.words == b.vocabulary.words


def test_state_dict_round_trip_gives_identical_ids(text, captions, make_text):
    state = json.loads(json.dumps(text.state_dict()))
    assert state["format"] == "mmlatent-text/vocabulary/1" and state["vocab_size"] == len(text.vocabulary)
    fresh = make_text()
    assert not fresh.is_fitted and fresh.state_dict() == {}
    fresh.load_state_dict(state)
    probes = captions + ["a handwritten zebra", "", "A Seven; eight!!", "seven " * 40]
    for caption in probes:
        assert torch.equal(fresh.preprocess(caption), text.preprocess(caption)), caption
    assert fresh.state_dict() == state
    assert fresh.to_values(text.preprocess("this is a nine, drawn in ink")) == ["this is a nine, drawn in ink"]


def test_load_state_dict_rejects_mismatch_and_garbage(text, make_text):
    state = text.state_dict()
    with pytest.raises(ValueError, match="max_length=32.*options say 16"):
        make_text(max_length=16).load_state_dict(state)
    with pytest.raises(ValueError, match="not a text vocabulary"):
        make_text().load_state_dict({"format": "something else"})
    with pytest.raises(ValueError, match="corrupt"):
        make_text().load_state_dict({**state, "vocab_size": 3})


def test_unfitted_modality_says_what_to_do(make_text):
    text = make_text()
    with pytest.raises(RuntimeError, match="'caption'.*not fitted"):
        text.preprocess("a bird")
    with pytest.raises(RuntimeError, match="not fitted"):
        text.build_autoencoder()
