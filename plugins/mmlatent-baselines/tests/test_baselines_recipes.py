"""The shipped baseline recipes (recipes/baselines/): each validates, uses the same data and the same
modalities (encoders/decoders) as the MLD recipe of its dataset, and carries the MLD paper's
appendix C.2 settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmlatent.cli import main as cli_main
from mmlatent.recipe import load_recipe

REPO = Path(__file__).resolve().parents[3]
FAMILIES = ("mvae", "mmvae", "mopoe", "nexus", "mvtcae")
DATASETS = ("mnist_svhn", "cub")
RECIPES = sorted((REPO / "recipes" / "baselines").glob("*.yaml"))

# appendix C.2 of the MLD paper, per dataset and family
C2 = {
    ("mnist_svhn", family): {"epochs": 150, "batch_size": 256, "lr": 1e-3,
                             **({"joint_latent_dim": 20, "modality_latent_dims": {"mnist": 16, "svhn": 64},
                                 "beta_modalities": 1.0, "beta_joint": 5.0} if family == "nexus"
                                else {"latent_dim": 20, "beta": 5.0}),
                             **({"alpha": 5 / 6} if family == "mvtcae" else {})}
    for family in FAMILIES
} | {
    ("cub", family): {"batch_size": 64, "lr": 5e-4 if family in ("mvae", "mvtcae", "mopoe") else 1e-3,
                      "likelihood": {"caption": "categorical", "image": "laplace"},
                      **({"joint_latent_dim": 64} if family == "nexus"
                         else {"latent_dim": 64, "beta": 1.0 if family == "mmvae" else 9.0})}
    for family in FAMILIES
}


def test_every_family_has_a_recipe_for_each_paper_dataset():
    assert {path.stem for path in RECIPES} == {f"{d}_{f}" for d in DATASETS for f in FAMILIES}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_baseline_recipe_validates_with_the_papers_settings(path: Path, capsys):
    assert cli_main(["validate", str(path)]) == 0, capsys.readouterr().err
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    dataset, family = path.stem.rsplit("_", 1)
    assert recipe.model.family == family
    for key, value in C2[(dataset, family)].items():
        assert recipe.model.options[key] == pytest.approx(value), f"{path.name}: model.options.{key}"
    mld = load_recipe(REPO / "recipes" / f"{dataset}.yaml")  # same data, same networks as MLD
    assert recipe.data == mld.data
    assert {n: (m.kind, m.options) for n, m in recipe.modalities.items()} == \
        {n: (m.kind, m.options) for n, m in mld.modalities.items()}
