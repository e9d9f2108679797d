"""``--set dotted.key=value`` overrides, including list items by index."""

from __future__ import annotations

from mmlatent.recipe import apply_overrides


def test_nested_keys_are_created_and_values_parsed_as_yaml():
    raw, errors = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c.d=[1, 2]", "e=text here"])
    assert not errors and raw == {"a": {"b": 2, "c": {"d": [1, 2]}}, "e": "text here"}


def test_a_numeric_part_indexes_a_list():
    raw = {"data": {"options": {"sources": [{"dataset": "x", "options": {}}, {"dataset": "y"}]}}}
    raw, errors = apply_overrides(raw, ["data.options.sources.1.options.root=/tmp/a",
                                        "data.options.sources.0.dataset=z", "data.options.sources.0.options.k=3"])
    assert not errors
    assert raw["data"]["options"]["sources"] == [{"dataset": "z", "options": {"k": 3}},
                                                 {"dataset": "y", "options": {"root": "/tmp/a"}}]


def test_bad_paths_are_errors_naming_the_key():
    raw = {"sources": [{"a": 1}], "n": 5}
    _, errors = apply_overrides(raw, ["sources.2.a=1", "sources.x=1", "n.m=1"])
    assert [key for key, _ in errors] == ["sources.2.a", "sources.x", "n.m"]
    assert "not an index of a list of 1 item" in errors[0][1] and "cannot set a key inside" in errors[2][1]
