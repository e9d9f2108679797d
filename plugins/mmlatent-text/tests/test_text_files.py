"""Rendering captions (.txt + .png) and reading .txt / id files for --given."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_render_writes_txt_and_png(text, captions, tmp_path):
    batch = text.collate([text.preprocess(c) for c in captions[:6]])
    paths = text.render(batch, tmp_path / "samples" / "joint.caption")
    assert [p.name for p in paths] == ["joint.caption.txt", "joint.caption.png"]
    txt, png = paths
    assert txt.read_text(encoding="utf-8").splitlines() == captions[:6]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 500
    assert image[..., :3].std() > 0  # something is drawn


def test_render_many_and_empty_captions(text, captions, tmp_path):
    ids = text.collate([text.preprocess(c) for c in captions * 3] + [text.preprocess("")])
    txt, png = text.render(ids, tmp_path / "many")
    lines = txt.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 121 + 1 and lines[-2] == "" and lines[-1] == ""
    assert png.stat().st_size > 0


def test_read_file_txt_gives_the_preprocessed_ids(text, captions, tmp_path):
    path = tmp_path / "given.txt"
    path.write_text("a handwritten seven\n\n  The digit 7 written by hand  \nzebra\n", encoding="utf-8")
    batch = text.read_file(path)
    assert batch.dtype == torch.long and tuple(batch.shape) == (3, 32)
    assert torch.equal(batch[0], text.preprocess("a handwritten seven"))
    assert text.to_values(batch) == ["a handwritten seven", "the digit 7 written by hand", "<unk>"]


def test_render_then_read_file_round_trips(text, captions, tmp_path):
    batch = text.collate([text.preprocess(c) for c in captions])
    txt, _ = text.render(batch, tmp_path / "out")
    assert torch.equal(text.read_file(txt), batch)


def test_read_file_errors_name_the_modality(text, tmp_path):
    with pytest.raises(FileNotFoundError, match="'caption'.*missing.txt"):
        text.read_file(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="'caption'.*no caption"):
        text.read_file(empty)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError, match=r"\(N, 32\)"):
        text.read_file(wrong)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n")
    with pytest.raises(ValueError, match="cannot read"):
        text.read_file(other)


def test_read_file_npy_ids(text, captions, tmp_path):
    batch = text.collate([text.preprocess(c) for c in captions[:3]])
    path = tmp_path / "ids.npy"
    np.save(path, batch.numpy())
    assert torch.equal(text.read_file(path), batch)
    one = tmp_path / "one.npy"
    np.save(one, batch[0].numpy())
    assert torch.equal(text.read_file(one), batch[:1])
