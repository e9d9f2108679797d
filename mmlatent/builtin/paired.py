"""Dataset ``paired``: registered datasets joined by label, the way MNIST-SVHN pairs MNIST with SVHN.

Options::

    sources:                      # two or more datasets, each with its options
      - dataset: digits_pair
        options: {val_fraction: 0.1}
        fields: {gray: image}     # source field -> output field: only these, renamed
      - dataset: spoken_digits    # no `fields`: every field under its own name
    k: 5                          # train: every item of the FIRST source appears in k items
    k_test: 1                     # val/test: in k_test items
    seed: 0                       # the pairing is a function of the seed

Each item of the first source appears in ``k`` items (``k_test`` outside ``train``), each time
joined with one item of the same class of every other source. The partners come from seeded
per-class permutations of the other source, cycled through, so that the items of a class of the
other source are used evenly (their use counts differ by at most one). A first-source item whose
class is missing from another source is left out (with a warning); a split of the first source
that has items none of which can be joined is an error (an empty split of the first source gives
an empty split, as ``digits_pair``'s ``val`` without ``val_fraction``). The order of the items is shuffled, so
that a prefix holds every class. Items are ``{output field: value, ..., "label": int}`` with the
first source's label; every source must have labels.

The splits are those every source has (in the first source's order); ``train`` and ``test`` must
be among them. Each split joins the sources' items of that split only, so the splits stay disjoint
when the sources' splits are.

The core registers this dataset through the ``mmlatent`` distribution's own entry point
(``paired = "mmlatent.builtin.paired"``), like the model family ``mld``: it builds its sources
through the plugin registry, which imports :mod:`mmlatent.builtin` (an import of this module from
there would close a circle). This module holds the options and the registration (no torch);
:mod:`mmlatent.builtin.paired_join` joins the items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from mmlatent.hookspecs import hookimpl
from mmlatent.specs import DatasetSpec

__all__ = ["PAIRED", "PairedOptions", "PairedSource", "common_splits", "paired_fields"]

LABEL = "label"
REQUIRED_SPLITS = ("train", "test")


# ------------------------------------------------------------------------------------- options
def source_spec(name: str) -> DatasetSpec:
    """The registered :class:`DatasetSpec` called ``name``; ``ValueError`` listing the installed ones."""
    from mmlatent.plugins import PluginLookupError, get_registry  # lazily: the registry imports the builtins

    try:
        return get_registry().dataset(name)
    except PluginLookupError as error:
        raise ValueError(str(error)) from None


def _describe(error: ValidationError) -> str:
    """A pydantic error in one line: ``key: message (got value); ...``."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] != "missing" and not isinstance(item.get("input"), dict):
            got = repr(item.get("input"))
            message += f" (got {got if len(got) <= 60 else got[:57] + '...'})"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


class PairedSource(BaseModel):
    """One dataset that ``paired`` joins: its name, its options and which of its fields to keep."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, description="name of a registered dataset (`mmlatent plugins` lists them)")
    options: dict[str, Any] = Field(default_factory=dict, description="that dataset's options, validated by its "
                                                                    "plugin (defaults filled in)")
    fields: dict[str, str] | None = Field(None, description="source field -> output field: only these fields, "
                                                            "renamed; null: every field under its own name")

    @field_validator("dataset")
    @classmethod
    def _registered(cls, name: str) -> str:
        source_spec(name)
        return name

    @field_validator("options")
    @classmethod
    def _valid_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("dataset")
        if name is None:  # the unknown dataset is reported already
            return options
        try:
            validated = source_spec(name).validate_options(options)
        except ValidationError as error:
            raise ValueError(f"dataset {name!r}: {_describe(error)}") from None
        return validated.model_dump(mode="json")

    @field_validator("fields")
    @classmethod
    def _valid_renaming(cls, renaming: dict[str, str] | None) -> dict[str, str] | None:
        if renaming is None:
            return None
        if not renaming:
            raise ValueError("an empty mapping keeps no field (leave `fields` out to keep every field)")
        if LABEL in renaming or LABEL in renaming.values():
            raise ValueError(f"{LABEL!r} is not a field: the items carry the first source's label")
        if not all(renaming) or not all(renaming.values()):
            raise ValueError("field names must be non-empty")
        by_output: dict[str, list[str]] = {}
        for source_field, output in renaming.items():
            by_output.setdefault(output, []).append(source_field)
        twice = {output: names for output, names in by_output.items() if len(names) > 1}
        if twice:
            output, names = next(iter(twice.items()))
            raise ValueError(f"fields {', '.join(map(repr, names))} are all renamed to {output!r}")
        return renaming


class PairedOptions(BaseModel):
    """Options of dataset ``paired``: the sources, the pairs per item and the seed."""

    model_config = ConfigDict(extra="forbid")

    sources: list[PairedSource] = Field(min_length=2, description="the datasets to join; the first one's items "
                                                                  "are each used k (k_test) times, with its label")
    k: int = Field(1, ge=1, description="items per item of the first source in train (each with other partners)")
    k_test: int = Field(1, ge=1, description="items per item of the first source in the other splits (val, test)")
    seed: int = Field(0, ge=0, description="seed of the pairing: which same-class items of the other sources join")

    @model_validator(mode="after")
    def _joinable(self) -> PairedOptions:
        splits = common_splits(self)
        missing = [split for split in REQUIRED_SPLITS if split not in splits]
        if missing:
            offered = "; ".join(f"source {i} ({source.dataset!r}): {', '.join(source_splits(source))}"
                                for i, source in enumerate(self.sources))
            raise ValueError(f"the sources do not all have a {' and a '.join(map(repr, missing))} split ({offered})")
        _resolve(self, strict=False)  # fields and labels, where the sources can tell without their data
        return self


# ------------------------------------------------------------------------------------ sources
def _describe_source(index: int, dataset: str, source_field: str | None = None) -> str:
    """``source 1 (dataset 'tensors')``, or with ``, field 'x'`` inside the brackets."""
    return f"source {index} (dataset {dataset!r}" + (f", field {source_field!r})" if source_field else ")")


@dataclass(frozen=True)
class _Source:
    """A validated source: its spec, its options and ``renaming`` (source field -> output field)."""

    index: int
    spec: DatasetSpec
    options: BaseModel
    renaming: dict[str, str] | None  # None when the fields could not be read (validation only)

    def __str__(self) -> str:
        return _describe_source(self.index, self.spec.name)


def _resolve(options: PairedOptions, strict: bool = True) -> list[_Source]:
    """Every source with its field renaming, checked: the fields named exist, every source has
    labels, no two sources give the same output field. ``strict=False`` (option validation) skips
    what a source cannot read without its data (a missing file), as ``mmlatent validate`` does."""
    resolved = []
    for index, source in enumerate(options.sources):
        spec = source_spec(source.dataset)
        source_options = spec.validate_options(source.options)
        try:
            fields = list(spec.fields(source_options))
            labelled = spec.has_labels(source_options)
        except Exception:  # noqa: BLE001 - data not on this machine yet: checked when the dataset is built
            if strict:
                raise
            resolved.append(_Source(index, spec, source_options, dict(source.fields) if source.fields else None))
            continue
        where = _describe_source(index, source.dataset)
        if not labelled:
            raise ValueError(f"{where} has no labels: paired joins items by label")
        unknown = [name for name in source.fields or {} if name not in fields]
        if unknown:
            raise ValueError(f"{where} has no field {', '.join(map(repr, unknown))} (fields: {', '.join(fields)})")
        renaming = dict(source.fields) if source.fields is not None else {name: name for name in fields}
        resolved.append(_Source(index, spec, source_options, renaming))
    origin: dict[str, str] = {}  # output field -> the source and field it comes from
    for source in resolved:
        for source_field, output in (source.renaming or {}).items():
            described = _describe_source(source.index, source.spec.name, source_field)
            if output in origin:
                raise ValueError(f"output field {output!r} comes from both {origin[output]} and {described}: "
                                 "rename one in that source's `fields`")
            origin[output] = described
    return resolved


def source_splits(source: PairedSource) -> tuple[str, ...]:
    """The splits one source offers with its options."""
    return source_spec(source.dataset).available_splits(source.options)


def common_splits(options: PairedOptions) -> tuple[str, ...]:
    """The splits every source has, in the first source's order (``DatasetSpec.splits_for``)."""
    first, *others = [source_splits(source) for source in options.sources]
    return tuple(split for split in first if all(split in splits for splits in others))


def paired_fields(options: PairedOptions) -> list[str]:
    """The output fields, source by source (each source's renaming, or its fields)."""
    return [output for source in _resolve(options) for output in source.renaming.values()]


def paired_has_labels(options: PairedOptions) -> bool:
    """Whether every source has labels (the items carry the first source's)."""
    specs = [source_spec(source.dataset) for source in options.sources]
    return all(spec.has_labels(spec.validate_options(source.options)) for spec, source in zip(specs, options.sources))


PAIRED = DatasetSpec(
    name="paired",
    build="mmlatent.builtin.paired_join:build_paired",
    fields=paired_fields,
    options=PairedOptions,
    splits=REQUIRED_SPLITS,
    has_labels=paired_has_labels,
    description="registered datasets joined by label (each item of the first source k times, with "
                "same-class items of the others)",
    splits_for=common_splits,
)


@hookimpl
def register_datasets(register):
    register(PAIRED)
