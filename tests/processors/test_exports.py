"""The public surfaces (`herald.processors`, `herald.processors.testing`) export what they say."""

from __future__ import annotations

import importlib

import pytest


def isort_key(name: str) -> tuple[int, str]:
    """Ruff's `__all__` order: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("module", ["herald.processors", "herald.processors.testing", "herald.processors.runtime"])
def test_all_is_sorted_and_importable(module: str) -> None:
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names == sorted(names, key=isort_key)
    for name in names:
        assert hasattr(mod, name), name


def test_public_api_exposes_no_private_module_names() -> None:
    mod = importlib.import_module("herald.processors")
    public = {n for n in dir(mod) if not n.startswith("_")}
    assert public <= set(mod.__all__) | {"annotations", "testing", "runtime"}
