"""Plugin loading: hooks, attribution, error isolation, duplicates, environment variables."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pluggy
import pytest

from mmlatent import hookspecs
from mmlatent.families import ModelSpec
from mmlatent.modality import DatasetSpec, ModalitySpec
from mmlatent.plugins import (
    PluginLoadError,
    PluginLookupError,
    Provider,
    Registry,
    get_registry,
    load_registry,
    plugins_command,
)

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"

GOOD = """
@mmlatent.hookimpl
def register_modalities(register):
    register(kind("toy"))

@mmlatent.hookimpl
def register_datasets(register):
    register(dataset("toyset"))
"""


def info(registry: Registry, name: str):
    return registry.plugin(name)


# ------------------------------------------------------------------------------------- the hooks
HOOKS_TESTED = {"register_modalities", "register_datasets", "register_models"}


def test_every_hookspec_is_tested_and_documented():
    specs = {name for name, f in vars(hookspecs).items() if inspect.isfunction(f) and hasattr(f, "mmlatent_spec")}
    assert specs == HOOKS_TESTED
    guide = GUIDE.read_text()
    for name in specs:
        assert f"`{name}(register)`" in guide, f"docs/plugins.md does not document hook {name}"


def test_register_modalities_hook_is_attributed_to_its_distribution(make_plugin):
    make_plugin("mmlatent-toy", "1.2.3", modules={"toy_good": GOOD})
    registry = load_registry(only=["mmlatent-toy"])
    spec = registry.modality("toy")
    assert isinstance(spec, ModalitySpec) and spec.kind == "toy"
    assert registry.provider_of_modality("toy") == Provider("mmlatent-toy", "1.2.3")
    assert registry.provider_of_modality("vector") == Provider("mmlatent", __import__("mmlatent").__version__)
    assert info(registry, "mmlatent-toy").modalities == ["toy"]


def test_register_datasets_hook_is_attributed_to_its_distribution(make_plugin):
    make_plugin("mmlatent-toy", "1.2.3", modules={"toy_good": GOOD})
    registry = load_registry(only=["mmlatent-toy"])
    assert isinstance(registry.dataset("toyset"), DatasetSpec)
    assert registry.provider_of_dataset("toyset") == ("mmlatent-toy", "1.2.3")
    assert registry.provider_of_dataset("tensors").name == "mmlatent"
    row = info(registry, "mmlatent-toy").to_dict()
    assert row == {"name": "mmlatent-toy", "version": "1.2.3", "modalities": ["toy"], "datasets": ["toyset"],
                   "models": [], "error": None}


FAMILY = """
def train(recipe, run_dir, accelerator, **context):
    raise NotImplementedError

def load(run_dir, device="cpu"):
    raise NotImplementedError

@mmlatent.hookimpl
def register_models(register):
    register(mmlatent.ModelSpec(name="toyvae", train=train, load=load, options=Options))
"""


def test_register_models_hook_is_attributed_to_its_distribution(make_plugin):
    make_plugin("mmlatent-toy", "1.2.3", modules={"toy_family": FAMILY})
    registry = load_registry(only=["mmlatent-toy"])
    spec = registry.model("toyvae")
    assert isinstance(spec, ModelSpec) and spec.name == "toyvae"
    assert registry.provider_of_model("toyvae") == Provider("mmlatent-toy", "1.2.3")
    assert registry.provider_of_model("mld").name == "mmlatent"  # the core's own entry point
    assert info(registry, "mmlatent-toy").to_dict()["models"] == ["toyvae"]
    with pytest.raises(PluginLookupError, match=r"no installed plugin provides model family 'mvae' "
                                                r"\(installed: mld, toyvae\)"):
        registry.model("mvae")


def test_a_familys_check_of_the_recipe_is_a_recipe_error(make_plugin, monkeypatch, tmp_path):
    from gaussian_fixtures import gaussian_recipe, write_gaussian_data

    from mmlatent.recipe import RecipeError, parse_recipe

    source = FAMILY.replace("options=Options)", "options=Options, check=check)") + """
def check(recipe, options):
    if "b" in recipe.modalities:
        raise ValueError("toyvae takes no modality called 'b'")
"""
    make_plugin("mmlatent-toy", modules={"toy_family": source})
    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", "mmlatent-toy")
    get_registry(reload=True)
    raw = {**gaussian_recipe(write_gaussian_data(tmp_path / "g.safetensors", n=20)), "model": {"family": "toyvae"}}
    with pytest.raises(RecipeError, match="model: toyvae takes no modality called 'b'"):
        parse_recipe(raw)
    raw["modalities"].pop("b")
    assert parse_recipe({**raw, "diffusion": {"d": 0.0}}).model.family == "toyvae"


@pytest.mark.parametrize("spec, error", [
    ("mmlatent.ModelSpec(name='x', train=train, load=load, options=dict)", "options must be a pydantic model"),
    ("mmlatent.ModelSpec(name='x', train=None, load=load)", "ModelSpec.train and ModelSpec.load must be callables"),
    ("mmlatent.ModelSpec(name='x y', train=train, load=load)", "invalid model family name"),
    ("mmlatent.DatasetSpec(name='x', build=train, fields=load)", "register() expects a ModelSpec"),
])
def test_bad_model_specs_are_that_plugins_error(make_plugin, spec, error):
    source = FAMILY.replace("mmlatent.ModelSpec(name=\"toyvae\", train=train, load=load, options=Options)", spec)
    make_plugin("mmlatent-bad", modules={"bad_family": source})
    registry = load_registry(only=["mmlatent-bad"])
    assert error in info(registry, "mmlatent-bad").error
    assert "x" not in registry.models


def test_builtin_plugin_is_listed_first_and_always_loads(make_plugin):
    make_plugin("mmlatent-toy", modules={"toy_good": GOOD})
    registry = load_registry(only=[])
    assert [p.name for p in registry.plugins] == ["mmlatent"]
    assert registry.plugins[0].to_dict() == {"name": "mmlatent", "version": __import__("mmlatent").__version__,
                                             "modalities": ["vector"], "datasets": ["tensors", "paired"],
                                             "models": ["mld"], "error": None}
    assert set(registry.modalities) == {"vector"} and set(registry.datasets) == {"tensors", "paired"}


def test_get_registry_is_cached_and_reloads_on_request():
    first = get_registry()
    assert get_registry() is first
    again = get_registry(reload=True)
    assert again is not first and get_registry() is again


def test_lookup_errors_name_what_is_installed(make_plugin):
    registry = load_registry(only=[])
    with pytest.raises(PluginLookupError) as caught:
        registry.modality("audio")
    assert isinstance(caught.value, LookupError)
    assert str(caught.value) == "no installed plugin provides 'audio' (installed: vector)"
    assert caught.value.installed == ["vector"]
    with pytest.raises(PluginLookupError,
                       match=r"no installed plugin provides dataset 'cub' \(installed: paired, tensors\)"):
        registry.dataset("cub")
    with pytest.raises(PluginLookupError):
        registry.provider_of_modality("audio")
    with pytest.raises(PluginLookupError):
        registry.provider_of_dataset("cub")


# ------------------------------------------------------------------------------- error isolation
def test_import_error_is_recorded_and_others_still_load(make_plugin):
    make_plugin("mmlatent-broken", "0.0.1", modules={"toy_broken": "raise RuntimeError('boom')\n"})
    make_plugin("mmlatent-toy", modules={"toy_good": GOOD})
    registry = load_registry(only=["mmlatent-broken", "mmlatent-toy"])
    broken = info(registry, "mmlatent-broken")
    assert broken.to_dict() == {"name": "mmlatent-broken", "version": "0.0.1", "modalities": [], "datasets": [],
                                "models": [], "error": "RuntimeError: boom"}
    assert registry.modality("toy") and registry.modality("vector") and registry.dataset("toyset")
    assert info(registry, "mmlatent-toy").error is None
    # lookups of a missing name point at the broken plugin
    with pytest.raises(PluginLookupError, match="mmlatent-broken"):
        registry.modality("audio")


def test_sys_exit_and_missing_module_are_recorded(make_plugin):
    make_plugin("mmlatent-exits", modules={"toy_exits": "import sys\nsys.exit(3)\n"})
    make_plugin("mmlatent-nomodule", modules={}, entry_points={"x": "toy_not_there"})
    registry = load_registry(only=["mmlatent-exits", "mmlatent-nomodule"])
    assert info(registry, "mmlatent-exits").error == "SystemExit: 3"
    assert info(registry, "mmlatent-nomodule").error.startswith("ModuleNotFoundError: No module named 'toy_not_there'")


def test_exception_inside_a_hook_is_that_plugins_error(make_plugin):
    source = """
    @mmlatent.hookimpl
    def register_modalities(register):
        register(kind("half"))

    @mmlatent.hookimpl
    def register_datasets(register):
        register(dataset("never"))
        raise ValueError("no data here")
    """
    make_plugin("mmlatent-half", modules={"toy_half": source})
    make_plugin("mmlatent-toy", modules={"toy_good": GOOD})
    registry = load_registry(only=["mmlatent-half", "mmlatent-toy"])
    half = info(registry, "mmlatent-half")
    assert half.error == "ValueError: no data here"
    assert half.modalities == ["half"] and half.datasets == []
    assert "never" not in registry.datasets  # registered before the raise: discarded
    assert registry.modality("half") and registry.dataset("toyset")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("@mmlatent.hookimpl\ndef register_modalities(register):\n    register('image')\n",
         "TypeError: register() expects a ModalitySpec, got str"),
        ("@mmlatent.hookimpl\ndef register_datasets(register):\n    register(kind('x'))\n",
         "TypeError: register() expects a DatasetSpec, got ModalitySpec"),
        ("class Loose(BaseModel):\n    pass\n\n@mmlatent.hookimpl\ndef register_modalities(register):\n"
         "    register(mmlatent.ModalitySpec(kind='loose', modality=VectorModality, options=Loose))\n",
         "must set model_config = ConfigDict(extra='forbid')"),
        ("@mmlatent.hookimpl\ndef register_modalities(register):\n    register(kind('two words'))\n",
         "ValueError: invalid modality kind name 'two words'"),
        ("@mmlatent.hookimpl\ndef register_modalities(reg):\n    pass\n",
         "PluginValidationError: Plugin 'mmlatent-bad:toy_bad' for hook 'register_modalities'"),
        ("@mmlatent.hookimpl\ndef register_modality(register):\n    pass\n",
         "PluginValidationError: unknown hook(s) register_modality"),
        ("def register_modalities(register):\n    register(kind('unmarked'))\n",
         "implements no mmlatent hook"),
    ],
    ids=["not-a-spec", "wrong-spec-type", "options-not-forbid", "bad-name", "bad-argument", "unknown-hook",
         "no-marker"],
)
def test_bad_plugins_are_reported(make_plugin, source, error):
    make_plugin("mmlatent-bad", modules={"toy_bad": source})
    make_plugin("mmlatent-toy", modules={"toy_good": GOOD})
    registry = load_registry(only=["mmlatent-bad", "mmlatent-toy"])
    bad = info(registry, "mmlatent-bad")
    assert bad.error is not None and error in bad.error
    assert bad.modalities == [] and bad.datasets == []
    assert info(registry, "mmlatent-toy").error is None and registry.modality("toy")


def test_get_registry_called_while_loading_is_that_plugins_error(make_plugin, monkeypatch):
    source = "from mmlatent.plugins import get_registry\nget_registry()\n" + GOOD
    make_plugin("mmlatent-eager", modules={"toy_eager": source})
    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", "mmlatent-eager")
    registry = get_registry(reload=True)
    assert info(registry, "mmlatent-eager").error.startswith("RuntimeError: get_registry() was called while")


# ------------------------------------------------------------------------------------ duplicates
def test_duplicate_kind_names_both_distributions(make_plugin):
    make_plugin("mmlatent-aaa", "1.0", modules={"toy_aaa": GOOD}, entry_points={"plugin": "toy_aaa"})
    make_plugin("mmlatent-bbb", "2.0", modules={"toy_bbb": GOOD}, entry_points={"plugin": "toy_bbb"})
    registry = load_registry(only=["mmlatent-aaa", "mmlatent-bbb"])
    expected = "DuplicateNameError: modality kind 'toy' is registered by both mmlatent-aaa 1.0 and mmlatent-bbb 2.0"
    for name in ("mmlatent-aaa", "mmlatent-bbb"):
        assert expected in info(registry, name).error
    # an ambiguous name is not resolved silently: lookups fail naming both
    assert "toy" not in registry.modalities and "toyset" not in registry.datasets
    with pytest.raises(PluginLookupError, match="mmlatent-aaa 1.0 and mmlatent-bbb 2.0") as caught:
        registry.modality("toy")
    assert caught.value.providers == ["mmlatent-aaa 1.0", "mmlatent-bbb 2.0"]
    with pytest.raises(PluginLookupError, match="dataset 'toyset' is registered by more than one plugin"):
        registry.dataset("toyset")


def test_duplicate_of_a_builtin_name_is_reported(make_plugin):
    source = "@mmlatent.hookimpl\ndef register_modalities(register):\n    register(kind('vector'))\n"
    make_plugin("mmlatent-shadow", "0.3", modules={"toy_shadow": source})
    registry = load_registry(only=["mmlatent-shadow"])
    assert "mmlatent 0.1.0 and mmlatent-shadow 0.3" in info(registry, "mmlatent-shadow").error
    assert "mmlatent-shadow 0.3" in info(registry, "mmlatent").error
    with pytest.raises(PluginLookupError, match="mmlatent-shadow"):
        registry.modality("vector")
    assert registry.dataset("tensors")  # the rest of the built-in plugin is unaffected


def test_same_name_twice_from_one_distribution(make_plugin):
    source = "@mmlatent.hookimpl\ndef register_modalities(register):\n    register(kind('twin'))\n"
    make_plugin("mmlatent-twins", modules={"toy_twin1": source, "toy_twin2": source})
    registry = load_registry(only=["mmlatent-twins"])
    twins = info(registry, "mmlatent-twins")
    assert twins.error == "DuplicateNameError: modality kind 'twin' is registered twice by mmlatent-twins 1.0"
    assert registry.modality("twin")  # one distribution: no ambiguity about who provides it


def test_two_entry_points_of_the_same_name_both_load(make_plugin):
    """pluggy's own loader skips the second entry point called 'plugin'; ours does not."""
    one = "@mmlatent.hookimpl\ndef register_modalities(register):\n    register(kind('one'))\n"
    two = "@mmlatent.hookimpl\ndef register_modalities(register):\n    register(kind('two'))\n"
    make_plugin("mmlatent-one", modules={"toy_one": one}, entry_points={"plugin": "toy_one"})
    make_plugin("mmlatent-two", modules={"toy_two": two}, entry_points={"plugin": "toy_two"})
    registry = load_registry(only=["mmlatent-one", "mmlatent-two"])
    assert registry.provider_of_modality("one").name == "mmlatent-one"
    assert registry.provider_of_modality("two").name == "mmlatent-two"
    pm = pluggy.PluginManager("mmlatent")
    pm.add_hookspecs(hookspecs)
    sys.modules.pop("toy_one", None)
    sys.modules.pop("toy_two", None)
    assert pm.load_setuptools_entrypoints("mmlatent", name="plugin") == 1  # the behaviour we avoid


# -------------------------------------------------------------------------- environment variables
def test_load_plugins_env_limits_external_distributions(make_plugin, monkeypatch):
    make_plugin("mmlatent-toy", modules={"toy_good": GOOD})
    make_plugin("mmlatent-broken", modules={"toy_broken": "raise RuntimeError('boom')\n"})
    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", "Mmlatent_Toy")  # normalised like pip does
    registry = get_registry(reload=True)
    assert [p.name for p in registry.plugins] == ["mmlatent", "mmlatent-toy"]
    assert "toy_broken" not in sys.modules  # not even imported

    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", "")
    registry = get_registry(reload=True)
    assert [p.name for p in registry.plugins] == ["mmlatent"] and registry.modality("vector")

    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", " mmlatent-broken , mmlatent-toy ")
    names = [p.name for p in get_registry(reload=True).plugins]
    assert names == ["mmlatent", "mmlatent-broken", "mmlatent-toy"]


def test_unset_load_plugins_env_loads_everything_installed(make_plugin):
    make_plugin("mmlatent-toy", modules={"toy_good": GOOD})
    registry = get_registry(reload=True)
    assert registry.provider_of_modality("toy").name == "mmlatent-toy"


def test_load_plugins_env_naming_a_missing_distribution_warns(make_plugin, monkeypatch):
    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", "mmlatent-nowhere")
    with pytest.warns(UserWarning, match="mmlatent-nowhere"):
        registry = get_registry(reload=True)
    assert [p.name for p in registry.plugins] == ["mmlatent"]
    monkeypatch.setenv("MMLATENT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="mmlatent-nowhere"):
        get_registry(reload=True)


def test_strict_mode_raises_with_the_plugins_exception_chained(make_plugin, monkeypatch):
    make_plugin("mmlatent-broken", "0.0.1", modules={"toy_broken": "raise RuntimeError('boom')\n"})
    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", "mmlatent-broken")
    monkeypatch.setenv("MMLATENT_STRICT_PLUGINS", "1")
    before = get_registry.__globals__["_registry"]
    with pytest.raises(PluginLoadError, match=r"mmlatent-broken 0\.0\.1 .*RuntimeError: boom") as caught:
        get_registry(reload=True)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.distribution == "mmlatent-broken" and caught.value.version == "0.0.1"
    assert get_registry.__globals__["_registry"] is before  # a failed load caches nothing
    monkeypatch.setenv("MMLATENT_STRICT_PLUGINS", "0")
    assert get_registry(reload=True).plugin("mmlatent-broken").error == "RuntimeError: boom"


def test_strict_mode_raises_on_duplicates(make_plugin):
    make_plugin("mmlatent-aaa", modules={"toy_aaa": GOOD})
    make_plugin("mmlatent-bbb", modules={"toy_bbb": GOOD})
    with pytest.raises(PluginLoadError, match="registered by both mmlatent-aaa 1.0 and mmlatent-bbb 1.0"):
        load_registry(only=["mmlatent-aaa", "mmlatent-bbb"], strict=True)


# ------------------------------------------------------------------------------------- the command
def test_plugins_command_table_shows_errors(make_plugin, monkeypatch, capsys):
    make_plugin("mmlatent-broken", "0.0.1", modules={"toy_broken": "raise RuntimeError('boom')\n"})
    make_plugin("mmlatent-toy", modules={"toy_good": GOOD})
    monkeypatch.setenv("MMLATENT_LOAD_PLUGINS", "mmlatent-broken,mmlatent-toy")
    get_registry(reload=True)
    assert plugins_command(as_json=False) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["PLUGIN", "VERSION", "MODALITIES", "DATASETS", "MODELS", "STATUS"]
    assert out[1].split() == ["mmlatent", "0.1.0", "vector", "tensors,", "paired", "mld", "ok"]
    assert out[2].split() == ["mmlatent-broken", "0.0.1", "-", "-", "-", "error"]
    assert out[3].split() == ["mmlatent-toy", "1.0", "toy", "toyset", "-", "ok"]
    assert "  mmlatent-broken 0.0.1: RuntimeError: boom" in out
    assert any("MMLATENT_STRICT_PLUGINS=1" in line for line in out)


def test_optional_hooks_of_newer_versions_are_tolerated(make_plugin):
    source = GOOD + """
@mmlatent.hookimpl(optionalhook=True)
def register_samplers(register):
    raise AssertionError("not a hook of this version: never called")
"""
    make_plugin("mmlatent-future", modules={"toy_future": source})
    registry = load_registry(only=["mmlatent-future"])
    assert info(registry, "mmlatent-future").error is None and registry.modality("toy")


def test_plugin_objects_other_than_modules(make_plugin):
    """An entry point may name an object; an unhashable one must not break the plugins after it."""
    odd = """
class Unhashable:
    __hash__ = None

    def __eq__(self, other):
        return self is other

    @mmlatent.hookimpl
    def register_modalities(self, register):
        register(kind("odd"))

PLUGIN = Unhashable()
"""
    wrapper = "@mmlatent.hookimpl(wrapper=True)\ndef register_modalities(register):\n    yield\n"
    make_plugin("mmlatent-aaa-odd", modules={"toy_odd": odd}, entry_points={"odd": "toy_odd:PLUGIN"})
    make_plugin("mmlatent-bbb-wrapper", modules={"toy_wrapper": wrapper})
    make_plugin("mmlatent-ccc", modules={"toy_good": GOOD})
    registry = load_registry(only=["mmlatent-aaa-odd", "mmlatent-bbb-wrapper", "mmlatent-ccc"])
    assert registry.provider_of_modality("odd").name == "mmlatent-aaa-odd"
    assert "may not be a hook wrapper" in info(registry, "mmlatent-bbb-wrapper").error
    assert info(registry, "mmlatent-ccc").error is None and registry.modality("toy")
