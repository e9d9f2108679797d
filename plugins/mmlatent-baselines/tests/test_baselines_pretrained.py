"""A VAE family shares like MLD: save_pretrained -> from_pretrained (called on MLDPipeline: the
recipe's family decides) generates identical samples; the folder holds the family's weights
(``model/<family>.safetensors``) and the sample grids, not the checkpoints."""

from __future__ import annotations

import json

import huggingface_hub
import torch
import yaml
from mmlatent import MLDPipeline
from mmlatent.cli import main as cli_main
from mmlatent.model import load_model
from mmlatent_baselines.model import VAEModel
from mmlatent_baselines.testing import tiny_recipe


def test_a_vae_family_round_trips(tmp_path):
    family = "mvtcae"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(family, steps=2, batch_size=16), sort_keys=False))
    run = tmp_path / "run"
    assert cli_main(["train", str(recipe), "--output", str(run), "--no-progress", "--no-eval"]) == 0
    model = load_model(run)
    folder = model.save_pretrained(tmp_path / "model")

    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"README.md", "manifest.json", "recipe.yaml", "plugins.json", f"model/{family}.safetensors",
            "modalities/caption.json", "samples/joint_gray.png"} <= files
    assert {p.split("/")[0] for p in files} <= {"README.md", "manifest.json", "recipe.yaml", "plugins.json",
                                                "model", "modalities", "samples"}
    assert {p.rsplit(".", 1)[-1] for p in files} <= {"safetensors", "json", "yaml", "md", "png"}
    assert json.loads((folder / "manifest.json").read_text())["exported"]["requires"].keys() >= {
        "mmlatent", "mmlatent-baselines", "mmlatent-image", "mmlatent-text"}
    card = huggingface_hub.ModelCard.load(folder / "README.md")
    assert card.data.library_name == "mmlatent" and {family, "image", "text"} <= set(card.data.tags)
    assert "pip install mmlatent mmlatent-baselines mmlatent-image mmlatent-text" in card.text

    loaded = MLDPipeline.from_pretrained(folder)
    assert isinstance(loaded, VAEModel) and loaded.family == family
    for given in [None, {"gray": model.collate([model.dataset("test")[i] for i in range(4)])["gray"]}]:
        kwargs = {"given": given} if given else {"n": 4}
        first, again = model.generate(seed=9, **kwargs), loaded.generate(seed=9, **kwargs)
        assert first.keys() == again.keys()
        for name in first:
            assert torch.equal(first[name], again[name]), name
