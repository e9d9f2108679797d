"""The image kind: options, preprocessing, autoencoder shapes, losses, augmentation, files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from torch import nn

from mmlatent.plugins import get_registry
from mmlatent_image.autoencoders import (
    ConvAutoencoder,
    LDMAutoencoder,
    MLPAutoencoder,
    ResidualBlock,
    ResNetAutoencoder,
    SelfAttention,
)


def build(options: dict, latent_dim: int = 8, name: str = "pic"):
    return get_registry().modality("image").build(name, options, latent_dim)


# ----------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "bad",
    [
        {"arch": "transformer"},
        {"channels": 2},
        {"loss": "bce"},
        {"size": 2},
        {"hidden": [400, 0]},
        {"hidden": []},
        {"arch": "conv", "size": 8, "conv_channels": [8, 8, 8, 8, 8]},
        {"augment": "sometimes"},
        {"colour": 3},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValidationError):
        build(bad)


def test_defaults_are_the_paper_mnist_autoencoder():
    modality = build({}, latent_dim=16)
    assert modality.item_shape == (1, 28, 28)
    ae = modality.build_autoencoder()
    assert isinstance(ae, MLPAutoencoder)
    linears = [m for m in ae.encoder if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 400), (400, 16)]
    assert isinstance(ae.decoder[-1], nn.Sigmoid)


# ----------------------------------------------------------------------------- preprocessing
def test_preprocess_uint8_grey_is_scaled_exactly():
    modality = build({"channels": 1, "size": 4})
    value = np.arange(16, dtype=np.uint8).reshape(4, 4) * 17
    x = modality.preprocess(value)
    assert x.dtype == torch.float32 and x.shape == (1, 4, 4)
    assert torch.allclose(x[0], torch.from_numpy(value).float() / 255.0)


def test_preprocess_layouts_agree():
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    modality = build({"channels": 3, "size": 16, "arch": "conv"})
    a = modality.preprocess(hwc)
    b = modality.preprocess(np.ascontiguousarray(hwc.transpose(2, 0, 1)))  # (C, H, W) numpy
    c = modality.preprocess(torch.from_numpy(hwc).permute(2, 0, 1))  # (C, H, W) tensor
    d = modality.preprocess(Image.fromarray(hwc))
    e = modality.preprocess(hwc.astype(np.float32) / 255.0)
    for other in (b, c, d, e):
        assert torch.allclose(a, other, atol=1e-6)


def test_preprocess_converts_channels_and_size():
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    grey = build({"channels": 1, "size": 8}).preprocess(red)
    assert torch.allclose(grey, torch.full((1, 8, 8), 0.299), atol=1e-6)
    rgba = Image.fromarray(np.dstack([red, np.full((8, 8), 7, np.uint8)]))
    rgb = build({"channels": 3, "size": 16, "arch": "conv"}).preprocess(rgba)
    assert rgb.shape == (3, 16, 16)
    assert torch.allclose(rgb[0], torch.ones(16, 16)) and rgb[1:].abs().max() == 0  # alpha dropped, resized
    up = build({"channels": 3, "size": 16, "arch": "conv"}).preprocess(np.full((28, 28), 128, np.uint8))
    assert up.shape == (3, 16, 16) and torch.allclose(up, torch.full_like(up, 128 / 255), atol=1e-5)
    assert build({"channels": 1, "size": 28}).preprocess(Image.new("L", (50, 40), 255)).shape == (1, 28, 28)


def test_preprocess_reads_16_bit_and_binary_images():
    deep = np.tile(np.array([[0, 65535], [32768, 65535]], np.uint16), (2, 2))
    x = build({"channels": 1, "size": 4}).preprocess(Image.fromarray(deep))
    assert torch.allclose(x[0], torch.from_numpy(deep.astype(np.float32) / 65535), atol=1e-6)
    pattern = np.tile(np.array([[0, 255], [255, 0]], np.uint8), (2, 2))
    binary = Image.fromarray(pattern).convert("1")
    assert torch.equal(build({"channels": 1, "size": 4}).preprocess(binary)[0], torch.from_numpy(pattern / 255).float())


def test_preprocess_float_values_are_clamped():
    x = build({"channels": 1, "size": 4}).preprocess(np.full((4, 4), 3.0, np.float64))
    assert x.max() == 1.0


@pytest.mark.parametrize("value", [np.zeros((5, 6, 7), np.uint8), np.zeros((2, 3, 4, 5), np.uint8), "picture.png", np.zeros((4, 4), np.complex64)])
def test_preprocess_rejects_what_is_not_an_image(value):
    with pytest.raises(ValueError, match="'pic'"):
        build({"channels": 1, "size": 4}).preprocess(value)


# ------------------------------------------------------------------------------ autoencoders
@pytest.mark.parametrize(
    "options, latent_dim, cls, final_side",
    [
        ({"channels": 1, "size": 28, "arch": "mlp"}, 16, MLPAutoencoder, None),
        ({"channels": 3, "size": 16, "arch": "mlp", "hidden": [64, 32]}, 8, MLPAutoencoder, None),
        ({"channels": 3, "size": 32, "arch": "conv"}, 64, ConvAutoencoder, 4),  # SVHN
        ({"channels": 3, "size": 16, "arch": "conv"}, 32, ConvAutoencoder, 2),  # digits colour
        ({"channels": 1, "size": 16, "arch": "conv"}, 16, ConvAutoencoder, 2),
        ({"channels": 1, "size": 28, "arch": "conv"}, 16, ConvAutoencoder, 4),  # padded to 32
        ({"channels": 3, "size": 64, "arch": "resnet"}, 64, ResNetAutoencoder, 4),  # CUB
        ({"channels": 3, "size": 28, "arch": "resnet", "conv_channels": [8, 16]}, 10, ResNetAutoencoder, 7),
        ({"channels": 3, "size": 32, "arch": "ldm", "conv_channels": [8, 16, 16, 32]}, 32, LDMAutoencoder, 4),
        ({"channels": 3, "size": 64, "arch": "ldm", "conv_channels": [8, 16, 16, 32]}, 32, LDMAutoencoder, 8),
        ({"channels": 1, "size": 28, "arch": "ldm", "conv_channels": [8, 8], "blocks_per_level": 2,
          "attention": False}, 6, LDMAutoencoder, 14),
    ],
)
def test_autoencoder_shapes(options, latent_dim, cls, final_side):
    modality = build(options, latent_dim)
    torch.manual_seed(0)
    ae = modality.build_autoencoder()
    assert type(ae) is cls and ae.has_parameters
    if final_side is not None:
        assert ae.final_side == final_side
    x = torch.rand(3, *modality.item_shape)
    with torch.no_grad():
        z = ae.encode(x)
        y = ae.to_data(ae.decode(z))
    assert z.shape == (3, latent_dim)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError, match="expects a batch"):
        ae.encode(torch.rand(3, modality.item_shape[0], modality.item_shape[1] + 1, modality.item_shape[2]))


def test_conv_autoencoder_is_the_svhn_one():
    ae = build({"channels": 3, "size": 32, "arch": "conv"}, 20).build_autoencoder()
    convs = [m for m in ae.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (4, 4), (2, 2)),
        (32, 64, (4, 4), (2, 2)),
        (64, 128, (4, 4), (2, 2)),
        (128, 20, (4, 4), (1, 1)),
    ]


def test_ldm_autoencoder_is_the_ldm_layout():
    """Levels of resnet blocks with stride-2 convolutions between them, the middle block (resnet,
    self-attention, resnet) at the lowest resolution, a flat latent; the decoder one block more per level."""
    ae = build({"channels": 3, "size": 32, "arch": "ldm", "blocks_per_level": 2}, 24).build_autoencoder()
    encoder_blocks = [m for m in ae.encoder.modules() if isinstance(m, ResidualBlock)]
    decoder_blocks = [m for m in ae.decoder.modules() if isinstance(m, ResidualBlock)]
    assert len(encoder_blocks) == 4 * 2 + 2 and len(decoder_blocks) == 4 * 3 + 2
    strided = [m for m in ae.encoder if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [m.out_channels for m in strided] == [32, 64, 128]
    attention = [m for m in ae.modules() if isinstance(m, SelfAttention)]
    assert len(attention) == 2  # one in each middle block
    features = {}

    def record(module, args, out):
        features["shape"] = args[0].shape

    attention[0].register_forward_hook(record)
    ae.encode(torch.rand(2, 3, 32, 32))
    assert features["shape"] == (2, 128, 4, 4)
    no_attention = build({"channels": 3, "size": 32, "arch": "ldm", "attention": False}, 24).build_autoencoder()
    assert not [m for m in no_attention.modules() if isinstance(m, SelfAttention)]


def test_self_attention_mixes_positions():
    torch.manual_seed(0)
    block = SelfAttention(8)
    x = torch.randn(1, 8, 4, 4)
    changed = x.clone()
    changed[..., 0, 0] += 3.0
    with torch.no_grad():
        difference = (block(changed) - block(x)).abs().sum(1)[0]
    assert float(difference[3, 3]) > 1e-4  # a far position sees the change


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_reconstruction_losses(loss):
    ae = build({"channels": 1, "size": 4, "loss": loss, "hidden": [8]}).build_autoencoder()
    x = torch.zeros(2, 1, 4, 4)
    decoded = torch.full((2, 1, 4, 4), 0.5)
    decoded[1] = 0.25
    per_item = [16 * 0.5, 16 * 0.25] if loss == "l1" else [16 * 0.25, 16 * 0.0625]
    assert torch.isclose(ae.reconstruction_loss(x, decoded), torch.tensor(sum(per_item) / 2))


# -------------------------------------------------------------------------------- augmenting
def test_augment_is_identity_when_off():
    modality = build({"channels": 3, "size": 16, "arch": "conv"})
    x = torch.rand(4, 3, 16, 16)
    assert modality.augment(x) is x


def test_trivial_augment_changes_images_and_keeps_the_range():
    modality = build({"channels": 3, "size": 16, "arch": "conv", "augment": True})
    torch.manual_seed(0)
    x = (torch.rand(32, 3, 16, 16) * 255).round() / 255
    threads = torch.get_num_threads()
    y = modality.augment(x)
    assert torch.get_num_threads() == threads
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    changed = (y - x).flatten(1).abs().amax(1) > 1e-6
    assert 8 <= int(changed.sum()) < 32  # most images change; identity is one of the 14 operations
    grey = build({"channels": 1, "size": 16, "augment": True}).augment(torch.rand(8, 1, 16, 16))
    assert grey.shape == (8, 1, 16, 16)


def test_augment_keeps_the_alpha_channel():
    torch.manual_seed(1)
    x = (torch.rand(32, 4, 16, 16) * 255).round() / 255
    y = build({"channels": 4, "size": 16, "augment": True}).augment(x)
    assert y.shape == x.shape and torch.equal(y[:, 3], x[:, 3])
    assert int(((y[:, :3] - x[:, :3]).flatten(1).abs().amax(1) > 1e-6).sum()) >= 8  # the colour is augmented


def test_classifier_shapes():
    for options in ({"channels": 1, "size": 16}, {"channels": 3, "size": 32, "arch": "conv"}, {"channels": 3, "size": 64, "arch": "resnet"}):
        modality = build(options)
        classifier = modality.build_classifier(10).eval()
        x = torch.rand(2, *modality.item_shape)
        assert classifier(x).shape == (2, 10)
        assert classifier.features(x).shape == (2, 128)
        assert torch.allclose(classifier.head(classifier.features(x)), classifier(x))


# ------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("channels, n", [(1, 5), (3, 7), (3, 1), (1, 16)])
def test_render_then_read_file_round_trip(tmp_path, channels, n):
    modality = build({"channels": channels, "size": 16, "arch": "conv"})
    batch = (torch.rand(n, channels, 16, 16) * 255).round() / 255
    paths = modality.render(batch, tmp_path / "samples" / "pic")
    assert paths == [tmp_path / "samples" / "pic.png"]
    with Image.open(paths[0]) as image:
        assert image.mode == ("L" if channels == 1 else "RGB")
    back = modality.read_file(paths[0])
    assert back.shape == batch.shape
    assert torch.allclose(back, batch, atol=1e-6)


def test_read_file_plain_images_and_arrays(tmp_path):
    modality = build({"channels": 3, "size": 16, "arch": "conv"})
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=95)
    Image.fromarray(photo[:16, :16]).save(tmp_path / "tile.png")
    jpg = modality.read_file(tmp_path / "photo.jpg")
    assert jpg.shape == (1, 3, 16, 16)
    png = modality.read_file(tmp_path / "tile.png")
    assert torch.allclose(png[0], torch.from_numpy(photo[:16, :16]).permute(2, 0, 1).float() / 255)
    np.save(tmp_path / "batch.npy", rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8))
    assert modality.read_file(tmp_path / "batch.npy").shape == (4, 3, 16, 16)
    from safetensors.torch import save_file

    save_file({"pic": torch.rand(2, 3, 16, 16)}, str(tmp_path / "batch.safetensors"))
    assert modality.read_file(tmp_path / "batch.safetensors").shape == (2, 3, 16, 16)
    grey = build({"channels": 1, "size": 16})
    np.save(tmp_path / "grey.npy", rng.random((5, 16, 16)).astype(np.float32))
    assert grey.read_file(tmp_path / "grey.npy").shape == (5, 1, 16, 16)
    with pytest.raises(ValueError, match="cannot read 'notes.txt'"):
        (tmp_path / "notes.txt").write_text("a bird")
        modality.read_file(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="'pic'"):
        modality.read_file(tmp_path / "missing.png")
