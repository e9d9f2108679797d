"""Every family: build, a few training steps, joint and conditional generation, seeds, weights files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mmlatent.diffusion.plan import SamplingPlan
from mmlatent_baselines.families import build_model
from mmlatent_baselines.model import VAEModel, read_weights, save_weights
from mmlatent_baselines.options import FAMILY_OPTIONS
from mmlatent_baselines.testing import SMALL_OPTIONS
from mmlatent_baselines.train import VAEObjective

FAMILIES = tuple(FAMILY_OPTIONS)


def _build(family, tiny, small_options=SMALL_OPTIONS, seed=0):
    options = FAMILY_OPTIONS[family].model_validate(small_options[family])
    torch.manual_seed(seed)
    return options, build_model(family, tiny.recipe, options, tiny.modalities)


def _train_steps(built, batch, steps=3):
    objective = VAEObjective(built.model)
    optimizer = torch.optim.Adam([p for p in built.model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for step in range(steps):
        torch.manual_seed(step)
        np.random.seed(step)
        loss = objective(batch, epoch=50, batch_ratio=0.0)  # after the KL warm-up
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    unused = [n for n, p in built.model.named_parameters() if p.requires_grad and p.grad is None]
    return losses, unused


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_generates_and_round_trips(family, tiny, tmp_path):
    options, built = _build(family, tiny)
    assert built.likelihoods == {"gray": "laplace", "color": "laplace", "caption": "categorical"}
    losses, unused = _train_steps(built, tiny.batch)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert not unused  # DDP needs no find_unused_parameters

    model = VAEModel(tiny.recipe, tiny.modalities, family, built)
    assert model.plan() == SamplingPlan(sampler=family) and model.plan(family).sampler == family

    joint = model.generate(n=5, seed=3)
    assert model.last_nfe == 1
    assert {k: tuple(v.shape) for k, v in joint.items()} == {"gray": (5, 1, 16, 16), "color": (5, 3, 16, 16),
                                                             "caption": (5, 8)}
    assert joint["caption"].dtype == torch.long and 0 <= float(joint["gray"].min()) <= float(joint["gray"].max()) <= 1
    assert model.generate(n=1, seed=0)["color"].shape == (1, 3, 16, 16)

    given = {"gray": tiny.batch["gray"][:6]}
    cond = model.generate(given=given, seed=4, plan=model.plan())
    assert cond["gray"] is given["gray"] or torch.equal(cond["gray"], given["gray"])
    assert cond["color"].shape == (6, 3, 16, 16) and cond["caption"].shape == (6, 8)
    two = model.generate(given={"gray": tiny.batch["gray"][:6], "caption": tiny.batch["caption"][:6]}, seed=4)
    assert two["color"].shape == (6, 3, 16, 16)

    # same seed, same samples; another seed, other samples; the caller's RNG untouched
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    again = model.generate(n=5, seed=3)
    assert torch.equal(torch.rand(1), before)
    for name in joint:
        assert torch.equal(joint[name], again[name]), name
    assert not torch.equal(model.generate(n=5, seed=4)["gray"], joint["gray"])
    assert torch.equal(model.generate(given=given, seed=4)["color"], cond["color"])
    assert [v.shape[0] for v in model.generate(given=given, seed=4, batch_size=4).values()] == [6, 6, 6]

    # safetensors round trip: a model rebuilt from the recipe and the file generates the same
    path = tmp_path / f"{family}.safetensors"
    save_weights(path, family, options, built)
    tensors, metadata = read_weights(path)
    assert metadata["family"] == family and FAMILY_OPTIONS[family].model_validate_json(metadata["options"]) == options
    _, rebuilt = _build(family, tiny, seed=99)
    rebuilt.model.load_state_dict(tensors, strict=True)
    reloaded = VAEModel(tiny.recipe, tiny.modalities, family, rebuilt)
    for seed_, kwargs in ((3, {"n": 5}), (4, {"given": given})):
        a, b = model.generate(seed=seed_, **kwargs), reloaded.generate(seed=seed_, **kwargs)
        for name in a:
            assert torch.equal(a[name], b[name]), (family, name)


def test_mopoe_conditional_on_one_modality(tiny):
    """MoPoE runs every encoder: the absent ones get zeros, which do not change the result."""
    _, built = _build("mopoe", tiny)
    model = VAEModel(tiny.recipe, tiny.modalities, "mopoe", built)
    out = model.generate(given={"caption": tiny.batch["caption"][:4]}, seed=1)
    assert out["gray"].shape == (4, 1, 16, 16) and out["color"].shape == (4, 3, 16, 16)
    from pythae.data.datasets import DatasetOutput

    data = {"caption": tiny.batch["caption"][:4], "gray": torch.rand(4, 1, 16, 16), "color": torch.rand(4, 3, 16, 16)}
    torch.manual_seed(1)
    np.random.seed(1)
    direct = model.vae.predict(DatasetOutput(data=data), cond_mod=["caption"], gen_mod=["gray"])
    torch.testing.assert_close(model.vae.decoders["gray"].to_data(direct["gray"]), out["gray"])


def test_bad_requests_are_refused(tiny):
    _, built = _build("mvtcae", tiny)
    model = VAEModel(tiny.recipe, tiny.modalities, "mvtcae", built)
    for kwargs, match in [({"sampler": "ddim"}, "only sampler"), ({"steps": 10}, "no steps"),
                          ({"guidance": {"gray": 2.0}}, "guidance"), ({"eta": 1.0}, "sampler options")]:
        with pytest.raises(ValueError, match=match):
            model.plan(**kwargs)
    with pytest.raises(ValueError, match="steps"):
        model.generate(n=2, plan=SamplingPlan(sampler="mvtcae", steps=5))
    with pytest.raises(ValueError, match="unknown modality 'depth'"):
        model.generate(given={"depth": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="'color'"):
        model.generate(given={"color": torch.zeros(2, 1, 16, 16)})
    with pytest.raises(ValueError, match="token ids"):
        model.generate(given={"caption": torch.full((2, 8), 10_000)})
    with pytest.raises(ValueError, match="nothing to generate"):
        model.generate(given=dict(tiny.batch))
    with pytest.raises(ValueError, match="takes n, given"):
        model.generate(n=2, sampler="mvtcae")
    with pytest.raises(ValueError, match="n must be"):
        model.generate()


def test_options_must_name_recipe_modalities(tiny):
    options = FAMILY_OPTIONS["nexus"].model_validate({"modality_latent_dims": {"depth": 3}})
    with pytest.raises(ValueError, match="modality_latent_dims: unknown modality 'depth'"):
        build_model("nexus", tiny.recipe, options, tiny.modalities)
    options = FAMILY_OPTIONS["mvae"].model_validate({"likelihood": {"gray": "categorical"}})
    with pytest.raises(ValueError, match="'gray'.*discrete"):
        build_model("mvae", tiny.recipe, options, tiny.modalities)


def test_nexus_latents_default_to_the_recipe_latent_dims(tiny):
    small = {"nexus": {**SMALL_OPTIONS["nexus"], "modality_latent_dims": {"color": 7}}}
    _, built = _build("nexus", tiny, small)
    dims = {name: nets.encoder.latent_dim for name, nets in built.networks.items()}
    assert dims == {"gray": 4, "color": 7, "caption": 4}
    assert built.model.model_config.modalities_specific_dim == dims
