"""The VAE families on incomplete data (``data.missing``): MultiVae's masks leave missing values out."""

from __future__ import annotations

import pytest
import torch
import yaml
from mmlatent.cli import main as cli_main
from mmlatent.model import load_model
from mmlatent_baselines.testing import tiny_recipe
from mmlatent_baselines.train import VAEObjective

FAMILIES = ["mvae", "mmvae", "mopoe", "nexus", "mvtcae"]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_on_incomplete_data(family, tmp_path):
    recipe = tiny_recipe(family, steps=3, batch_size=32)
    recipe["data"]["missing"] = {"rate": {"gray": 0.5, "color": 0.5, "caption": 0.5}, "seed": 1}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    assert cli_main(["train", str(path), "--output", str(tmp_path / "run"), "--no-progress", "--no-eval"]) == 0
    out = load_model(tmp_path / "run").generate(n=2, seed=0)
    assert set(out) == {"gray", "color", "caption"}


def test_masked_values_do_not_change_the_loss(tiny):
    """The loss of a batch with a masked modality does not depend on the placeholder values."""
    from mmlatent_baselines.families import build_model
    from mmlatent_baselines.train import family_options
    from mmlatent.recipe import parse_recipe

    recipe = parse_recipe(tiny_recipe("mvtcae", steps=1, batch_size=16))
    torch.manual_seed(0)
    model = build_model("mvtcae", recipe, family_options(recipe), tiny.modalities).model
    objective = VAEObjective(model).eval()
    masks = {name: torch.ones(16, dtype=torch.bool) for name in tiny.batch}
    masks["color"][:8] = False
    changed = dict(tiny.batch, color=tiny.batch["color"].clone())
    changed["color"][:8] = torch.rand_like(changed["color"][:8])
    losses = []
    for data in (tiny.batch, changed):
        torch.manual_seed(1)
        losses.append(float(objective(data, epoch=1, batch_ratio=0.0, masks=masks).detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    torch.manual_seed(1)
    assert float(objective(changed, epoch=1, batch_ratio=0.0).detach()) != pytest.approx(losses[1], rel=1e-6)
