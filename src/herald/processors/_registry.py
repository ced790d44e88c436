"""Which processors exist (built-ins, then the `herald.processors` entry points) and which run
(those configured under `notifications.processors`)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from typing import Any

from herald.core.model import WEB_CHANNEL
from herald.processors._api import Processor, ProcessorConfigError, ProcessorContext, ProcessorSettings

ENTRY_POINT_GROUP = "herald.processors"

ProcessorClass = type[Processor[Any]]


def builtin_processors() -> list[ProcessorClass]:
    """The processors that ship with Herald, in registration order."""
    from herald.processors._email import EmailProcessor
    from herald.processors._slack import SlackProcessor
    from herald.processors._webhook import WebhookProcessor

    return [EmailProcessor, WebhookProcessor, SlackProcessor]


def registered_processors(entry_points: Iterable[importlib.metadata.EntryPoint] | None = None
                          ) -> list[ProcessorClass]:
    """Built-ins, then every class registered in the `herald.processors` entry-point group, e.g.
    in a plugin's pyproject.toml::

        [project.entry-points."herald.processors"]
        pager = "herald_pager:PagerProcessor"

    ProcessorConfigError when an entry point does not load, is not a Processor, or reuses a name
    or kind."""
    classes = builtin_processors()
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
    for ep in eps:
        where = f"entry point '{ep.name} = {ep.value}' (group {ENTRY_POINT_GROUP})"
        try:
            obj = ep.load()
        except Exception as e:
            raise ProcessorConfigError(f"{where} cannot be loaded: {type(e).__name__}: {e}") from None
        if not (isinstance(obj, type) and issubclass(obj, Processor)):
            raise ProcessorConfigError(f"{where} is not a herald.processors.Processor subclass")
        classes.append(obj)
    check_registry(classes)
    return classes


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def check_registry(classes: Iterable[ProcessorClass]) -> None:
    """Every class declares a name, a kind and a settings model; names and kinds are unique
    (names case-insensitively, as channel ids are matched); `Web` is taken."""
    names: dict[str, ProcessorClass] = {}
    kinds: dict[str, ProcessorClass] = {}
    for cls in classes:
        name = getattr(cls, "name", None)
        kind = getattr(cls, "kind", None)
        if not isinstance(name, str) or not name or not isinstance(kind, str) or not kind:
            raise ProcessorConfigError(f"processor {_qualname(cls)} must set the class attributes name and kind")
        settings = getattr(cls, "Settings", None)
        if not (isinstance(settings, type) and issubclass(settings, ProcessorSettings)):
            raise ProcessorConfigError(f"processor {_qualname(cls)}: Settings must subclass ProcessorSettings")
        if name.lower() == WEB_CHANNEL.lower():
            raise ProcessorConfigError(f"processor {_qualname(cls)}: the name '{name}' is the built-in Web channel")
        other = names.get(name.lower())
        if other is not None and other is not cls:
            raise ProcessorConfigError(f"duplicate processor name '{name}': {_qualname(other)} and {_qualname(cls)}")
        other = kinds.get(kind)
        if other is not None and other is not cls:
            raise ProcessorConfigError(f"duplicate processor kind '{kind}' (notifications.processors.{kind}): "
                                       f"{_qualname(other)} and {_qualname(cls)}")
        names[name.lower()] = cls
        kinds[kind] = cls


def load_processors(config: Mapping[str, Any], context: ProcessorContext, *,
                    classes: Iterable[ProcessorClass] | None = None) -> list[Processor[Any]]:
    """Instantiate the configured processors, in registration order. A processor runs when
    `notifications.processors.<kind>` is present and not `false` (nor `enabled: false`).
    ProcessorConfigError for settings that do not validate, or for a key no processor owns."""
    registry = list(classes) if classes is not None else registered_processors()
    check_registry(registry)
    by_kind = {c.kind: c for c in registry}
    unknown = sorted(set(config) - set(by_kind))
    if unknown:
        raise ProcessorConfigError(
            f"notifications.processors.{unknown[0]}: no processor of this kind is installed "
            f"(installed: {', '.join(sorted(by_kind)) or 'none'})")
    out: list[Processor[Any]] = []
    for cls in registry:
        if cls.kind not in config:
            continue
        raw = config[cls.kind]
        if raw is None or raw is False:
            continue
        settings = cls.parse_settings(raw)
        if not settings.enabled:
            continue
        out.append(cls(settings, context))
    return out
