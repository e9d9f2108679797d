"""Training on incomplete samples: ``data.missing``, presence masks, and the Gaussian closed form."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from gaussian_fixtures import check_conditional, check_joint, gaussian_recipe, write_gaussian_data
from safetensors.torch import load_file

from mmlatent import MLDPipeline
from mmlatent.build import build_dataset
from mmlatent.cli import main as cli_main
from mmlatent.data import ModalityBatches, collate_items
from mmlatent.diffusion import LatentLayout, VPSDE
from mmlatent.diffusion.loss import masked_multitime_loss_terms
from mmlatent.diffusion.masking import sample_given_mask
from mmlatent.missing import IncompleteDataset, draw_presence, field_presence, missing_probabilities
from mmlatent.plugins import get_registry
from mmlatent.recipe import RecipeError, parse_recipe

HALF_MISSING = {"rate": {"a": 0.5, "b": 0.5}, "seed": 3}


def _train(recipe: dict, root: Path, name: str = "run") -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert cli_main(["train", str(path), "--output", str(root / name), "--no-progress"]) == 0
    return root / name


# ------------------------------------------------------------------------------------ drawing
def test_presence_never_empty_and_rates_are_the_conditioned_ones():
    probabilities = torch.full((30000, 2), 0.5, dtype=torch.float64)
    present = draw_presence(probabilities, seed=0)
    assert bool(present.any(1).all())
    complete = present.all(1).double().mean()
    only_a = (present[:, 0] & ~present[:, 1]).double().mean()
    # independent draws conditioned on keeping a modality: 1/3 complete, 1/3 with a only, 1/3 with b only
    assert abs(float(complete) - 1 / 3) < 0.015 and abs(float(only_a) - 1 / 3) < 0.015
    assert torch.equal(present, draw_presence(probabilities, seed=0))
    assert not torch.equal(present, draw_presence(probabilities, seed=1))


def test_presence_by_label_and_zero_rate():
    labels = torch.arange(8000) % 4
    probabilities = missing_probabilities(["a", "b", "c"], {"a": 0.3}, {"b": {1: 0.9, 2: 0.0}}, labels, 8000)
    present = draw_presence(probabilities, seed=0)
    assert bool(present[:, 2].all())  # no rate: never missing
    missing_b = ~present[:, 1]
    assert abs(float(missing_b[labels == 1].double().mean()) - 0.9) < 0.03
    assert not bool(missing_b[labels != 1].any())
    assert abs(float((~present[:, 0]).double().mean()) - 0.3) < 0.03
    with pytest.raises(ValueError, match="need a labelled dataset"):
        missing_probabilities(["a"], {}, {"a": {0: 0.5}}, None, 10)


def test_all_but_certain_loss_keeps_one_modality():
    probabilities = torch.full((500, 3), 0.999, dtype=torch.float64)
    present = draw_presence(probabilities, seed=0)
    assert bool(present.any(1).all())


# ------------------------------------------------------------------------------------- recipe
def _recipe(tmp_path: Path, **overrides) -> dict:
    return gaussian_recipe(write_gaussian_data(tmp_path / "g.safetensors", n=400), **overrides)


def test_recipe_missing_section_is_validated(tmp_path):
    recipe = _recipe(tmp_path, **{"data.missing": {"rate": {"a": 1.0, "nope": 0.2}}})
    with pytest.raises(RecipeError) as error:
        parse_recipe(recipe)
    message = error.value.render()
    assert "rate.a: a missing rate is a probability in [0, 1), got 1.0" in message
    recipe["data"]["missing"] = {"rate": {"nope": 0.2}}
    with pytest.raises(RecipeError, match="data.missing.rate.nope: no modality 'nope'"):
        parse_recipe(recipe)
    recipe["data"]["missing"] = {"rate": {"a": 0.2}, "splits": ["test"]}
    with pytest.raises(RecipeError, match="data.missing.splits"):
        parse_recipe(recipe)
    recipe["data"]["missing"] = {}
    with pytest.raises(RecipeError, match="give `rate` or `by_label`"):
        parse_recipe(recipe)


def test_recipe_without_missing_resolves_to_the_same_text(tmp_path):
    recipe = parse_recipe(_recipe(tmp_path))
    assert "missing" not in yaml.safe_load(recipe.to_yaml())["data"]
    recipe = parse_recipe(_recipe(tmp_path, **{"data.missing": {"rate": {"a": 0.25}}}))
    assert "missing" in yaml.safe_load(recipe.to_yaml())["data"]


def test_build_dataset_hides_fields_of_train_only(tmp_path):
    recipe = parse_recipe(_recipe(tmp_path, **{"data.missing": HALF_MISSING}))
    train, test = build_dataset(recipe, "train"), build_dataset(recipe, "test")
    assert isinstance(train, IncompleteDataset) and not isinstance(test, IncompleteDataset)
    present = field_presence(train, ["a", "b"])
    assert bool(present.any(1).all()) and not bool(present.all())
    first_missing = int((~present[:, 1]).nonzero()[0])
    assert train[first_missing]["b"] is None and train[first_missing]["a"] is not None
    assert "label" in train[first_missing]
    assert torch.equal(present, build_dataset(recipe, "train").present)  # reproducible


def test_complete_only_keeps_the_complete_items(tmp_path):
    recipe = parse_recipe(_recipe(tmp_path, **{"data.missing": {**HALF_MISSING, "complete_only": True}}))
    incomplete = build_dataset(parse_recipe(_recipe(tmp_path, **{"data.missing": HALF_MISSING})), "train")
    complete = build_dataset(recipe, "train")
    kept = incomplete.present.all(1).nonzero().squeeze(1).tolist()
    assert len(complete) == len(kept) and 0 < len(kept) < len(incomplete)
    assert all(complete[i]["a"] is not None and complete[i]["b"] is not None for i in range(len(complete)))
    assert torch.equal(torch.as_tensor(complete[3]["a"]), torch.as_tensor(incomplete[kept[3]]["a"]))


def test_collate_fills_missing_values_and_reports_presence(tmp_path):
    recipe = parse_recipe(_recipe(tmp_path, **{"data.missing": HALF_MISSING}))
    registry = get_registry()
    modalities = {name: registry.modality(cfg.kind).build(name, cfg.options, cfg.latent_dim)
                  for name, cfg in recipe.modalities.items()}
    train = build_dataset(recipe, "train")
    view = ModalityBatches(train, modalities, {"a": "a", "b": "b"})
    batch = collate_items([view[i] for i in range(40)], modalities)
    assert batch["present"].shape == (40, 2)
    assert torch.equal(batch["present"], train.present[:40])
    assert bool((batch["b"][~batch["present"][:, 1]] == 0).all())
    only_a = [i for i in range(len(train)) if not bool(train.present[i, 1])][:5]
    lone = collate_items([view[i] for i in only_a], modalities)
    assert "b" not in lone and lone["a"].shape == (5, 2)


def test_complete_fraction_batches():
    from mmlatent.train import step_indices

    complete = torch.tensor([3, 7, 11, 19, 23])
    idx = step_indices(5, 40, 16, seed=2, rank=0, world=1, complete_rows=complete, complete_batch=8)
    assert idx.shape == (16,) and set(idx[:8].tolist()) <= set(complete.tolist())
    assert torch.equal(idx, step_indices(5, 40, 16, 2, 0, 1, complete, 8))  # a function of the step: resumable
    halves = [step_indices(5, 40, 16, 2, rank, 2, complete, 8) for rank in (0, 1)]
    assert sorted(torch.cat(halves).tolist()) == sorted(idx.tolist())  # two processes share the global batch
    only = step_indices(5, 40, 16, 2, 0, 1, complete, 16)
    assert set(only.tolist()) <= set(complete.tolist())
    recipe = parse_recipe(gaussian_recipe(Path("x.safetensors"), **{"diffusion.train.complete_fraction": 0.5}),
                          check_plugins=False)
    assert recipe.diffusion.train.complete_fraction == 0.5
    assert "complete_fraction" not in parse_recipe(gaussian_recipe(Path("x.safetensors")), check_plugins=False).to_yaml()


# --------------------------------------------------------------------- conditioning sets, loss
def test_given_sets_are_drawn_among_present_modalities():
    generator = torch.Generator().manual_seed(0)
    present = torch.tensor([[True, True, True, False]] * 20000 + [[True, False, False, False]] * 1000)
    given = sample_given_mask(len(present), 4, d=0.6, generator=generator, present=present)
    assert not bool((given & ~present).any())
    assert not bool(given[20000:].any())  # one present modality: always a joint step
    rows = given[:20000]
    conditional = rows.any(1)
    assert abs(float(conditional.double().mean()) - 0.6) < 0.02
    assert not bool((rows[:, :3].all(1)).any())  # never every present modality
    patterns = torch.unique(rows[conditional, :3], dim=0, return_counts=True)[1]
    assert len(patterns) == 6  # the 2^3 - 2 proper non-empty subsets, uniformly
    assert float(patterns.max() - patterns.min()) / float(patterns.float().mean()) < 0.12
    with pytest.raises(ValueError, match="per_batch"):
        sample_given_mask(4, 4, 0.5, per_batch=True, present=present[:4])


def test_loss_never_diffuses_or_gives_a_missing_modality():
    layout = LatentLayout([2, 3, 1], ["a", "b", "c"])
    sde = VPSDE()
    calls = {}

    def net(x, tau):
        calls["tau"] = tau
        return torch.zeros_like(x)

    absent = torch.tensor([[False, True, False], [True, False, False], [False, False, True]]).repeat(200, 1)
    z = torch.randn(600, 6)
    terms = masked_multitime_loss_terms(net, z, sde, layout, d=0.5, generator=torch.Generator().manual_seed(0),
                                        absent=absent)
    assert not bool((terms.given & absent).any())
    assert torch.equal(terms.absent, absent)
    assert bool((calls["tau"][absent] == sde.T).all())
    diffused = ~(terms.given | absent)
    assert bool(diffused.any(1).all())
    # without missing values the loss is unchanged (same draws, same numbers)
    plain = masked_multitime_loss_terms(net, z, sde, layout, d=0.5, generator=torch.Generator().manual_seed(0))
    again = masked_multitime_loss_terms(net, z, sde, layout, d=0.5, generator=torch.Generator().manual_seed(0),
                                        absent=None)
    assert torch.equal(plain.per_sample, again.per_sample)


# ------------------------------------------------------------------------- the trained model
@pytest.fixture(scope="module")
def incomplete_run(tmp_path_factory) -> Path:
    """The complete-data closed-form run of test_train_end_to_end, on data with half of each
    modality missing (drawn independently; items left with nothing drawn again)."""
    root = tmp_path_factory.mktemp("gauss_missing")
    data = write_gaussian_data(root / "gauss.safetensors", n=4000)
    recipe = gaussian_recipe(data, **{
        "data.missing": HALF_MISSING,
        "modalities.b": {"kind": "vector", "latent_dim": 3,
                         "options": {"arch": "mlp", "size": 3, "hidden": [64, 64]},
                         "train": {"steps": 600, "lr": 3e-3, "batch_size": 256}},
        "diffusion.train": {"steps": 2000, "lr": 2e-3, "batch_size": 256, "ema": 0.995, "checkpoint_every": 1000},
        "diffusion.score_net": {"width": 128, "blocks": 2, "time_embed": 64},
    })
    return _train(recipe, root)


def test_latent_cache_stores_presence_and_statistics_use_present_items(incomplete_run: Path):
    cached = load_file(str(incomplete_run / "latents" / "train.safetensors"))
    present = cached["present"]
    assert present.dtype == torch.bool and bool(present.any(1).all()) and not bool(present.all())
    assert bool((cached["b"][~present[:, 1]] == 0).all())
    assert "present" not in load_file(str(incomplete_run / "latents" / "test.safetensors"))
    stats = load_file(str(incomplete_run / "latent_stats.safetensors"))
    a = cached["a"][present[:, 0]].double()
    torch.testing.assert_close(stats["a.mean"].double(), a.mean(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(stats["a.std"].double(), a.std(0, unbiased=False), rtol=0, atol=1e-5)
    log = (incomplete_run / "train.log").read_text()
    assert f"stage 1 b: 600 steps on {int(present[:, 1].sum())} items" in log


def test_incomplete_conditional_matches_closed_form(incomplete_run: Path):
    check_conditional(MLDPipeline.load(incomplete_run))


def test_incomplete_joint_matches_closed_form(incomplete_run: Path):
    check_joint(MLDPipeline.load(incomplete_run))


def test_training_with_a_complete_fraction_runs(tmp_path):
    recipe = _recipe(tmp_path, **{"data.missing": HALF_MISSING, "diffusion.train.steps": 20,
                                  "diffusion.train.complete_fraction": 0.5})
    run = _train(recipe, tmp_path)
    assert "complete_fraction: 0.5" in (run / "recipe.yaml").read_text()
    assert MLDPipeline.load(run).generate(n=3, steps=4)["b"].shape == (3, 3)
