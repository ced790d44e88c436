from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

WriteFile = Callable[[str, str], Path]


@pytest.fixture
def conformance_org() -> Path:
    """A copy of the conformance suite's org (10 users, nested groups, a Component and a System)."""
    return DATA / "conformance_org.yaml"


@pytest.fixture
def write(tmp_path: Path) -> WriteFile:
    """write(name, yaml) -> path; dedents, and moves mtime forward so pollers always see the edit."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        after = path.stat().st_mtime_ns
        if after <= before:
            os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
        return path

    return _write
