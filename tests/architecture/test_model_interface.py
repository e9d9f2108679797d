"""One model interface and one sampling plan: MLDPipeline implements GenerativeModel, and the rule
"the recipe's sampling settings belong to the recipe's sampler" lives in resolve_plan alone."""

from __future__ import annotations

import pytest
import torch
from gaussian_fixtures import gaussian_recipe, write_gaussian_data

from mmlatent.diffusion import SamplingPlan, resolve_plan
from mmlatent.model import GenerativeModel
from mmlatent.testing import untrained_pipeline

DEFAULT = SamplingPlan("ddim", 7, {"eta": 0.5, "grid": "logsnr"}, {"a": 1.5}, denoise_final=True)


def test_the_recipes_settings_belong_to_its_sampler():
    assert resolve_plan(DEFAULT) == DEFAULT
    assert resolve_plan(DEFAULT, steps=3).steps == 3
    assert resolve_plan(DEFAULT, options={"eta": 1.0}).options == {"eta": 1.0, "grid": "logsnr"}
    other = resolve_plan(DEFAULT, sampler="heun")
    assert other == SamplingPlan("heun")  # ddim's eta, steps, guidance and denoise_final stay with ddim
    exact = resolve_plan(DEFAULT, options={"eta": 0.0}, use_defaults=False)
    assert exact == SamplingPlan("ddim", None, {"eta": 0.0})
    assert resolve_plan(DEFAULT, options={"denoise_final": False}).denoise_final is False
    assert resolve_plan(DEFAULT, guidance={"b": 2.0}).guidance == {"a": 1.5, "b": 2.0}


def test_a_plan_is_frozen_and_records_itself():
    with pytest.raises(TypeError):
        DEFAULT.options["eta"] = 2.0  # type: ignore[index]
    assert DEFAULT.grid == "logsnr"
    assert DEFAULT.record() == {"sampler": "ddim", "steps": 7, "grid": "logsnr",
                                "options": {"eta": 0.5, "grid": "logsnr"}, "guidance": {"a": 1.5},
                                "denoise_final": True}


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    data = write_gaussian_data(tmp_path_factory.mktemp("gauss") / "gauss.safetensors", n=200)
    recipe = gaussian_recipe(data, **{"diffusion.score_net": {"width": 16, "blocks": 1, "time_embed": 8},
                                      "sampling": {"sampler": "ddim", "steps": 4, "options": {"eta": 1.0}}})
    return untrained_pipeline(recipe)


def test_the_pipeline_is_a_generative_model_and_samples_with_its_plan(pipe):
    assert isinstance(pipe, GenerativeModel)
    plan = pipe.plan()
    assert plan == SamplingPlan("ddim", 4, {"eta": 1.0})
    by_plan = pipe.generate(n=3, seed=5, plan=plan)
    by_settings = pipe.generate(n=3, seed=5)
    assert all(torch.equal(by_plan[name], by_settings[name]) for name in pipe.names)
    assert pipe.last_plan == plan and pipe.last_nfe == 4
    pipe.generate(n=2, sampler="heun", steps=2)
    assert pipe.last_plan == SamplingPlan("heun", 2)
    with pytest.raises(ValueError, match="either a plan or sampler settings"):
        pipe.generate(n=2, plan=plan, steps=3)
    with pytest.raises(ValueError, match="sampler option eta"):
        pipe.plan(eta="abc")
