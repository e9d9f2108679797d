"""The shared modality contract, plus registration of the ``text`` kind through the entry point."""

from __future__ import annotations

import importlib.metadata

import pytest
from mmlatent.testing import ModalityContract
from pydantic import ValidationError


class TestTextModality(ModalityContract):
    kind = "text"
    options = {"max_length": 12, "min_frequency": 1, "embed_dim": 16, "channels": 32, "depth": 2}
    latent_dim = 8
    modality_name = "caption"

    def raw_values(self):
        return ["a handwritten seven", "the digit 7 written by hand", "This is a THREE, drawn in ink.", ""]

    def test_read_file_reads_back_what_render_writes(self, tmp_path):
        """The ``.txt`` format skips blank lines, so the empty caption cannot come back: the others do."""
        modality = self.make_modality()
        batch = modality.collate([modality.preprocess(value) for value in self.raw_values() if value])
        paths = [path for path in modality.render(batch, tmp_path / "captions") if path.suffix == ".txt"]
        self.assert_reads_back(modality, paths, batch)


def test_entry_point_is_declared():
    entry_points = [ep for ep in importlib.metadata.entry_points(group="mmlatent") if ep.name == "text"]
    assert [ep.value for ep in entry_points] == ["mmlatent_text.plugin"]
    assert entry_points[0].dist.name == "mmlatent-text"


def test_registry_builds_text_with_defaults():
    from mmlatent.plugins import get_registry

    spec = get_registry().modality("text")
    modality = spec.build("caption", {}, 32)
    assert modality.needs_fit and modality.item_shape == (32,)
    o = modality.options
    assert (o.max_length, o.min_frequency, o.max_vocab, o.lowercase, o.strip_punctuation) == (32, 3, None, True, False)
    assert (o.embed_dim, o.channels, o.depth, o.pad_weight) == (128, 256, 3, 0.0)


@pytest.mark.parametrize(
    "bad", [{"max_length": 1}, {"min_frequency": 0}, {"max_vocab": 0}, {"pad_weight": -1}, {"channels": "many"}]
)
def test_invalid_option_values_are_rejected(bad):
    from mmlatent.plugins import get_registry

    with pytest.raises(ValidationError):
        get_registry().modality("text").build("caption", bad, 8)
