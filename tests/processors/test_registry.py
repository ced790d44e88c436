"""Registration: built-ins in an explicit list, third parties through entry points, configuration
decides which run, duplicates fail start-up."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from herald.processors import ENTRY_POINT_GROUP, Processor, ProcessorConfigError, builtin_processors
from herald.processors import registered_processors as registered
from herald.processors._registry import load_processors
from herald.processors.testing import RecordingProcessor, make_context


def test_builtins_are_email_webhook_slack_in_that_order() -> None:
    assert [(c.kind, c.name) for c in builtin_processors()] == [
        ("email", "Email"), ("webhook", "Webhook"), ("slack", "SlackNotificationProcessor")]


def _entry_point(name: str, target: object) -> importlib.metadata.EntryPoint:
    module = types.ModuleType(f"herald_test_plugin_{name}")
    module.Target = target  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    return importlib.metadata.EntryPoint(name, f"{module.__name__}:Target", ENTRY_POINT_GROUP)


def test_entry_points_are_registered_after_builtins() -> None:
    classes = registered([_entry_point("recording", RecordingProcessor)])
    assert classes[-1] is RecordingProcessor
    assert classes[:3] == builtin_processors()


def test_the_installed_entry_point_group_is_read() -> None:
    # whatever is installed (usually nothing) loads without error and keeps the built-ins first
    assert registered()[:3] == builtin_processors()


class _AnotherEmail(Processor[Any]):
    name = "email"  # channel ids match case-insensitively: this collides with "Email"
    kind = "email2"


class _AnotherKind(Processor[Any]):
    name = "Mailer"
    kind = "email"


class _Web(Processor[Any]):
    name = "Web"
    kind = "web"


def test_duplicate_name_fails_with_a_clear_error() -> None:
    with pytest.raises(ProcessorConfigError, match=r"duplicate processor name 'email': .*EmailProcessor and "
                                                    r".*_AnotherEmail"):
        registered([_entry_point("another", _AnotherEmail)])


def test_duplicate_kind_fails_with_a_clear_error() -> None:
    with pytest.raises(ProcessorConfigError, match=r"duplicate processor kind 'email' "
                                                    r"\(notifications.processors.email\)"):
        registered([_entry_point("kind", _AnotherKind)])


def test_web_is_reserved() -> None:
    with pytest.raises(ProcessorConfigError, match="built-in Web channel"):
        registered([_entry_point("web", _Web)])


def test_entry_point_that_is_not_a_processor() -> None:
    with pytest.raises(ProcessorConfigError, match=r"is not a herald\.processors\.Processor subclass"):
        registered([_entry_point("junk", object)])


def test_entry_point_that_does_not_load() -> None:
    ep = importlib.metadata.EntryPoint("broken", "herald_no_such_module_xyz:Thing", ENTRY_POINT_GROUP)
    with pytest.raises(ProcessorConfigError, match="cannot be loaded: ModuleNotFoundError"):
        registered([ep])


CLASSES = [*builtin_processors(), RecordingProcessor]


def test_configuration_decides_which_run(tmp_path: Path) -> None:
    ctx = make_context(data_dir=tmp_path)
    assert load_processors({}, ctx, classes=CLASSES) == []
    loaded = load_processors({"recording": {}, "webhook": False, "slack": None}, ctx, classes=CLASSES)
    assert [p.name for p in loaded] == ["Recording"]
    assert load_processors({"recording": {"enabled": False}}, ctx, classes=CLASSES) == []
    both = load_processors({"recording": True, "email": {"transportConfig": {"transport": "stream"},
                                                           "sender": "a@example.com"}}, ctx, classes=CLASSES)
    assert [p.name for p in both] == ["Email", "Recording"]  # registration order, not config order


def test_unknown_processor_key_fails(tmp_path: Path) -> None:
    with pytest.raises(ProcessorConfigError, match=r"notifications.processors.emial: no processor of this kind "
                                                    r"is installed \(installed: email, recording, slack, webhook\)"):
        load_processors({"emial": {}}, make_context(data_dir=tmp_path), classes=CLASSES)


def test_bad_settings_fail_start_up_of_the_whole_service(tmp_path: Path) -> None:
    import asyncio

    from herald.bootstrap import build
    from herald.config import load_config

    cfg = load_config(None, environ={}, overrides={
        "dataDir": str(tmp_path / "data"), "database": {"url": f"sqlite:///{tmp_path / 'h.db'}"},
        "notifications": {"processors": {"email": {"sender": "a@example.com"}}}})
    message = r"notifications\.processors\.email\.transportConfig: Field required"
    with pytest.raises(ProcessorConfigError, match=message):
        asyncio.run(build(cfg))
