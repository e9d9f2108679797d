"""The VAE networks are the modality plugins' MLD trunks with a variational head."""

from __future__ import annotations

import pytest
import torch
from mmlatent.plugins import get_registry
from mmlatent_baselines.networks import (
    GaussianMLPEncoder,
    MessageEncoder,
    MLPDecoder,
    RemovedPart,
    build_modality_networks,
    modality_with_latent,
)


def _networks(tiny, name, k=5):
    cfg = tiny.recipe.modalities[name]
    return build_modality_networks(name, cfg.kind, cfg.options, tiny.modalities[name], k)


@pytest.mark.parametrize("name, decoded_shape", [("gray", (1, 16, 16)), ("color", (3, 16, 16)), ("caption", (8, None))])
def test_shapes_with_any_leading_dims(tiny, name, decoded_shape):
    nets = _networks(tiny, name)
    x = tiny.batch[name][:4]
    out = nets.encoder(x)
    assert out.embedding.shape == out.log_covariance.shape == (4, 5)
    vocab = len(tiny.modalities["caption"].vocabulary)
    shape = tuple(vocab if s is None else s for s in decoded_shape)
    assert nets.decoder(out.embedding).reconstruction.shape == (4, *shape)
    assert nets.decoder(torch.zeros(3, 4, 5)).reconstruction.shape == (3, 4, *shape)  # MMVAE: (K, B, d)
    assert nets.decoder(torch.zeros(5)).reconstruction.shape == shape  # generate_from_prior(1): (d,)
    data = nets.decoder.to_data(nets.decoder(out.embedding).reconstruction)
    assert data.shape == x.shape and data.dtype == x.dtype
    assert nets.data.shape[1:] == x.shape[1:] and nets.data.dtype == x.dtype


def test_encoder_is_the_mld_encoder_widened_to_twice_the_latent(tiny):
    """Same trunk: the encoder's weights have the shapes of the plugin's autoencoder with latent 2k."""
    cfg = tiny.recipe.modalities["color"]
    reference = modality_with_latent("color", cfg.kind, cfg.options, tiny.modalities["color"], 10).build_autoencoder()
    encoder = _networks(tiny, "color").encoder.autoencoder
    shapes = {k: v.shape for k, v in reference.state_dict().items() if k.startswith("encoder.")}
    assert {k: v.shape for k, v in encoder.state_dict().items()} == shapes


def test_unused_halves_are_removed(tiny):
    for name in ("gray", "caption"):
        nets = _networks(tiny, name)
        encoder_keys, decoder_keys = set(nets.encoder.state_dict()), set(nets.decoder.state_dict())
        assert encoder_keys and decoder_keys and not encoder_keys & decoder_keys
        assert any(isinstance(m, RemovedPart) for m in nets.encoder.modules())
        assert any(isinstance(m, RemovedPart) for m in nets.decoder.modules())
        # every kept parameter is used (DDP without find_unused_parameters)
        out = nets.encoder(tiny.batch[name][:2])
        nets.decoder(out.embedding + out.log_covariance).reconstruction.float().sum().backward()
        unused = [n for n, p in [*nets.encoder.named_parameters(), *nets.decoder.named_parameters()] if p.grad is None]
        assert not unused
    with pytest.raises(RuntimeError, match="removed"):
        _networks(tiny, "gray").encoder.autoencoder.decode(torch.zeros(2, 10))


def test_text_networks_use_the_fitted_vocabulary(tiny):
    nets = _networks(tiny, "caption", k=3)
    assert nets.decoded.shape[-1] == len(tiny.modalities["caption"].vocabulary)


def test_fixed_autoencoder_is_refused():
    spec = get_registry().modality("vector")
    fitted = spec.build("v", {"arch": "identity", "size": 3}, 3)
    with pytest.raises(ValueError, match="'v'.*latent size 6"):
        build_modality_networks("v", "vector", {"arch": "identity", "size": 3}, fitted, 3)


def test_nexus_upper_networks():
    msg = MessageEncoder(4, 6)(torch.zeros(2, 3, 4))
    assert set(msg) == {"embedding"} and msg.embedding.shape == (2, 3, 6)
    joint = GaussianMLPEncoder(6, 5, 16)(torch.zeros(7, 6))
    assert joint.embedding.shape == joint.log_covariance.shape == (7, 5)
    assert MLPDecoder(5, 4, 16)(torch.zeros(3, 7, 5)).reconstruction.shape == (3, 7, 4)
