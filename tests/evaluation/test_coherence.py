"""Coherence and per-condition Frechet distances on a fake pipeline with known answers."""

from __future__ import annotations

import time

import pytest
import torch

from mmlatent.evaluation.classifiers import (
    ClassifierSettings,
    load_or_train_classifiers,
)
from mmlatent.evaluation.coherence import (
    CoherenceEvaluator,
    batch_seed,
    clip_key,
    condition_key,
    conditioning_subsets,
)
from mmlatent.evaluation.data import EvaluationError, load_split


def _evaluator(pipe, **kwargs):
    test = load_split(pipe, "test")
    classifiers = load_or_train_classifiers(
        pipe, None, test, lambda: load_split(pipe, "train"), ClassifierSettings(epochs=4, lr=1e-2, batch_size=64),
        progress=False,
    )
    return CoherenceEvaluator(pipe, classifiers, test, progress=False, **kwargs)


def test_conditioning_subsets_all_for_small_m():
    assert conditioning_subsets(["a"]) == []
    assert conditioning_subsets(["gray", "color"]) == [("gray",), ("color",)]
    three = conditioning_subsets(["c", "a", "b"])  # recipe order kept, not sorted
    assert three == [("c",), ("a",), ("b",), ("c", "a"), ("c", "b"), ("a", "b")]
    six = conditioning_subsets(list("abcdef"))
    assert len(six) == 2**6 - 2 and len(set(six)) == len(six)


def test_conditioning_subsets_are_capped_for_large_m():
    names = [f"m{i}" for i in range(8)]
    subsets = conditioning_subsets(names)
    assert len(subsets) == 16
    assert all(len(s) in (1, 7) for s in subsets)
    started = time.perf_counter()
    many = conditioning_subsets([f"m{i}" for i in range(64)])  # a power set would never finish
    assert len(many) == 128 and time.perf_counter() - started < 1.0
    assert len(conditioning_subsets(list("abcdefg"), max_all_subsets=7)) == 2**7 - 2


def test_keys():
    assert condition_key(("a", "b"), "c") == "a+b->c"
    assert condition_key(("gray",), "color") == "gray->color"
    assert clip_key((), "image", "caption", False) == "joint"
    assert clip_key(("caption",), "image", "caption", False) == "caption->image"
    assert clip_key(("x",), "image", "caption", True) == "x->image+caption:image+caption"
    assert batch_seed(0, 1, 2) == batch_seed(0, 1, 2) != batch_seed(0, 2, 1)


def test_perfect_generator_has_coherence_one(fake_pipeline):
    pipe = fake_pipeline(mode="perfect")
    result = _evaluator(pipe).run(sampler="heun", steps=7, seed=3)
    assert set(result.coherence) == {"joint", "a->b", "b->a"}
    assert all(value == 1.0 for value in result.coherence.values()), result.coherence
    assert set(result.fd) == {"joint:a", "joint:b", "a->b", "b->a"}
    assert all(0 <= value < 1.0 for value in result.fd.values()), result.fd  # same distribution as the data
    assert result.nfe == 7 and result.num_items == 200
    assert {call["sampler"] for call in pipe.calls} == {"heun"} and {call["steps"] for call in pipe.calls} == {7}
    assert not result.fid and not result.clip_s


def test_random_generator_has_chance_coherence(fake_pipeline):
    pipe = fake_pipeline(mode="random", n_test=600)
    result = _evaluator(pipe).run(seed=0)
    chance = 1 / pipe.NUM_CLASSES
    for key, value in result.coherence.items():
        # 600 items: standard error ~0.018, so 0.1 is > 5 standard errors
        assert abs(value - chance) < 0.1, (key, value)


def test_collapsed_generator_has_a_large_frechet_distance(fake_pipeline):
    good = _evaluator(fake_pipeline(mode="perfect")).run()
    bad = _evaluator(fake_pipeline(mode="collapsed")).run()
    for key in good.fd:
        assert bad.fd[key] > 10 * good.fd[key] + 1.0, (key, good.fd[key], bad.fd[key])


def test_three_modalities_keys_in_recipe_order(fake_pipeline):
    pipe = fake_pipeline(names=("c", "a", "b"), n_test=60)
    result = _evaluator(pipe).run()
    expected = {"joint"}
    for given in [("c",), ("a",), ("b",), ("c", "a"), ("c", "b"), ("a", "b")]:
        expected |= {condition_key(given, t) for t in ("c", "a", "b") if t not in given}
    assert set(result.coherence) == expected
    assert "c+a->b" in result.coherence and "a+c->b" not in result.coherence
    assert set(result.fd) == (expected - {"joint"}) | {"joint:c", "joint:a", "joint:b"}
    assert all(value == 1.0 for value in result.coherence.values())
    assert set(result.samples) == {"joint", "c", "a", "b", "c+a", "c+b", "a+b"}


def test_limit_batches_and_seeds(fake_pipeline):
    pipe = fake_pipeline()
    evaluator = _evaluator(pipe, limit=50, batch_size=20, keep_samples=5)
    first = evaluator.run(seed=11)
    sizes = [call["n"] for call in pipe.calls]
    assert sizes == [20, 20, 10] * 3  # joint, a->b, b->a in batches of at most 20
    assert first.num_items == 50 and first.samples["joint"]["a"].shape == (5, 4)
    given_calls = [call for call in pipe.calls if call["given"]]
    assert {tuple(call["given"]) for call in given_calls} == {("a",), ("b",)}
    seeds = [call["seed"] for call in pipe.calls]
    assert len(set(seeds)) == len(seeds)  # no two batches share noise
    pipe.calls.clear()
    again = evaluator.run(seed=11)
    assert [call["seed"] for call in pipe.calls] == seeds
    assert again.coherence == first.coherence and again.fd == first.fd
    pipe.calls.clear()
    evaluator.run(seed=12)
    assert not set(call["seed"] for call in pipe.calls) & set(seeds)


def test_joint_needs_two_classifiers_and_targets_need_one(fake_pipeline):
    pipe = fake_pipeline(no_classifier=("b",), n_test=40)
    result = _evaluator(pipe).run()
    assert set(result.coherence) == {"b->a"}  # b can be given, never a target
    assert set(result.fd) == {"joint:a", "b->a"}


def test_guidance_is_passed_through(fake_pipeline):
    pipe = fake_pipeline(n_test=10)
    _evaluator(pipe).run(guidance={"a": 2.0})
    assert all(call["guidance"] == {"a": 2.0} for call in pipe.calls)


def test_bad_pipeline_outputs_are_reported(fake_pipeline):
    pipe = fake_pipeline(n_test=10)
    evaluator = _evaluator(pipe)
    pipe.generate = lambda **kwargs: {"a": torch.zeros(kwargs["n"], 4)}
    with pytest.raises(EvaluationError, match="no output for b"):
        evaluator.run()


class _TinyExtractor(torch.nn.Module):
    input_size = 8

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 5, 3)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


class _StubClipScorer:
    """Scores 1 for a caption naming the class the image was generated from, else 0."""

    def __init__(self, prototypes):
        self.prototypes = prototypes
        self.calls = []

    def score(self, images, captions, value_range=(0.0, 1.0)):
        self.calls.append(images.shape[0])
        nearest = torch.cdist(images.flatten(1), self.prototypes).argmin(dim=1)
        return sum(c == f"class {int(k)}" for c, k in zip(captions, nearest)) / len(captions)


def test_fid_and_clip_s_per_condition(fake_pipeline):
    pipe = fake_pipeline(image=("a",), text=("b",), n_test=60)
    scorer = _StubClipScorer(pipe.prototypes["a"])
    result = _evaluator(pipe, image_features=_TinyExtractor(), clip_scorer=scorer).run()
    assert set(result.fid) == {"joint:a", "b->a"}  # only the image modality
    assert all(value >= 0 for value in result.fid.values())
    assert set(result.clip_s) == {"real", "joint", "a->b", "b->a"}
    # captions name the class index of the text prototypes, images the class of the image prototypes:
    # the perfect fake keeps the classes aligned, so CLIP-S equals that of the real pairs
    assert result.clip_s["joint"] == result.clip_s["a->b"] == result.clip_s["b->a"] == result.clip_s["real"]
    assert set(result.coherence) == {"joint", "a->b", "b->a"}
    assert all(value == 1.0 for value in result.coherence.values())
