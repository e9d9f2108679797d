from __future__ import annotations

import pytest

import mmlatent.plugins as plugins


@pytest.fixture(autouse=True)
def _keep_the_cached_registry(monkeypatch):
    """Tests that reload the registry under other settings must not leak it into later tests."""
    cached = plugins._registry
    yield
    plugins._registry = cached
