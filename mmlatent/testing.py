"""Contract tests for plugin authors: subclass, fill in a few attributes, let pytest run them.

::

    import numpy as np
    from mmlatent.testing import DatasetContract, ModalityContract

    class TestImageModality(ModalityContract):   # pytest collects the subclass, not the base
        kind = "image"
        options = {"channels": 1, "size": 16}     # valid options of the kind
        latent_dim = 8
        def raw_values(self):                     # a few raw values, as the plugin's datasets yield them
            return [np.zeros((16, 16), np.uint8), np.ones((16, 16), np.uint8)]

    class TestDigitsPair(DatasetContract):
        name = "digits_pair"
        def make_options(self, tmp_path):         # valid options (may write small files under tmp_path)
            return {"k": 2}

:class:`ModalityContract` checks that the kind is registered (by a plugin that loaded without
error) and listed by ``mmlatent plugins --json``; that unknown option keys are rejected; that
``preprocess`` + ``collate`` give ``(B, *item_shape)``; that ``encode`` gives ``(B, latent_dim)``
and ``to_data(decode(z))`` has the collated layout; that the reconstruction loss is a finite scalar
with gradients; that ``render`` writes files; that ``fit``/``state_dict``/``load_state_dict``
round-trip through JSON; that ``prepare_batch`` leaves collated batches as they are, accepts decoded
ones and rejects a list, a wrong shape and NaN with an error naming the modality; that ``read_file``
reads back a batch saved as ``.npy`` / ``.safetensors`` and the files ``render`` writes in a format
it accepts (within :attr:`~ModalityContract.read_back_atol`); and that the classifier (when there is
one) gives ``(B, num_classes)`` and the features of the Frechet distances.

:class:`DatasetContract` checks that the dataset is registered and listed; that unknown option
keys are rejected; that it declares at least the "train" and "test" splits (for the options of
:meth:`~DatasetContract.make_options`: ``DatasetSpec.available_splits``) and its fields; and that
every available split builds and its items are dicts carrying the declared fields (and an int
"label" when ``has_labels``).

:class:`ModelFamilyContract` checks that a model family (``model.family``) is registered and
listed; that an unknown option is rejected in a recipe; and, on a tiny recipe of yours trained
for a few steps by ``mmlatent train``, that the run loads through :func:`mmlatent.model.load_model`
as a :class:`~mmlatent.model.GenerativeModel`, generates every modality jointly and from each
single given modality with the right shapes (the given batch returned as given), is reproducible
by seed, comes back identical when loaded again (weights round trip), renders files, holds no
pickled file, is refused by ``load_model`` once its recorded weights are truncated, trains nothing
again on ``--resume`` and is evaluated by ``evaluate_run``.

:func:`untrained_pipeline` builds an ``MLDPipeline`` over untrained networks from a recipe, for
tests of the Python API (``generate(given=...)``, ``encode``) with your modality.

The base classes' names do not start with ``Test``, so pytest only collects your subclasses. This
module needs pytest: ``pip install "mmlatent[test]"``.
Override a ``test_*`` method to skip or adapt a check that does not apply to your plugin.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

try:
    import pytest
except ModuleNotFoundError as missing:  # pytest is the test extra's, not a dependency of mmlatent
    if missing.name != "pytest":
        raise
    raise ModuleNotFoundError('mmlatent.testing needs pytest: install the test extra, pip install "mmlatent[test]"',
                              name="pytest") from None
import numpy as np
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from mmlatent.build import build_dataset, build_modalities, build_score_net
from mmlatent.latents import LatentStats
from mmlatent.modality import Autoencoder, DatasetSpec, Modality, ModalitySpec
from mmlatent.pipeline import MLDPipeline
from mmlatent.plugins import get_registry, plugins_command
from mmlatent.recipe import parse_recipe

__all__ = ["DatasetContract", "ModalityContract", "ModelFamilyContract", "untrained_pipeline"]

_UNKNOWN_KEY = "no_such_option_for_the_contract_test"
#: Suffixes of pickled files (``torch.save``, ``pickle``, ``cloudpickle``), which a run never holds.
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}


def _listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """What ``mmlatent plugins --json`` prints (run in-process, same code path as the CLI)."""
    capsys.readouterr()
    assert plugins_command(as_json=True) == 0
    return json.loads(capsys.readouterr().out)


def untrained_pipeline(recipe: Mapping[str, Any], fit_items: int = 64, seed: int = 0) -> MLDPipeline:
    """An :class:`~mmlatent.pipeline.MLDPipeline` over freshly initialised networks, built in
    seconds without training: for tests of the Python API and its input checks, not of samples.

    ``recipe`` is a raw recipe mapping (as parsed from YAML). Modalities that need fitting are
    fitted on the first ``fit_items`` items of the dataset's train split; the latent statistics
    are zero mean and unit std; the networks are in eval mode without gradients.
    """
    parsed = parse_recipe(dict(recipe))
    modalities = build_modalities(parsed)
    if any(modality.needs_fit for modality in modalities.values()):
        train = build_dataset(parsed, "train")
        items = [train[i] for i in range(min(fit_items, len(train)))]
        for name, modality in modalities.items():
            if modality.needs_fit:
                modality.fit([item[parsed.field_of(name)] for item in items])
    torch.manual_seed(seed)
    autoencoders = {name: modality.build_autoencoder().eval() for name, modality in modalities.items()}
    dims = {name: cfg.latent_dim for name, cfg in parsed.modalities.items()}
    stats = LatentStats({n: torch.zeros(d) for n, d in dims.items()}, {n: torch.ones(d) for n, d in dims.items()})
    score_net = build_score_net(parsed).eval()
    for module in [score_net, *autoencoders.values()]:
        module.requires_grad_(False)
    return MLDPipeline(parsed, modalities, autoencoders, stats, score_net)


class ModalityContract:
    """Shared tests of one modality kind. Set ``kind``, ``options``, ``latent_dim`` and
    implement :meth:`raw_values`; optionally ``modality_name`` and ``num_classes``."""

    #: The modality kind under test (as recipes spell it).
    kind: ClassVar[str] = ""
    #: Valid options of the kind (``modalities.<name>.options`` of a recipe).
    options: ClassVar[dict[str, Any]] = {}
    #: Latent size to build the autoencoder with.
    latent_dim: ClassVar[int] = 8
    #: The name the modality gets in the tests (a recipe's modality name).
    modality_name: ClassVar[str] = "m"
    #: Classes for the classifier check.
    num_classes: ClassVar[int] = 3
    #: Absolute tolerance of the file round trips (``render`` -> ``read_file``) of float data: one step
    #: of an 8-bit PNG pixel in [0, 1] (a 16-bit WAV sample is finer).
    read_back_atol: ClassVar[float] = 1 / 255

    def raw_values(self) -> list[Any]:
        """A few (at least 2) raw values as the plugin's datasets yield them."""
        raise NotImplementedError("ModalityContract subclasses implement raw_values()")

    # ------------------------------------------------------------------------------- helpers
    def spec(self) -> ModalitySpec:
        return get_registry().modality(self.kind)

    def make_modality(self, fit: bool = True) -> Modality:
        """A modality of this kind built from :attr:`options` (fitted on :meth:`raw_values` if needed)."""
        modality = self.spec().build(self.modality_name, dict(self.options), self.latent_dim)
        if fit and modality.needs_fit:
            modality.fit(self.raw_values())
        return modality

    def make_batch(self, modality: Modality) -> torch.Tensor:
        values = self.raw_values()
        assert len(values) >= 2, "raw_values() must return at least 2 values"
        return modality.collate([modality.preprocess(v) for v in values])

    def make_autoencoder(self, modality: Modality) -> Autoencoder:
        torch.manual_seed(0)
        ae = modality.build_autoencoder()
        assert isinstance(ae, Autoencoder), f"build_autoencoder() returned {type(ae).__name__}, not an Autoencoder"
        return ae

    def assert_reads_back(self, modality: Modality, paths: list[Path], batch: torch.Tensor) -> None:
        """``read_file`` (then ``prepare_batch``, as ``mmlatent sample --given`` does) of ``paths``, in
        order and concatenated, gives ``batch`` (within :attr:`read_back_atol` for floats): one file
        holding the batch, or one file per item."""
        read = torch.cat([modality.prepare_batch(modality.read_file(path)) for path in paths])
        names = ", ".join(path.name for path in paths)
        assert tuple(read.shape) == tuple(batch.shape), f"read_file({names}) gave shape {tuple(read.shape)}, " \
                                                        f"not the written {tuple(batch.shape)}"
        if batch.is_floating_point():
            error = float((read.double() - batch.double()).abs().max()) if batch.numel() else 0.0
            assert error <= self.read_back_atol, f"read_file({names}) differs from the written batch by {error:.3g}"
        else:
            assert torch.equal(read, batch.to(read.dtype)), f"read_file({names}) differs from the written batch"

    # --------------------------------------------------------------------------------- tests
    def test_kind_is_registered(self) -> None:
        registry = get_registry()
        spec = registry.modality(self.kind)
        assert spec.kind == self.kind
        provider = registry.provider_of_modality(self.kind)
        info = registry.plugin(provider.name)
        assert info.error is None, f"plugin {info.name} {info.version} loaded with an error: {info.error}"

    def test_kind_is_listed_by_plugins_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        rows = [row for row in _listed(capsys) if self.kind in row["modalities"]]
        assert len(rows) == 1, f"kind {self.kind!r} listed by {len(rows)} plugins in `mmlatent plugins --json`"
        assert rows[0]["error"] is None, rows[0]["error"]

    def test_valid_options_are_accepted(self) -> None:
        modality = self.make_modality(fit=False)
        assert isinstance(modality, self.spec().modality_class)
        assert modality.name == self.modality_name
        assert modality.latent_dim == self.latent_dim

    def test_unknown_option_is_rejected(self) -> None:
        spec = self.spec()
        assert spec.options.model_config.get("extra") == "forbid", "the options model must set extra='forbid'"
        with pytest.raises(ValidationError):
            spec.build(self.modality_name, {**self.options, _UNKNOWN_KEY: 1}, self.latent_dim)

    def test_preprocess_and_collate_shapes(self) -> None:
        modality = self.make_modality()
        values = self.raw_values()
        items = [modality.preprocess(v) for v in values]
        batch = modality.collate(items)
        assert isinstance(batch, torch.Tensor)
        assert batch.shape[0] == len(values)
        if modality.item_shape is not None:
            assert tuple(batch.shape[1:]) == tuple(modality.item_shape)
            for item in items:
                assert tuple(item.shape) == tuple(modality.item_shape)

    def test_encode_shape(self) -> None:
        modality = self.make_modality()
        batch = self.make_batch(modality)
        z = self.make_autoencoder(modality).encode(batch)
        assert tuple(z.shape) == (batch.shape[0], self.latent_dim)
        assert z.is_floating_point() and torch.isfinite(z).all()

    def test_decode_to_data_has_collated_layout(self) -> None:
        modality = self.make_modality()
        batch = self.make_batch(modality)
        ae = self.make_autoencoder(modality)
        with torch.no_grad():
            data = ae.to_data(ae.decode(ae.encode(batch)))
            from_noise = ae.to_data(ae.decode(torch.randn(3, self.latent_dim)))
        assert tuple(data.shape) == tuple(batch.shape)
        assert from_noise.shape[0] == 3
        if modality.item_shape is not None:
            assert tuple(from_noise.shape[1:]) == tuple(modality.item_shape)

    def test_reconstruction_loss_is_finite_scalar_with_gradients(self) -> None:
        modality = self.make_modality()
        batch = modality.augment(self.make_batch(modality))
        ae = self.make_autoencoder(modality)
        loss = ae.training_loss(batch)
        assert loss.dim() == 0, f"training_loss() must be a scalar, got shape {tuple(loss.shape)}"
        assert math.isfinite(float(loss.detach()))
        direct = ae.reconstruction_loss(batch, ae(batch))
        assert direct.dim() == 0 and math.isfinite(float(direct.detach()))
        if ae.has_parameters:
            loss.backward()
            grads = [p.grad for p in ae.parameters() if p.requires_grad]
            assert any(g is not None and g.abs().sum() > 0 for g in grads), "the loss has no gradient"
            assert all(torch.isfinite(g).all() for g in grads if g is not None)

    def test_augment_keeps_the_layout(self) -> None:
        modality = self.make_modality()
        batch = self.make_batch(modality)
        augmented = modality.augment(batch)
        assert tuple(augmented.shape) == tuple(batch.shape) and augmented.dtype == batch.dtype

    def test_render_writes_files(self, tmp_path: Path) -> None:
        modality = self.make_modality()
        batch = self.make_batch(modality)
        paths = [Path(p) for p in modality.render(batch, tmp_path / "render" / self.modality_name)]
        assert paths, "render() wrote nothing"
        for path in paths:
            assert path.is_file() and path.stat().st_size > 0, f"render() returned {path}, which is missing or empty"
        values = modality.to_values(batch)
        assert len(values) == batch.shape[0]

    def test_read_file_reads_array_files_back(self, tmp_path: Path) -> None:
        """A collated batch saved as ``.npy`` / ``.safetensors`` (the suffixes of ``file_suffixes``)."""
        modality = self.make_modality()
        batch = self.make_batch(modality)
        suffixes = {suffix.lower() for suffix in modality.file_suffixes} & {".npy", ".safetensors"}
        if not suffixes:
            pytest.skip(f"kind {self.kind!r} reads no .npy or .safetensors file")
        for suffix in sorted(suffixes):
            path = tmp_path / f"{self.modality_name}{suffix}"
            if suffix == ".npy":
                np.save(path, batch.detach().cpu().numpy())
            else:
                save_file({self.modality_name: batch.detach().cpu().contiguous()}, str(path))
            self.assert_reads_back(modality, [path], batch)

    def test_read_file_reads_back_what_render_writes(self, tmp_path: Path) -> None:
        """The files ``render`` writes in a format ``read_file`` accepts (its ``file_suffixes``) read
        back as the rendered batch; files of one suffix together (one file per item is fine)."""
        modality = self.make_modality()
        batch = self.make_batch(modality)
        accepted = {suffix.lower() for suffix in modality.file_suffixes}
        written: dict[str, list[Path]] = {}
        for path in map(Path, modality.render(batch, tmp_path / "render" / self.modality_name)):
            if path.suffix.lower() in accepted:
                written.setdefault(path.suffix.lower(), []).append(path)
        if not written:
            pytest.skip(f"kind {self.kind!r} renders no file that read_file reads")
        for paths in written.values():
            self.assert_reads_back(modality, paths, batch)

    def test_fit_state_dict_round_trip(self) -> None:
        fitted = self.make_modality()
        state = fitted.state_dict()
        restored_state = json.loads(json.dumps(state))  # the run directory stores it as JSON
        fresh = self.make_modality(fit=False)
        fresh.load_state_dict(restored_state)
        assert fresh.state_dict() == restored_state
        assert fresh.item_shape == fitted.item_shape
        for value in self.raw_values():
            a, b = fitted.preprocess(value), fresh.preprocess(value)
            assert a.shape == b.shape and torch.equal(a, b)

    def test_prepare_batch_accepts_data_and_names_the_modality_in_errors(self) -> None:
        modality = self.make_modality()
        batch = self.make_batch(modality)
        prepared = modality.prepare_batch(batch)
        assert isinstance(prepared, torch.Tensor), f"prepare_batch() returned {type(prepared).__name__}"
        assert torch.equal(prepared, batch), "prepare_batch() must leave a collated batch as it is"
        ae = self.make_autoencoder(modality)
        with torch.no_grad():
            decoded = ae.to_data(ae.decode(torch.randn(3, self.latent_dim)))
        assert modality.prepare_batch(decoded).shape == decoded.shape, "decoded batches must be valid inputs"
        named = re.escape(repr(self.modality_name))
        with pytest.raises(ValueError, match=named):
            modality.prepare_batch(batch.tolist())
        if modality.item_shape is not None:
            with pytest.raises(ValueError, match=named):
                modality.prepare_batch(batch.unsqueeze(1))  # one axis too many
        if batch.is_floating_point():
            bad = batch.clone()
            bad.view(-1)[0] = float("nan")
            with pytest.raises(ValueError, match=named):
                modality.prepare_batch(bad)

    def _classifier_and_batch(self) -> tuple[torch.nn.Module, torch.Tensor]:
        """A fresh classifier (seed 0) and a batch for it; skips a kind without a classifier."""
        modality = self.make_modality()
        torch.manual_seed(0)
        classifier = modality.build_classifier(self.num_classes)
        if classifier is None:
            pytest.skip(f"kind {self.kind!r} has no classifier")
        return classifier, self.make_batch(modality)

    def test_classifier_shape(self) -> None:
        classifier, batch = self._classifier_and_batch()
        with torch.no_grad():
            logits = classifier(batch)
        assert tuple(logits.shape) == (batch.shape[0], self.num_classes)

    def test_classifier_gives_features_for_frechet_distances(self) -> None:
        """The evaluation's Frechet distances (``fd``) are measured in the classifier's features: its
        ``features(x) -> (B, F)`` method, else the input of its last ``nn.Linear`` (the output layer)."""
        from mmlatent.evaluation.classifiers import classifier_features

        classifier, batch = self._classifier_and_batch()
        with torch.no_grad():
            features = classifier_features(classifier.eval(), batch, self.num_classes)
        assert features.dim() == 2 and features.shape[0] == batch.shape[0], f"features of shape {tuple(features.shape)}"
        assert features.is_floating_point() and torch.isfinite(features).all()


class DatasetContract:
    """Shared tests of one dataset. Set ``name`` and implement :meth:`make_options`."""

    #: The dataset name (as recipes spell it in ``dataset.name``).
    name: ClassVar[str] = ""
    #: How many items of each split the item checks read.
    max_items: ClassVar[int] = 4

    def make_options(self, tmp_path: Path) -> dict[str, Any]:
        """Valid options for the dataset; may write small files under ``tmp_path``."""
        raise NotImplementedError("DatasetContract subclasses implement make_options(tmp_path)")

    # ------------------------------------------------------------------------------- helpers
    def spec(self) -> DatasetSpec:
        return get_registry().dataset(self.name)

    # --------------------------------------------------------------------------------- tests
    def test_dataset_is_registered(self) -> None:
        registry = get_registry()
        assert registry.dataset(self.name).name == self.name
        info = registry.plugin(registry.provider_of_dataset(self.name).name)
        assert info.error is None, f"plugin {info.name} {info.version} loaded with an error: {info.error}"

    def test_dataset_is_listed_by_plugins_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        rows = [row for row in _listed(capsys) if self.name in row["datasets"]]
        assert len(rows) == 1, f"dataset {self.name!r} listed by {len(rows)} plugins in `mmlatent plugins --json`"
        assert rows[0]["error"] is None, rows[0]["error"]

    def test_unknown_option_is_rejected(self, tmp_path: Path) -> None:
        spec = self.spec()
        assert spec.options.model_config.get("extra") == "forbid", "the options model must set extra='forbid'"
        options = self.make_options(tmp_path)
        spec.validate_options(options)
        with pytest.raises(ValidationError):
            spec.validate_options({**options, _UNKNOWN_KEY: 1})

    def test_declares_splits_and_fields(self, tmp_path: Path) -> None:
        spec = self.spec()
        options = spec.validate_options(self.make_options(tmp_path))
        splits = spec.available_splits(options)
        assert all(isinstance(s, str) and s for s in splits), f"split names must be non-empty strings: {splits}"
        assert "train" in splits and "test" in splits, f"splits are {splits}"
        fields = list(spec.fields(options))
        assert fields and all(isinstance(f, str) and f for f in fields)
        assert "label" not in fields, "'label' is not a modality field"
        assert isinstance(spec.has_labels(options), bool)

    def test_every_split_builds_items_with_the_declared_fields(self, tmp_path: Path) -> None:
        spec = self.spec()
        options = spec.validate_options(self.make_options(tmp_path))
        fields = list(spec.fields(options))
        labelled = spec.has_labels(options)
        for split in spec.available_splits(options):
            dataset = spec.build(options, split)
            assert len(dataset) > 0, f"split {split!r} is empty"
            for i in range(min(len(dataset), self.max_items)):
                item = dataset[i]
                assert isinstance(item, dict), f"split {split!r}: items must be dicts, got {type(item).__name__}"
                missing = [f for f in fields if f not in item]
                assert not missing, f"split {split!r}: item {i} lacks declared field(s) {missing}"
                assert all(item[f] is not None for f in fields)
                if labelled:
                    label = item.get("label")
                    assert isinstance(label, numbers.Integral) and not isinstance(label, bool), (
                        f"split {split!r}: item {i} needs an int 'label', got {label!r}"
                    )


class ModelFamilyContract:
    """Shared tests of one model family. Set ``family`` (and ``options``) and implement
    :meth:`make_recipe`: a raw recipe mapping over small data that trains in seconds (its
    ``model`` section is set from ``family`` and ``options``)."""

    #: The family name (as recipes spell it in ``model.family``).
    family: ClassVar[str] = ""
    #: Valid ``model.options`` for the tiny run (keep the training to a few steps).
    options: ClassVar[dict[str, Any]] = {}

    def make_recipe(self, tmp_path: Path) -> dict[str, Any]:
        """A raw recipe mapping (without ``model``); may write small data files under ``tmp_path``."""
        raise NotImplementedError("ModelFamilyContract subclasses implement make_recipe(tmp_path)")

    # ------------------------------------------------------------------------------- helpers
    def recipe(self, tmp_path: Path) -> dict[str, Any]:
        raw = dict(self.make_recipe(tmp_path))
        raw["model"] = {"family": self.family, "options": dict(self.options)}
        return raw

    @pytest.fixture(scope="class")
    @classmethod
    def trained_run(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """The tiny recipe trained by ``mmlatent train`` (once per test class)."""
        import yaml

        from mmlatent.train import main as train_main

        root = tmp_path_factory.mktemp(f"family-{cls.family}")
        recipe_path = root / "recipe.yaml"
        recipe_path.write_text(yaml.safe_dump(cls().recipe(root)), encoding="utf-8")
        run = root / "run"
        code = train_main([str(recipe_path), "--output", str(run), "--no-progress", "--no-eval"])
        assert code == 0, f"mmlatent train of the {cls.family!r} recipe exited with {code}"
        return run

    # --------------------------------------------------------------------------------- tests
    def test_family_is_registered(self) -> None:
        registry = get_registry()
        spec = registry.model(self.family)
        assert spec.name == self.family
        info = registry.plugin(registry.provider_of_model(self.family).name)
        assert info.error is None, f"plugin {info.name} {info.version} loaded with an error: {info.error}"
        assert spec.options.model_config.get("extra") == "forbid", "the options model must set extra='forbid'"

    def test_family_is_listed_by_plugins_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        rows = [row for row in _listed(capsys) if self.family in row["models"]]
        assert len(rows) == 1, f"model family {self.family!r} listed by {len(rows)} plugins"

    def test_unknown_option_is_rejected_in_a_recipe(self, tmp_path: Path) -> None:
        from mmlatent.recipe import RecipeError

        raw = self.recipe(tmp_path)
        assert parse_recipe(raw).model.family == self.family
        raw["model"]["options"] = {**raw["model"]["options"], _UNKNOWN_KEY: 1}
        with pytest.raises(RecipeError, match=f"model.options.{_UNKNOWN_KEY}"):
            parse_recipe(raw)

    def test_the_run_loads_as_a_generative_model_and_generates(self, trained_run: Path, tmp_path: Path) -> None:
        from mmlatent.diffusion.plan import SamplingPlan
        from mmlatent.model import GenerativeModel, load_model

        model = load_model(trained_run)
        assert isinstance(model, GenerativeModel)
        assert isinstance(model.plan(), SamplingPlan)
        joint = model.generate(n=3, seed=1)
        assert set(joint) == set(model.names)
        test = model.collate([model.dataset("test")[i] for i in range(3)])
        for name, batch in joint.items():
            assert batch.shape[0] == 3 and batch.shape[1:] == test[name].shape[1:], name
        for name in model.names:
            out = model.generate(given={name: test[name]}, seed=2)
            assert torch.equal(out[name], model.check_inputs({name: test[name]})[name])
            for other in model.names:
                assert out[other].shape == test[other].shape, (name, other)
        assert model.render(joint, tmp_path / "render", prefix="joint_")

    def test_generation_is_reproducible_and_the_weights_round_trip(self, trained_run: Path) -> None:
        from mmlatent.model import load_model

        first, again = load_model(trained_run), load_model(trained_run)
        a, b = first.generate(n=4, seed=3), again.generate(n=4, seed=3)
        for name in first.names:
            assert torch.equal(a[name], b[name]), f"{name}: same run, same seed, different samples"

    def test_the_run_keeps_its_tensors_in_safetensors_only(self, trained_run: Path) -> None:
        """Weights, checkpoints and caches are ``.safetensors``: nothing in the run is a pickle."""
        files = [path for path in trained_run.rglob("*") if path.is_file()]
        pickles = [path.relative_to(trained_run).as_posix() for path in files if path.suffix.lower() in _PICKLE_SUFFIXES]
        assert not pickles, f"the run holds pickled files {pickles}: save tensors with mmlatent.checkpoint.save_tensors"
        assert any(path.suffix == ".safetensors" for path in files), "the run holds no .safetensors weights"

    def test_changed_weights_are_refused_when_the_run_loads(self, trained_run: Path, tmp_path: Path) -> None:
        """Every ``.safetensors`` file the run recorded in its manifest, truncated: ``load_model`` refuses
        the run with an error of mmlatent's (it names the file), never loads it or fails like a bug."""
        from mmlatent.model import load_model

        run = tmp_path / "run"
        shutil.copytree(trained_run, run)
        recorded = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["files"]
        weights = [name for name in recorded if name.endswith(".safetensors")]
        assert weights, "the run's manifest records no .safetensors file (mark_done(step, files) records them)"
        for name in weights:
            path = run / name
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        with pytest.raises(Exception) as refused:
            load_model(run)
        assert isinstance(getattr(type(refused.value), "exit_code", None), int), (
            f"a run with changed weights failed with {type(refused.value).__name__}: {refused.value} "
            "(check the files with mmlatent.manifest.verify_files, or load with mmlatent.model.load_run_modalities)")
        assert any(name in str(refused.value) for name in weights), str(refused.value)

    def test_resuming_the_finished_run_changes_nothing(self, trained_run: Path, tmp_path: Path) -> None:
        """``mmlatent train --resume`` of a finished run trains no step again: its weights stay the same
        files (the family's ``outputs_of`` and ``mark_done`` record every stage)."""
        from mmlatent.manifest import file_digest
        from mmlatent.train import main as train_main

        run = tmp_path / "run"
        shutil.copytree(trained_run, run)
        weights = sorted(path for path in run.rglob("*.safetensors") if "checkpoints" not in path.parts)
        before = {path: file_digest(path) for path in weights}
        code = train_main([str(trained_run.parent / "recipe.yaml"), "--output", str(run), "--resume",
                           "--no-progress", "--no-eval"])
        assert code == 0, f"mmlatent train --resume of the finished run exited with {code}"
        changed = [path.relative_to(run).as_posix() for path in weights if file_digest(path) != before[path]]
        assert not changed, f"--resume of a finished run wrote {changed} again"

    def test_the_run_is_evaluated(self, trained_run: Path) -> None:
        from mmlatent.evaluation.command import evaluate_run

        metrics = evaluate_run(trained_run, limit=8, write=False, progress=False,
                               classifier_settings={"epochs": 1})
        assert metrics["coherence"], "no coherence was measured"
        assert all(0.0 <= value <= 1.0 for value in metrics["coherence"].values())

