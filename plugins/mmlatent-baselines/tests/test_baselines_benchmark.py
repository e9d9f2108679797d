"""benchmarks/baselines.py: the recipes it trains validate (same modalities for every family, the
paper's VAE settings), and its tables aggregate per-seed figures into mean +- sd."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts import load_script

from mmlatent.recipe import parse_recipe

REPO = Path(__file__).resolve().parents[3]
bench = load_script(REPO / "benchmarks" / "baselines.py")


@pytest.mark.parametrize("variant", ["pair", "caption"])
@pytest.mark.parametrize("family", ["mld", "mvae", "mmvae", "mopoe", "nexus", "mvtcae"])
def test_every_family_trains_the_same_modalities(variant, family):
    recipe = parse_recipe(bench.family_recipe(variant, family, seed=2, vae_steps=7))
    assert list(recipe.modalities) == list(bench.VARIANTS[variant]) and recipe.seed == 2
    assert recipe.model.family == family
    mld = parse_recipe(bench.family_recipe(variant, "mld", seed=2))
    assert {n: (m.kind, m.options) for n, m in recipe.modalities.items()} == \
        {n: (m.kind, m.options) for n, m in mld.modalities.items()}
    if family != "mld":
        assert recipe.model.options["steps"] == 7 and recipe.model.options["batch_size"] == 256
        key = "beta_joint" if family == "nexus" else "beta"
        assert recipe.model.options[key] == 5.0


def test_tables_give_mean_and_sd_over_seeds():
    per_seed = [{"coherence": {"joint": 0.5, "gray->color": 0.2}}, {"coherence": {"joint": 0.7, "gray->color": 0.4}}]
    stats = bench.aggregate(per_seed, "coherence")
    assert stats["joint"]["mean"] == pytest.approx(0.6) and stats["joint"]["sd"] == pytest.approx(0.1414, abs=1e-4)
    table = bench.markdown_table("pair", {"x": {"coherence": stats, "train_seconds": {"mean": 12.0, "sd": 0.0}}},
                                 "coherence")
    assert "| x | 60.0 ± 14.1 | 30.0 ± 14.1 | - | 12 |" in table
    assert bench.direction_order(("a", "b", "c"))[-1] == "a+b->c"
