"""The core's shared model-family contract (mmlatent.testing.ModelFamilyContract) for each family."""

from __future__ import annotations

from mmlatent.testing import ModelFamilyContract
from mmlatent_baselines.testing import SMALL_OPTIONS, tiny_recipe

_SHORT = {"steps": 3, "batch_size": 32}


class _TinyDigits(ModelFamilyContract):
    def make_recipe(self, tmp_path):
        return tiny_recipe()


class TestMVAEContract(_TinyDigits):
    family = "mvae"
    options = {**SMALL_OPTIONS["mvae"], **_SHORT}


class TestMMVAEContract(_TinyDigits):
    family = "mmvae"
    options = {**SMALL_OPTIONS["mmvae"], **_SHORT, "K": 2}


class TestMoPoEContract(_TinyDigits):
    family = "mopoe"
    options = {**SMALL_OPTIONS["mopoe"], **_SHORT}


class TestNexusContract(_TinyDigits):
    family = "nexus"
    options = {**SMALL_OPTIONS["nexus"], **_SHORT}


class TestMVTCAEContract(_TinyDigits):
    family = "mvtcae"
    options = {**SMALL_OPTIONS["mvtcae"], **_SHORT}
