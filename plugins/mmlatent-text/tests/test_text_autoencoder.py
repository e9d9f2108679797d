"""The caption autoencoder and classifier: shapes, loss weighting, learning template captions."""

from __future__ import annotations

import time

import pytest
import torch
from mmlatent_text.autoencoder import TextAutoencoder, clean_after_eos, token_accuracy
from mmlatent_text.vocabulary import EOS_ID, PAD_ID


@pytest.mark.parametrize("max_length", [32, 13, 2])
def test_shapes_for_any_max_length(max_length, captions, make_text):
    text = make_text(fit=captions, max_length=max_length, channels=16, embed_dim=8)
    batch = text.collate([text.preprocess(c) for c in captions[:5]])
    ae = text.build_autoencoder()
    z = ae.encode(batch)
    assert tuple(z.shape) == (5, 16)
    logits = ae.decode(z)
    assert tuple(logits.shape) == (5, max_length, len(text.vocabulary))
    data = ae.to_data(logits)
    assert data.dtype == torch.long and tuple(data.shape) == (5, max_length)


def test_encode_rejects_wrong_length(text):
    ae = text.build_autoencoder()
    with pytest.raises(ValueError, match=r"\(B, 32\)"):
        ae.encode(torch.zeros(2, 31, dtype=torch.long))


def test_encode_accepts_float_ids(text, captions):
    ae = text.build_autoencoder()
    ids = text.collate([text.preprocess(c) for c in captions[:3]])
    assert torch.equal(ae.encode(ids), ae.encode(ids.float()))


def test_clean_after_eos():
    ids = torch.tensor([[5, 6, EOS_ID, 7, EOS_ID, 8], [5, PAD_ID, 6, 7, 8, 9], [5, 6, 7, 8, 9, 10]])
    expected = torch.tensor(
        [[5, 6, EOS_ID, PAD_ID, PAD_ID, PAD_ID], [5, PAD_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID], [5, 6, 7, 8, 9, 10]]
    )
    assert torch.equal(clean_after_eos(ids), expected)


def test_pad_weight_decides_whether_pad_positions_count():
    torch.manual_seed(0)
    x = torch.tensor([[4, 5, EOS_ID, PAD_ID, PAD_ID, PAD_ID]])
    logits = torch.randn(1, 6, 9)
    changed = logits.clone()
    changed[:, 3:] = torch.randn(1, 3, 9)  # only pad positions differ
    ignore = TextAutoencoder(9, 6, 4, channels=8, embed_dim=4, depth=1, pad_weight=0.0)
    count = TextAutoencoder(9, 6, 4, channels=8, embed_dim=4, depth=1, pad_weight=1.0)
    assert torch.allclose(ignore.reconstruction_loss(x, logits), ignore.reconstruction_loss(x, changed))
    assert not torch.allclose(count.reconstruction_loss(x, logits), count.reconstruction_loss(x, changed))
    expected = torch.nn.functional.cross_entropy(logits[0], x[0], reduction="sum")
    assert torch.allclose(count.reconstruction_loss(x, logits), expected)
    # <eos> always counts
    eos_changed = logits.clone()
    eos_changed[:, 2] = torch.randn(9)
    assert not torch.allclose(ignore.reconstruction_loss(x, logits), ignore.reconstruction_loss(x, eos_changed))


def test_default_options_ignore_pads(text):
    assert text.options.pad_weight == 0.0
    assert text.build_autoencoder().pad_weight == 0.0


@pytest.mark.parametrize("encoder", ["conv", "bow"])
def test_learns_template_captions(encoder, make_text, digit_captions, one_thread):
    """10 digits x 4 templates: >= 90% token accuracy and >= 90% exact captions within 400 Adam steps
    (~100 steps, ~3 s, on an idle core). The digit is one word of each caption, so exact captions
    are what shows the latent keeps the digit."""
    captions = digit_captions()
    text = make_text(fit=captions, channels=64, embed_dim=32, encoder=encoder)
    x = text.collate([text.preprocess(c) for c in captions])
    torch.manual_seed(0)
    ae = text.build_autoencoder()
    optimizer = torch.optim.Adam(ae.parameters(), lr=1e-3)
    with torch.no_grad():
        assert token_accuracy(x, ae.to_data(ae(x))) < 0.5  # untrained: far from it
    start, steps = time.monotonic(), 0
    while steps < 400:
        for _ in range(25):
            loss = ae.training_loss(x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        steps += 25
        with torch.no_grad():
            decoded = ae.to_data(ae(x))
        if torch.equal(decoded, x):
            break
    accuracy = token_accuracy(x, decoded)
    decoded_captions = text.to_values(decoded)
    exact = sum(a == b for a, b in zip(decoded_captions, captions)) / len(captions)
    report = f"after {steps} steps, {time.monotonic() - start:.0f} s: token accuracy {accuracy:.3f}, exact {exact:.2f}"
    assert accuracy >= 0.9, report
    assert exact >= 0.9, (report, decoded_captions)


def test_bag_of_words_encoder_is_linear_in_the_word_counts(make_text, captions):
    """encoder="bow": z = W mean(embedding of the non-pad tokens) + b; word order does not matter."""
    text = make_text(fit=captions, encoder="bow", embed_dim=12)
    torch.manual_seed(0)
    ae = text.build_autoencoder()
    assert not hasattr(ae, "encoder")  # no convolution in a bag-of-words encoder
    x = text.collate([text.preprocess("a small red bird"), text.preprocess("red bird a small"),
                      text.preprocess("a small red bird with a red head")])
    z = ae.encode(x)
    assert torch.allclose(z[0], z[1], atol=1e-6)
    ids = x[2][x[2] != PAD_ID]
    expected = ae.to_latent(ae.embedding(ids).mean(0))
    assert torch.allclose(z[2], expected, atol=1e-6)
    assert ae(x).shape == (3, text.options.max_length, len(text.vocabulary))
    with pytest.raises(ValueError, match="encoder"):
        TextAutoencoder(10, 8, 4, encoder="rnn")


def test_token_accuracy_ignores_pads():
    target = torch.tensor([[4, 5, EOS_ID, PAD_ID]])
    assert token_accuracy(target, torch.tensor([[4, 5, EOS_ID, 9]])) == 1.0
    assert token_accuracy(target, torch.tensor([[4, 6, EOS_ID, PAD_ID]])) == pytest.approx(2 / 3)


def test_classifier_shapes_and_learns_digits(text, captions, one_thread):
    x = text.collate([text.preprocess(c) for c in captions])
    y = torch.arange(10).repeat_interleave(4)
    torch.manual_seed(0)
    classifier = text.build_classifier(10)
    assert tuple(classifier(x).shape) == (40, 10)
    assert tuple(classifier.features(x).shape) == (40, 128)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=3e-3)
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(classifier(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    classifier.eval()
    with torch.no_grad():
        assert (classifier(x).argmax(1) == y).float().mean() >= 0.95
        empty = text.preprocess("").unsqueeze(0)
        assert torch.isfinite(classifier(empty)).all()
        # features are the penultimate activations: the output layer applied to them gives the logits
        assert torch.allclose(classifier.head(classifier.features(x)), classifier(x))
