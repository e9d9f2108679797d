"""FID code path: image preparation, a tiny Inception-like extractor, and loading local Inception weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmlatent.evaluation.data import EvaluationError
from mmlatent.evaluation.fid import fid, image_features, load_inception, prepare_images
from mmlatent.evaluation.frechet import frechet_distance_from_features


class TinyInceptionLike(nn.Module):
    """Random conv net with Inception's interface: (B, 3, 299, 299) in [-1, 1] -> pooled features."""

    input_size = 299

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.Conv2d(8, 6, 3, stride=3), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x)
        return self.body(x).flatten(1)


def test_prepare_images_gray_to_rgb_299_in_minus_one_one():
    gray = torch.rand(2, 1, 28, 28)
    out = prepare_images(gray)
    assert out.shape == (2, 3, 299, 299)
    assert out.min() >= -1 and out.max() <= 1
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    # value range: data in [-1, 1] is mapped like data in [0, 1]
    assert torch.allclose(prepare_images(gray * 2 - 1, value_range=(-1.0, 1.0)), out, atol=1e-6)
    already = torch.rand(1, 3, 299, 299)
    assert torch.allclose(prepare_images(already), already * 2 - 1)  # no resize when already 299
    with pytest.raises(EvaluationError, match="expected images"):
        prepare_images(torch.rand(2, 5, 8, 8))


def test_fid_with_a_tiny_extractor():
    extractor = TinyInceptionLike()
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(40, 3, 16, 16, generator=generator)
    same = fid(extractor, real, real, batch_size=16)
    assert same == pytest.approx(0.0, abs=1e-6)
    assert all(batch.shape[1:] == (3, 299, 299) for batch in extractor.seen)
    assert max(batch.shape[0] for batch in extractor.seen) <= 16
    darker = real * 0.3
    value = fid(extractor, real, darker)
    expected = frechet_distance_from_features(image_features(extractor, real), image_features(extractor, darker))
    assert value == pytest.approx(expected) and value > 1e-4
    # images closer to the real ones score better
    assert fid(extractor, real, real * 0.9) < value


@pytest.fixture(scope="module")
def random_inception_state():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    network = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    return network.state_dict()


def test_load_local_inception_weights(tmp_path, random_inception_state):
    from safetensors.torch import save_file

    path = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in random_inception_state.items()}, str(path))
    extractor = load_inception(path)
    weight = extractor.network.Conv2d_1a_3x3.conv.weight
    assert torch.equal(weight, random_inception_state["Conv2d_1a_3x3.conv.weight"])
    features = image_features(extractor, torch.rand(2, 1, 28, 28))
    assert features.shape == (2, 2048) and torch.isfinite(features).all()


def test_torch_state_dicts_are_read_with_weights_only(tmp_path):
    from mmlatent.evaluation.fid import _read_state_dict

    state = nn.Linear(3, 2).state_dict()
    torch.save(state, tmp_path / "plain.pt")
    torch.save({"state_dict": state}, tmp_path / "wrapped.pth")
    for name in ("plain.pt", "wrapped.pth"):
        loaded = _read_state_dict(tmp_path / name)
        assert set(loaded) == {"weight", "bias"} and torch.equal(loaded["weight"], state["weight"])
    torch.save({"x": object.__new__(nn.Linear)}, tmp_path / "pickled.pt")  # arbitrary pickled objects are refused
    with pytest.raises(Exception):
        _read_state_dict(tmp_path / "pickled.pt")


def test_bad_inception_files_are_refused(tmp_path):
    with pytest.raises(EvaluationError, match="not found"):
        load_inception(tmp_path / "missing.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save(nn.Linear(3, 3).state_dict(), wrong)
    with pytest.raises(EvaluationError, match="not a torchvision Inception-v3"):
        load_inception(wrong)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01")
    with pytest.raises(EvaluationError, match="cannot read"):
        load_inception(garbage)
