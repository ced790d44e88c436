"""The host side of processors, for the composition root and the CLI: load the configured
processors, and run them with the ledger, the send hooks and the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from herald.core.clock import Clock
from herald.core.settings_model import SettingsPolicy
from herald.core.tasks import spawn
from herald.processors._api import (
    Directory,
    Processor,
    ProcessorConfigError,
    ProcessorContext,
    format_validation_error,
)
from herald.processors._hooks import ProcessorHooks
from herald.processors._ledger import AttemptRecord, DeliveryRecord, Ledger
from herald.processors._registry import load_processors, registered_processors
from herald.processors._worker import DeliverySettings, DeliveryWorker
from herald.store.database import Database

_log = logging.getLogger("herald.processors")

__all__ = [
    "AttemptRecord",
    "DeliveryRecord",
    "DeliveryRuntime",
    "DeliverySettings",
    "DeliveryWorker",
    "Ledger",
    "ProcessorHooks",
    "check_configuration",
    "delivery_settings",
    "load_configured_processors",
    "registered_processors",
]


def delivery_settings(raw: Mapping[str, Any] | None) -> DeliverySettings:
    """`notifications.delivery`; ProcessorConfigError when invalid."""
    try:
        return DeliverySettings.model_validate(raw or {})
    except ValidationError as e:
        raise ProcessorConfigError(format_validation_error("notifications.delivery", e)) from None


def check_configuration(processors: Mapping[str, Any], delivery: Mapping[str, Any] | None) -> None:
    """Validate `notifications.processors` and `notifications.delivery` without starting anything
    (ProcessorConfigError), so that a command can refuse to start with a one-line message."""
    from herald.processors._registry import check_registry

    classes = registered_processors()
    check_registry(classes)
    by_kind = {c.kind: c for c in classes}
    unknown = sorted(set(processors) - set(by_kind))
    if unknown:
        raise ProcessorConfigError(f"notifications.processors.{unknown[0]}: no processor of this kind is installed "
                                   f"(installed: {', '.join(sorted(by_kind))})")
    for kind, raw in processors.items():
        if raw is not None and raw is not False:
            by_kind[kind].parse_settings(raw)
    delivery_settings(delivery)


def load_configured_processors(config: Mapping[str, Any], *, app_base_url: str, directory: Directory,
                               data_dir: Path, clock: Clock) -> list[Processor[Any]]:
    """The processors `notifications.processors` turns on, validated (ProcessorConfigError)."""
    context = ProcessorContext(app_base_url=app_base_url, directory=directory, data_dir=data_dir, clock=clock)
    return load_processors(config, context)


@dataclass
class DeliveryRuntime:
    """Processors, ledger, hooks and worker of one Herald process."""

    processors: list[Processor[Any]]
    ledger: Ledger
    settings: DeliverySettings
    hooks: ProcessorHooks
    worker: DeliveryWorker
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _started: list[Processor[Any]] = field(default_factory=list, repr=False)

    @classmethod
    def create(cls, processors: Sequence[Processor[Any]], db: Database, policy: SettingsPolicy,
               settings: DeliverySettings, clock: Clock) -> DeliveryRuntime:
        ledger = Ledger(db)
        worker = DeliveryWorker(ledger, processors, settings, clock=clock)
        hooks = ProcessorHooks(processors, policy, clock=clock, on_enqueued=worker.wake)
        return cls(list(processors), ledger, settings, hooks, worker)

    @property
    def channels(self) -> list[str]:
        return [p.name for p in self.processors]

    def describe(self) -> list[dict[str, Any]]:
        """Each processor with its settings redacted (safe to show and log)."""
        return [{"name": p.name, "kind": p.kind, "settings": p.settings.redacted()} for p in self.processors]

    async def start(self, *, run_worker: bool | None = None) -> None:
        """Start the processors (ProcessorConfigError if one refuses), then the worker unless it
        runs elsewhere (`notifications.delivery.worker: external`)."""
        for p in self.processors:
            await p.start()
            self._started.append(p)
            _log.info("processor %s (%s) enabled: %s", p.name, p.kind, p.settings.redacted())
        if run_worker is None:
            run_worker = self.settings.worker == "in-process"
        if run_worker and self.processors:
            self._task = spawn(self.worker.run(), name="delivery-worker")

    async def stop(self) -> None:
        if self._task is not None:
            await self.worker.stop()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        started, self._started = self._started, []
        for p in reversed(started):
            try:
                await p.aclose()
            except Exception:
                _log.exception("processor %s did not close cleanly", p.name)
