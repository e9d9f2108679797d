"""Token-id batches and caption files that users give: integer ids within the vocabulary pass (as
long), anything else is a ValueError naming the modality and the valid range or the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture
def ids(text, captions):
    """Ids ``(3, 32)`` of three training captions."""
    return text.collate([text.preprocess(c) for c in captions[:3]])


def test_valid_ids_pass_and_integer_dtypes_become_long(text, ids):
    assert text.prepare_batch(ids) is ids
    for dtype in (torch.int32, torch.int16, torch.uint8):
        converted = text.prepare_batch(ids.to(dtype))
        assert converted.dtype == torch.long and torch.equal(converted, ids)


@pytest.mark.parametrize("position, value", [((0, 0), -1), ((2, 5), "size"), ((1, 31), 10_000)])
def test_ids_outside_the_vocabulary_name_the_valid_range(text, ids, position, value):
    size = len(text.vocabulary)
    ids[position] = size if value == "size" else value
    with pytest.raises(ValueError, match=rf"modality 'caption': token ids must lie in \[0, {size}\) "
                                         r"\(the vocabulary size\), got ids in \[-?\d+, \d+\]"):
        text.prepare_batch(ids)


@pytest.mark.parametrize("convert, message", [
    (lambda x: x.float(), r"modality 'caption': expected integer token ids \(N, 32\), got torch.float32"),
    (lambda x: x > 0, r"modality 'caption': expected integer token ids \(N, 32\), got torch.bool"),
    (lambda x: x[:, :8], r"modality 'caption': expected shape \(N, 32\), got \(3, 8\)"),
    (lambda x: x.tolist(), r"modality 'caption': expected a torch tensor of shape \(N, 32\), got list"),
    (lambda x: ["a bird"], "modality 'caption': expected a torch tensor"),
])
def test_non_id_batches_name_the_modality(text, ids, convert, message):
    with pytest.raises(ValueError, match=message):
        text.prepare_batch(convert(ids))


def test_id_files_are_checked_like_batches(text, ids, tmp_path):
    size = len(text.vocabulary)
    ids[0, 0] = size + 3
    np.save(tmp_path / "ids.npy", ids.numpy())
    with pytest.raises(ValueError, match=rf"token ids must lie in \[0, {size}\).*\(in 'ids.npy'\)"):
        text.read_file(tmp_path / "ids.npy")
    np.save(tmp_path / "float.npy", ids.numpy().astype(np.float32))
    with pytest.raises(ValueError, match=r"expected integer token ids \(N, 32\), got torch.float32 \(in 'float.npy'\)"):
        text.read_file(tmp_path / "float.npy")
    (tmp_path / "cut.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(ValueError, match="modality 'caption': cannot read 'cut.npy' as a .npy file"):
        text.read_file(tmp_path / "cut.npy")


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", r"cannot read 'captions.txt' as captions: not UTF-8 text \(byte 0 is 0x89\)"),
    (b"a bird\x00\x00\x01", "cannot read 'captions.txt' as captions: binary data, not text"),
])
def test_caption_files_that_are_not_text_name_the_file(text, tmp_path, content, message):
    path = tmp_path / "captions.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"modality 'caption': {message}"):
        text.read_file(path)
