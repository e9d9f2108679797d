"""The built-in modality kind `vector` beyond the shared contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from mmlatent.builtin.vector import IdentityAutoencoder, MLPAutoencoder
from mmlatent.plugins import get_registry


def build(options, latent_dim=3, name="v"):
    return get_registry().modality("vector").build(name, options, latent_dim)


def test_options_are_validated():
    with pytest.raises(ValidationError, match="arch"):
        build({"arch": "transformer"})
    with pytest.raises(ValidationError, match="hidden"):
        build({"hidden": [16, 0]})
    with pytest.raises(ValidationError, match="hiden"):
        build({"hiden": [16]})


def test_identity_requires_latent_dim_equal_to_size():
    with pytest.raises(ValueError, match=r"'v' .*latent_dim must equal the input size \(latent_dim=3, size=5\)"):
        build({"arch": "identity", "size": 5}, latent_dim=3)
    modality = build({"arch": "identity"}, latent_dim=3)  # size defaults to latent_dim
    with pytest.raises(ValueError, match="latent_dim=3, size=4"):
        modality.fit([np.zeros(4)])
    modality.fit([np.zeros(3)])
    ae = modality.build_autoencoder()
    assert isinstance(ae, IdentityAutoencoder) and not ae.has_parameters
    x = torch.randn(2, 3)
    assert torch.equal(ae.encode(x), x) and torch.equal(ae.to_data(ae.decode(x)), x)


def test_size_is_learned_by_fit_and_checked():
    modality = build({"hidden": [8]})
    assert modality.needs_fit and modality.item_shape is None
    with pytest.raises(ValueError, match="input size is unknown; set options.size"):
        modality.build_autoencoder()
    modality.fit(iter([np.arange(6.0), np.arange(6.0)]))
    assert modality.item_shape == (6,) and modality.state_dict() == {"size": 6}
    ae = modality.build_autoencoder()
    assert isinstance(ae, MLPAutoencoder) and ae.encode(torch.randn(4, 6)).shape == (4, 3)
    with pytest.raises(ValueError, match="options.size is 5 but the training data has vectors of size 6"):
        build({"size": 5}).fit([np.arange(6.0)])
    with pytest.raises(ValueError, match="no training values"):
        build({}).fit([])


def test_preprocess_flattens_and_checks_the_size():
    modality = build({"size": 4})
    item = modality.preprocess(np.arange(4, dtype=np.int64).reshape(2, 2))
    assert item.dtype == torch.float32 and item.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="expected a vector of size 4, got 3 values"):
        modality.preprocess([1, 2, 3])


def test_mlp_autoencoder_learns_a_low_rank_set():
    torch.manual_seed(0)
    x = torch.randn(128, 2) @ torch.randn(2, 6)  # rank 2 in 6-d: a 2-d latent suffices
    modality = build({"hidden": [32], "size": 6}, latent_dim=2)
    ae = modality.build_autoencoder()
    optimizer = torch.optim.Adam(ae.parameters(), lr=1e-2)
    first = float(ae.training_loss(x).detach())
    for _ in range(150):
        optimizer.zero_grad()
        loss = ae.training_loss(x)
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.1 * first
    assert torch.allclose(ae.reconstruction_loss(x, ae(x)), torch.nn.functional.mse_loss(ae(x), x))


def test_render_writes_safetensors_and_a_png(tmp_path):
    modality = build({"size": 3})
    batch = torch.randn(10, 3)
    paths = modality.render(batch, tmp_path / "out" / "v")
    assert sorted(p.name for p in paths) == ["v.png", "v.safetensors"]
    assert (tmp_path / "out" / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert torch.equal(load_file(str(tmp_path / "out" / "v.safetensors"))["v"], batch)
    one_dim = build({"size": 1}).render(torch.randn(5, 1), tmp_path / "w")
    assert (tmp_path / "w.png").stat().st_size > 0 and len(one_dim) == 2
    assert modality.to_values(batch[:2]) == batch[:2].tolist()


def test_read_file_npy_safetensors_csv(tmp_path):
    modality = build({"size": 3})
    data = np.arange(6, dtype=np.float64).reshape(2, 3)
    np.save(tmp_path / "a.npy", data)
    save_file({"other": torch.zeros(1, 3), "v": torch.from_numpy(data).float()}, str(tmp_path / "a.safetensors"))
    (tmp_path / "a.csv").write_text("x,y,z\n0,1,2\n3,4,5\n")
    (tmp_path / "b.csv").write_text("0, 1, 2\n\n3, 4, 5\n")
    for name in ("a.npy", "a.safetensors", "a.csv", "b.csv"):
        batch = modality.read_file(tmp_path / name)
        assert batch.dtype == torch.float32 and batch.tolist() == data.tolist(), name
    np.save(tmp_path / "one.npy", np.arange(3.0))
    assert modality.read_file(tmp_path / "one.npy").shape == (1, 3)  # a single vector
    np.save(tmp_path / "bad.npy", np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"holds shape \(2, 4\), expected \(N, 3\)"):
        modality.read_file(tmp_path / "bad.npy")
    (tmp_path / "bad.csv").write_text("1,2,3\n4,five,6\n")
    with pytest.raises(ValueError, match="not a CSV of numbers"):
        modality.read_file(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="expected one of .npy, .safetensors, .csv"):
        (tmp_path / "a.txt").write_text("1 2 3")
        modality.read_file(tmp_path / "a.txt")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        modality.read_file(tmp_path / "missing.npy")
