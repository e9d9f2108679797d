"""Image batches and files that users give: uint8 and bool convert, floats outside [0, 1] and
unreadable files are ValueErrors that name the modality, the range or the file. The pipeline
(gray image + caption, untrained networks) also checks the caption ids of the text plugin."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from mmlatent.cli import main as cli_main
from mmlatent.pipeline import MLDPipeline
from mmlatent.plugins import get_registry
from mmlatent.testing import untrained_pipeline

RECIPE = {
    "name": "inputs",
    "data": {"dataset": "digits_pair", "options": {"k": 5, "captions": True, "seed": 0}},
    "modalities": {
        "gray": {"kind": "image", "latent_dim": 4, "options": {"channels": 1, "size": 8, "hidden": [16]}},
        "caption": {"kind": "text", "latent_dim": 4,
                    "options": {"max_length": 8, "min_frequency": 1, "embed_dim": 8, "channels": 8, "depth": 1}},
    },
    "diffusion": {"score_net": {"width": 16, "blocks": 1, "time_embed": 8}},
    "sampling": {"sampler": "ddim", "steps": 2},
}


@pytest.fixture(scope="module")
def pipe() -> MLDPipeline:
    pytest.importorskip("mmlatent_text")
    return untrained_pipeline(RECIPE)


@pytest.fixture
def gray():
    return get_registry().modality("image").build("gray", {"channels": 1, "size": 8}, 4)


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


PIXELS = np.random.default_rng(0).integers(0, 256, size=(3, 1, 8, 8), dtype=np.uint8)


# ------------------------------------------------------------------------------------- batches
def test_uint8_and_bool_batches_give_the_output_of_the_equivalent_float_batch(pipe):
    pixels = torch.from_numpy(PIXELS)
    as_float = pixels.float() / 255
    reference = pipe.generate(given={"gray": as_float}, seed=5)
    out = pipe.generate(given={"gray": pixels}, seed=5)
    assert out["gray"].dtype == torch.float32 and torch.equal(out["gray"], as_float)
    assert torch.equal(out["caption"], reference["caption"])
    mask = pixels > 127
    assert torch.equal(pipe.generate(given={"gray": mask}, seed=5)["caption"],
                       pipe.generate(given={"gray": mask.float()}, seed=5)["caption"])
    assert torch.equal(pipe.encode({"gray": as_float.double()})["gray"], pipe.encode({"gray": pixels})["gray"])


@pytest.mark.parametrize("batch, message", [
    (torch.from_numpy(PIXELS).float(), r"modality 'gray': float pixels must lie in \[0, 1\], got values in "
                                       r"\[\d+, 2\d\d\]"),
    (torch.full((2, 1, 8, 8), -0.5), r"modality 'gray': float pixels must lie in \[0, 1\], got values in "
                                     r"\[-0.5, -0.5\]"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.int64), r"modality 'gray': expected float32 pixels in \[0, 1\], uint8 "
                                                 r"\(0..255\) or bool, got torch.int64"),
    (torch.zeros(2, 8, 8, dtype=torch.uint8), r"modality 'gray': expected shape \(N, 1, 8, 8\), got \(2, 8, 8\)"),
    (PIXELS, r"modality 'gray': expected a torch tensor of shape \(N, 1, 8, 8\), got ndarray"),
    (torch.full((2, 1, 8, 8), float("nan")), "modality 'gray': the batch holds 128 NaN or infinite"),
])
def test_bad_image_batches_name_the_modality(pipe, batch, message):
    with pytest.raises(ValueError, match=message):
        pipe.generate(given={"gray": batch})


def test_caption_ids_out_of_the_vocabulary_are_value_errors(pipe):
    size = len(pipe.modalities["caption"].vocabulary)
    ids = torch.zeros(2, 8, dtype=torch.long)
    ids[1, 3] = size
    with pytest.raises(ValueError, match=rf"modality 'caption': token ids must lie in \[0, {size}\)"):
        pipe.generate(given={"caption": ids})
    with pytest.raises(ValueError, match="modality 'caption': expected integer token ids"):
        pipe.encode({"caption": ids.float()})
    ids[1, 3] = size - 1
    assert pipe.generate(given={"caption": ids.int()}, seed=0)["caption"].dtype == torch.long


def test_prepare_batch_reads_uint8_like_preprocess(gray):
    converted = gray.prepare_batch(torch.from_numpy(PIXELS))
    assert torch.equal(converted, torch.stack([gray.preprocess(p[0]) for p in PIXELS]))
    ones = torch.ones(1, 1, 8, 8)
    assert gray.prepare_batch(ones) is ones  # data space: returned as it is
    almost = ones + 1e-6  # rounding beyond 1 is clamped, not an error
    assert torch.equal(gray.prepare_batch(almost), ones)


# --------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("name, content, message", [
    ("cut.png", _png_bytes(PIXELS[0, 0])[:60], "cannot read 'cut.png' as an image: truncated or corrupt"),
    ("half.png", _png_bytes(PIXELS[0, 0])[:80], "cannot read 'half.png' as an image: truncated or corrupt"),
    ("empty.png", b"", "cannot read 'empty.png' as an image: the file is empty"),
    ("notes.png", b"a bird with red wings\n", "cannot read 'notes.png' as an image: not a PNG or JPEG file"),
    ("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 40, "cannot read 'photo.jpg' as an image"),
    ("cut.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|u1'", "cannot read 'cut.npy' as a .npy file"),
])
def test_unreadable_files_name_the_file(gray, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"modality 'gray': {message}"):
        gray.read_file(path)


def test_truncated_png_in_sample_command(pipe, tmp_path, monkeypatch, capsys):
    path = tmp_path / "digit.png"
    path.write_bytes(_png_bytes(PIXELS[0, 0])[:80])  # 8 x 8 random pixels take ~130 bytes
    monkeypatch.setattr("mmlatent.sample.load_model", lambda *a, **k: pipe)
    assert cli_main(["sample", "RUN", "--given", f"gray={path}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "modality 'gray': cannot read 'digit.png' as an image: truncated or corrupt" in err
    assert "Traceback" not in err


def test_float_arrays_outside_the_unit_range_are_errors_naming_the_file(gray, tmp_path):
    np.save(tmp_path / "bytes.npy", PIXELS.astype(np.float32))  # 0..255 as floats: not clamped to white
    with pytest.raises(ValueError, match=r"float pixels must lie in \[0, 1\], got values in \[.*\] in 'bytes.npy'"):
        gray.read_file(tmp_path / "bytes.npy")
    nan = np.zeros((2, 8, 8), np.float32)
    nan[1, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(ValueError, match="modality 'gray': the batch holds 1 NaN or infinite value.*'nan.npy'"):
        gray.read_file(tmp_path / "nan.npy")
    np.save(tmp_path / "unit.npy", PIXELS.astype(np.float32) / 255)
    assert torch.allclose(gray.read_file(tmp_path / "unit.npy"), torch.from_numpy(PIXELS).float() / 255)
