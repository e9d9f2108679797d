"""The plugin registry: entry-point loading, error capture, lookups and ``mmlatent plugins``.

Plugins are the modules named by entry points of group ``mmlatent`` (see :mod:`mmlatent.hookspecs`).
They are loaded on first use, never at ``import mmlatent``::

    registry = get_registry()                 # loads once, then cached
    registry.modality("vector")               # -> ModalitySpec, or PluginLookupError
    registry.provider_of_modality("vector")   # -> Provider(name="mmlatent", version="0.1.0")

Loading rules (the reasons: one broken plugin must never take the program down, and two plugins
claiming the same name must never be resolved silently):

- the built-in plugin (:mod:`mmlatent.builtin`, distribution ``mmlatent``) always loads first;
- every other entry point is loaded in its own ``try``/``except``, in the order of the
  distribution names; whatever goes wrong (import error, hook validation error, an exception inside
  a hook call, a bad registration) is recorded on that distribution's :class:`PluginInfo` as
  ``"ExceptionType: message"`` and the others go on loading; what a failing hook call registered
  before it raised is discarded;
- a modality kind or dataset name registered by two distributions is an error recorded on both,
  naming both; the name is then left out of the registry, and looking it up raises a
  :class:`PluginLookupError` naming both distributions;
- ``MMLATENT_LOAD_PLUGINS=a,b`` loads only the distributions ``a`` and ``b`` (``""`` loads none);
- ``MMLATENT_STRICT_PLUGINS=1`` raises :class:`PluginLoadError` at the first error instead.

Entry points are read with our own loop over :func:`importlib.metadata.entry_points` rather than
pluggy's ``load_setuptools_entrypoints``, which silently skips a second entry point of a name.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pluggy
from pydantic import BaseModel

from mmlatent import builtin, hookspecs
from mmlatent.families import ModelSpec
from mmlatent.specs import DatasetSpec, ModalitySpec, is_reference
from mmlatent.version import __version__

__all__ = [
    "BUILTIN_DISTRIBUTION",
    "ENV_LOAD_PLUGINS",
    "ENV_STRICT_PLUGINS",
    "PluginInfo",
    "PluginLoadError",
    "PluginLookupError",
    "Provider",
    "Registry",
    "get_registry",
    "load_registry",
    "plugins_command",
]

#: Distribution name under which the built-in plugin is listed.
BUILTIN_DISTRIBUTION = "mmlatent"
ENV_LOAD_PLUGINS = "MMLATENT_LOAD_PLUGINS"
ENV_STRICT_PLUGINS = "MMLATENT_STRICT_PLUGINS"

#: The register-callback hooks, in the order they are called; (hook name, what it registers).
_HOOKS = (("register_modalities", "modality kind"), ("register_datasets", "dataset"),
          ("register_models", "model family"))

#: What each kind of registration is: (spec class, Registry table, PluginInfo list, name attribute).
_KINDS = {"modality kind": (ModalitySpec, "modalities", "kind"), "dataset": (DatasetSpec, "datasets", "name"),
          "model family": (ModelSpec, "models", "name")}


class PluginLookupError(LookupError):
    """A modality kind, dataset or model family that no loaded plugin provides (or that two provide).

    ``what`` is ``"modality kind"``, ``"dataset"`` or ``"model family"``, ``name`` the name asked for, ``installed``
    the names that are available, ``providers`` the distributions claiming ``name`` when it is
    ambiguous (empty otherwise).
    """

    def __init__(
        self, message: str, *, what: str, name: str, installed: Sequence[str], providers: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.what = what
        self.name = name
        self.installed = list(installed)
        self.providers = list(providers)

    def __str__(self) -> str:  # LookupError would add quotes around the message
        return str(self.args[0])


class PluginLoadError(RuntimeError):
    """A plugin failed to load while ``MMLATENT_STRICT_PLUGINS=1`` (or ``strict=True``)."""

    def __init__(self, message: str, *, distribution: str, version: str) -> None:
        super().__init__(message)
        self.distribution = distribution
        self.version = version


class Provider(NamedTuple):
    """The distribution that provides a modality kind or dataset (saved in run directories)."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass
class PluginInfo:
    """One plugin distribution as ``mmlatent plugins`` lists it.

    ``modalities`` and ``datasets`` are the names its hooks registered (in registration order);
    ``error`` is ``None`` or ``"ExceptionType: message"`` (several errors joined by ``"; "``).
    """

    name: str
    version: str
    modalities: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    error: str | None = None
    entry_points: list[str] = field(default_factory=list)

    @property
    def provider(self) -> Provider:
        return Provider(self.name, self.version)

    def add_error(self, error: str) -> None:
        self.error = error if self.error is None else f"{self.error}; {error}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``mmlatent plugins --json``."""
        return {
            "name": self.name,
            "version": self.version,
            "modalities": list(self.modalities),
            "datasets": list(self.datasets),
            "models": list(self.models),
            "error": self.error,
        }


def _describe(exc: BaseException) -> str:
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def normalize_distribution_name(name: str) -> str:
    """PEP 503 normalisation: ``Mmlatent_Image`` and ``mmlatent-image`` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).strip().lower()


class Registry:
    """The loaded plugins: modality kinds and datasets by name, and one :class:`PluginInfo` per
    distribution. Build it with :func:`get_registry` (cached) or :func:`load_registry`."""

    def __init__(self, plugin_manager: pluggy.PluginManager) -> None:
        self.plugin_manager = plugin_manager
        self.modalities: dict[str, ModalitySpec] = {}
        self.datasets: dict[str, DatasetSpec] = {}
        self.models: dict[str, ModelSpec] = {}
        self.plugins: list[PluginInfo] = []
        #: (what, name) -> distributions that registered it more than once ("dist version").
        self.conflicts: dict[tuple[str, str], list[str]] = {}
        self._providers: dict[tuple[str, str], PluginInfo] = {}

    # ---------------------------------------------------------------------------------- lookups
    def modality(self, kind: str) -> ModalitySpec:
        """The :class:`ModalitySpec` of ``kind``; :class:`PluginLookupError` names what is installed."""
        if kind in self.modalities:
            return self.modalities[kind]
        raise self._lookup_error("modality kind", kind, sorted(self.modalities))

    def dataset(self, name: str) -> DatasetSpec:
        """The :class:`DatasetSpec` called ``name``; :class:`PluginLookupError` names what is installed."""
        if name in self.datasets:
            return self.datasets[name]
        raise self._lookup_error("dataset", name, sorted(self.datasets))

    def model(self, family: str) -> ModelSpec:
        """The :class:`~mmlatent.families.ModelSpec` of model ``family``; :class:`PluginLookupError`
        names what is installed."""
        if family in self.models:
            return self.models[family]
        raise self._lookup_error("model family", family, sorted(self.models))

    def provider_of_model(self, family: str) -> Provider:
        """Distribution name and version of the plugin that registered model ``family``."""
        self.model(family)
        return self._providers[("model family", family)].provider

    def provider_of_modality(self, kind: str) -> Provider:
        """Distribution name and version of the plugin that registered modality ``kind``."""
        self.modality(kind)
        return self._providers[("modality kind", kind)].provider

    def provider_of_dataset(self, name: str) -> Provider:
        """Distribution name and version of the plugin that registered dataset ``name``."""
        self.dataset(name)
        return self._providers[("dataset", name)].provider

    @property
    def errors(self) -> dict[str, str]:
        """Distribution name -> error, for the plugins that failed (wholly or in part)."""
        return {info.name: info.error for info in self.plugins if info.error is not None}

    def plugin(self, name: str) -> PluginInfo:
        """The :class:`PluginInfo` of distribution ``name`` (normalised comparison)."""
        wanted = normalize_distribution_name(name)
        for info in self.plugins:
            if normalize_distribution_name(info.name) == wanted:
                return info
        raise PluginLookupError(
            f"no plugin distribution {name!r} is loaded (loaded: {', '.join(i.name for i in self.plugins)})",
            what="plugin",
            name=name,
            installed=[i.name for i in self.plugins],
        )

    def _lookup_error(self, what: str, name: str, installed: list[str]) -> PluginLookupError:
        providers = self.conflicts.get((what, name), [])
        if providers:
            message = (
                f"{what} {name!r} is registered by more than one plugin: {' and '.join(providers)} "
                f"(uninstall one, or choose with {ENV_LOAD_PLUGINS}=...)"
            )
        else:
            label = "" if what == "modality kind" else f"{what} "
            message = (
                f"no installed plugin provides {label}{name!r} "
                f"(installed: {', '.join(installed) if installed else 'none'})"
            )
            failed = [info.name for info in self.plugins if info.error is not None]
            if failed:
                message += (
                    f"; plugins with load errors: {', '.join(failed)} (see `mmlatent plugins`)"
                )
        return PluginLookupError(message, what=what, name=name, installed=installed, providers=providers)


# ---------------------------------------------------------------------------------------- loading
def _env_load_list() -> set[str] | None:
    raw = os.environ.get(ENV_LOAD_PLUGINS)
    if raw is None:
        return None
    return {normalize_distribution_name(p) for p in raw.split(",") if p.strip()}


def _env_strict() -> bool:
    return os.environ.get(ENV_STRICT_PLUGINS, "").strip().lower() in {"1", "true", "yes", "on"}


def _distribution_of(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ep.module, "unknown"
    name = dist.metadata["Name"] or dist.name
    return name, dist.version or "unknown"


class _Loader:
    """One loading pass: fills a :class:`Registry`; lives only inside :func:`load_registry`."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        self.pm = pm
        self.registry = Registry(pm)
        #: (what, name) -> PluginInfo of every distribution that registered it.
        self._claims: dict[tuple[str, str], list[PluginInfo]] = {}

    def fail(self, info: PluginInfo, exc: BaseException, context: str = "") -> None:
        error = _describe(exc)
        info.add_error(error)
        if self.strict:
            where = f" ({context})" if context else ""
            raise PluginLoadError(
                f"plugin {info.name} {info.version}{where}: {error}", distribution=info.name, version=info.version
            ) from exc

    def add_plugin_safely(self, info: PluginInfo, plugin: object, plugin_name: str) -> None:
        """:meth:`add_plugin`, with anything unforeseen (an odd plugin object) recorded, not raised."""
        try:
            self.add_plugin(info, plugin, plugin_name)
        except PluginLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - never let one plugin stop the others
            self.fail(info, exc, plugin_name)

    def add_plugin(self, info: PluginInfo, plugin: object, plugin_name: str) -> None:
        """Register one plugin object (a module, usually) and run its hooks, attributed to ``info``."""
        if self.pm.is_registered(plugin):  # two entry points naming the same module
            return
        try:
            self.pm.register(plugin, name=plugin_name)
        except Exception as exc:  # noqa: BLE001 - any validation problem is the plugin's error
            self.fail(info, exc, plugin_name)
            return
        hooks = self.pm.get_hookcallers(plugin) or []
        unknown = [
            hc.name
            for hc in hooks
            if not hc.has_spec() and not all(i.optionalhook for i in hc.get_hookimpls() if i.plugin is plugin)
        ]
        known_names = ", ".join(name for name, _ in _HOOKS)
        if unknown:
            self.pm.unregister(plugin)
            self.fail(
                info,
                pluggy.PluginValidationError(
                    plugin, f"unknown hook(s) {', '.join(sorted(unknown))} in {plugin_name} (known: {known_names})"
                ),
                plugin_name,
            )
            return
        if not hooks:
            self.pm.unregister(plugin)
            self.fail(
                info,
                pluggy.PluginValidationError(
                    plugin,
                    f"{plugin_name} implements no mmlatent hook "
                    f"(decorate {known_names} with @mmlatent.hookimpl)",
                ),
                plugin_name,
            )
            return
        for hook_name, what in _HOOKS:
            registered: list[tuple[str, Any]] = []

            def register(spec: Any, _what: str = what, _out: list = registered) -> None:
                _out.append((_check_spec(spec, _what), spec))

            try:
                # Only this plugin's implementations, called directly (as pluggy's own loop does):
                # every registration is then attributed to this plugin's distribution.
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is not plugin:
                        continue
                    if impl.wrapper or impl.hookwrapper:
                        raise pluggy.PluginValidationError(plugin, f"{hook_name} may not be a hook wrapper")
                    impl.function(*[{"register": register}[arg] for arg in impl.argnames])
            except (Exception, SystemExit) as exc:  # a raising hook is that plugin's error
                self.fail(info, exc, f"{plugin_name}.{hook_name}")
                continue  # what this call registered before raising is discarded
            for name, spec in registered:
                self.claim(info, what, name, spec)

    def claim(self, info: PluginInfo, what: str, name: str, spec: Any) -> None:
        key = (what, name)
        _, attribute, _ = _KINDS[what]
        table = getattr(self.registry, attribute)
        names = getattr(info, attribute)
        claimants = self._claims.setdefault(key, [])
        if any(c is info for c in claimants):
            self.fail(info, DuplicateNameError(f"{what} {name!r} is registered twice by {info.name} {info.version}"))
            return
        names.append(name)
        claimants.append(info)
        if len(claimants) == 1:
            table[name] = spec
            self.registry._providers[key] = info
            return
        # A second distribution claims the name: the name is ambiguous, recorded on both.
        table.pop(name, None)
        self.registry._providers.pop(key, None)
        labels = [f"{c.name} {c.version}" for c in claimants]
        self.registry.conflicts[key] = labels
        error = DuplicateNameError(f"{what} {name!r} is registered by both {' and '.join(labels)}")
        if len(claimants) == 2:  # the first claimant learns of it once; every newcomer fails
            claimants[0].add_error(_describe(error))
        self.fail(info, error)


class DuplicateNameError(ValueError):
    """Two plugin distributions (or one, twice) register the same modality kind, dataset or model family."""


def _is_modality_class(value: Any) -> bool:
    """Whether ``value`` is a :class:`~mmlatent.modality.Modality` subclass (a class given directly: its
    plugin has imported torch already, so importing the contract costs nothing more)."""
    if not isinstance(value, type):
        return False
    from mmlatent.modality import Modality

    return issubclass(value, Modality)


def _check_spec(spec: Any, what: str) -> str:
    """Validate what a plugin passed to ``register``; returns its name."""
    expected, _, name_attribute = _KINDS[what]
    if not isinstance(spec, expected):
        raise TypeError(f"register() expects a {expected.__name__}, got {type(spec).__name__}")
    name = getattr(spec, name_attribute)
    if isinstance(spec, ModalitySpec) and not (is_reference(spec.modality) or _is_modality_class(spec.modality)):
        raise TypeError(f"{what} {name!r}: ModalitySpec.modality must be a Modality subclass or a 'module:Class' "
                        f"reference to one, got {spec.modality!r}")
    if isinstance(spec, DatasetSpec) and not (callable(spec.build) and callable(spec.fields)):
        raise TypeError(f"{what} {name!r}: DatasetSpec.build and DatasetSpec.fields must be callables")
    if isinstance(spec, ModelSpec) and not (callable(spec.train) and callable(spec.load)):
        raise TypeError(f"{what} {name!r}: ModelSpec.train and ModelSpec.load must be callables")
    if not (isinstance(spec.options, type) and issubclass(spec.options, BaseModel)):
        raise TypeError(f"{what} {name!r}: options must be a pydantic model class, got {spec.options!r}")
    if not isinstance(name, str) or not name or name != name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"invalid {what} name {name!r}: a non-empty name without spaces is required")
    extra = spec.options.model_config.get("extra")
    if extra != "forbid":
        raise ValueError(
            f"{what} {name!r}: options model {spec.options.__name__} must set "
            "model_config = ConfigDict(extra='forbid') so that misspelled options are rejected"
        )
    return name


def load_registry(
    *,
    only: Iterable[str] | None = None,
    strict: bool | None = None,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> Registry:
    """Load the built-in plugin and the installed plugins into a fresh :class:`Registry`.

    ``only`` limits the external distributions loaded (default: ``MMLATENT_LOAD_PLUGINS`` if set,
    else all); ``strict`` raises :class:`PluginLoadError` at the first error (default:
    ``MMLATENT_STRICT_PLUGINS``); ``entry_points`` replaces the installed ``mmlatent`` entry
    points (for tests). No cache: see :func:`get_registry`.
    """
    wanted = _env_load_list() if only is None else {normalize_distribution_name(n) for n in only}
    strict = _env_strict() if strict is None else bool(strict)
    loader = _Loader(strict)
    builtin_info = PluginInfo(BUILTIN_DISTRIBUTION, __version__, entry_points=["mmlatent.builtin"])
    loader.registry.plugins.append(builtin_info)
    loader.add_plugin_safely(builtin_info, builtin, "mmlatent.builtin")

    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
    by_dist: dict[str, tuple[str, str, list[importlib.metadata.EntryPoint]]] = {}
    for ep in entry_points:
        name, version = _distribution_of(ep)
        key = normalize_distribution_name(name)
        by_dist.setdefault(key, (name, version, []))[2].append(ep)

    if wanted is not None:
        missing = sorted(wanted - set(by_dist) - {BUILTIN_DISTRIBUTION})
        if missing:
            message = (
                f"{ENV_LOAD_PLUGINS} names distribution(s) with no mmlatent entry point: {', '.join(missing)} "
                f"(installed: {', '.join(sorted(n for n, _, _ in by_dist.values())) or 'none'})"
            )
            if strict:
                raise PluginLoadError(message, distribution=missing[0], version="")
            warnings.warn(message, stacklevel=2)

    for key in sorted(by_dist):
        name, version, eps = by_dist[key]
        if wanted is not None and key not in wanted and key != BUILTIN_DISTRIBUTION:
            continue
        if key == BUILTIN_DISTRIBUTION:
            info = builtin_info
        else:
            info = PluginInfo(name, version)
            loader.registry.plugins.append(info)
        for ep in sorted(eps, key=lambda e: (e.name, e.value)):
            info.entry_points.append(f"{ep.name} = {ep.value}")
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() on import included
                loader.fail(info, exc, f"entry point {ep.name} = {ep.value}")
                continue
            loader.add_plugin_safely(info, plugin, f"{info.name}:{ep.name}")
    return loader.registry


_registry: Registry | None = None
_loading = False
_lock = threading.RLock()


def get_registry(reload: bool = False) -> Registry:
    """The process-wide :class:`Registry`: plugins are loaded on the first call, then cached.

    ``reload=True`` loads again (after changing ``MMLATENT_LOAD_PLUGINS``, installing a plugin, ...).
    """
    global _registry, _loading
    with _lock:
        if _loading:  # checked first: a reload must not hand a loading plugin the previous registry
            raise RuntimeError("get_registry() was called while plugins are loading (from a plugin's import or hook)")
        if _registry is not None and not reload:
            return _registry
        _loading = True
        try:
            _registry = load_registry()
        finally:
            _loading = False
        return _registry


# ------------------------------------------------------------------------------------ the command
def format_table(plugins: Sequence[PluginInfo]) -> str:
    """The human listing of ``mmlatent plugins``."""
    header = ("PLUGIN", "VERSION", "MODALITIES", "DATASETS", "MODELS", "STATUS")
    rows = [
        (
            p.name,
            p.version,
            ", ".join(p.modalities) or "-",
            ", ".join(p.datasets) or "-",
            ", ".join(p.models) or "-",
            "ok" if p.error is None else "error",
        )
        for p in plugins
    ]
    lines = aligned_columns([header, *rows])
    failed = [p for p in plugins if p.error is not None]
    if failed:
        lines.append("")
        lines.append("errors:")
        lines.extend(f"  {p.name} {p.version}: {p.error}" for p in failed)
        lines.append(f"(set {ENV_STRICT_PLUGINS}=1 to raise them with a traceback)")
    return "\n".join(lines)


def aligned_columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Text rows as lines of left-aligned columns two spaces apart (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def plugins_command(as_json: bool = False) -> int:
    """``mmlatent plugins [--json]``: list the plugin distributions; returns the exit code."""
    registry = get_registry()
    if as_json:
        print(json.dumps([p.to_dict() for p in registry.plugins], indent=2))
    else:
        print(format_table(registry.plugins))
    sys.stdout.flush()
    return 0
