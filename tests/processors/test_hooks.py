"""Processors on the send path: processOptions, preProcess, eligibility per user (spec §3.5, §3.8),
and the ledger rows written in the send's transaction with a constant number of statements."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.processors.conftest import org_yaml

from herald.catalog import FileCatalog
from herald.core.clock import SystemClock
from herald.core.model import WEB_CHANNEL, Principal, SendRequest
from herald.core.ports import NewNotification
from herald.core.service import NotificationService
from herald.core.settings_model import (
    ChannelSetting,
    OriginSetting,
    SettingsDocument,
    SettingsPolicy,
    StoredSetting,
)
from herald.processors import DeliveryPlan, Filters, Processor
from herald.processors._hooks import ProcessorHooks
from herald.processors._ledger import DeliveryRecord, Ledger
from herald.processors.testing import RecordingProcessor, RecordingSettings, broadcast_request, entity_request
from herald.store.database import Database
from herald.store.sql_store import SqlNotificationStore

SENDER = Principal("service", "external:ci")
GROUP = "group:default/team"


class _Signals:
    async def publish(self, signals: Any) -> None:
        return None


class Counting:
    """Wraps a database and counts every statement, inside transactions too."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.statements: list[str] = []

    async def fetch(self, sql: str, params: Any = None) -> Any:
        self.statements.append(sql)
        return await self.inner.fetch(sql, params)

    async def fetchrow(self, sql: str, params: Any = None) -> Any:
        self.statements.append(sql)
        return await self.inner.fetchrow(sql, params)

    async def execute(self, sql: str, params: Any = None) -> Any:
        self.statements.append(sql)
        return await self.inner.execute(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.inner.transaction() as tx:
            outer = self

            class Tx:
                async def fetch(self, sql: str, params: Any = None) -> Any:
                    outer.statements.append(sql)
                    return await tx.fetch(sql, params)

                async def fetchrow(self, sql: str, params: Any = None) -> Any:
                    outer.statements.append(sql)
                    return await tx.fetchrow(sql, params)

                async def execute(self, sql: str, params: Any = None) -> Any:
                    outer.statements.append(sql)
                    return await tx.execute(sql, params)

            yield Tx()


def make(db: Any, catalog: FileCatalog, processors: Sequence[Processor[Any]],
         defaults: SettingsDocument | None = None) -> NotificationService:
    policy = SettingsPolicy(defaults, [WEB_CHANNEL, *(p.name for p in processors)])
    hooks = ProcessorHooks(processors, policy, clock=SystemClock())
    return NotificationService(store=SqlNotificationStore(db), resolver=catalog, signals=_Signals(), policy=policy,
                               clock=SystemClock(), app_base_url="https://backstage.example.org", hooks=hooks)


def recorder(**filters: Any) -> RecordingProcessor:
    from herald.processors.testing import make_context

    return RecordingProcessor(RecordingSettings(filter=Filters.model_validate(filters)), make_context())


@pytest.fixture
def catalog(tmp_path: Path) -> FileCatalog:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(3))
    return FileCatalog.from_files([org])


async def rows(db: Database) -> list[DeliveryRecord]:
    return sorted(await Ledger(db).find(status="pending", limit=10_000), key=lambda r: (r.user or "", r.target or ""))


async def test_one_delivery_per_user_and_channel(db: Database, catalog: FileCatalog) -> None:
    p = recorder()
    sent = await make(db, catalog, [p]).send(SENDER, entity_request(GROUP, title="hello", topic="t1"))
    got = await rows(db)
    assert [(r.user, r.channel, r.target) for r in got] == [
        (f"user:default/u{i}", "Recording", None) for i in range(3)]
    by_user = {s.notification.user: s.notification.id for s in sent}
    for r in got:
        assert r.notification_id == by_user[r.user]
        assert r.snapshot["title"] == "hello" and r.snapshot["topic"] == "t1"
        assert r.snapshot["recipients"] == {"type": "entity", "entityRef": [GROUP]}
    assert len({r.send_id for r in got}) == 1
    assert p.calls == ["process_options", "pre_process"]


async def test_user_channel_settings_are_respected(db: Database, catalog: FileCatalog) -> None:
    store = SqlNotificationStore(db)
    # u0 turned the Recording channel off for this origin; u1 turned Web off (still gets Recording)
    await store.replace_settings("user:default/u0", [StoredSetting("user:default/u0", "Recording", "external:ci",
                                                                   None, False)])
    await store.replace_settings("user:default/u1", [StoredSetting("user:default/u1", "Web", "external:ci",
                                                                   None, False)])
    sent = await make(db, catalog, [recorder()]).send(SENDER, entity_request(GROUP))
    assert sorted(s.notification.user or "" for s in sent) == ["user:default/u0", "user:default/u2"]
    got = await rows(db)
    assert [r.user for r in got] == ["user:default/u1", "user:default/u2"]
    inbox_ids = {s.notification.id for s in sent}
    u1 = got[0]
    assert u1.notification_id not in inbox_ids  # no inbox row, an id of its own


async def test_configured_opt_in_channel(db: Database, catalog: FileCatalog) -> None:
    defaults = SettingsDocument([ChannelSetting("Recording", [], enabled=False)])
    store = SqlNotificationStore(db)
    await store.replace_settings("user:default/u2", [StoredSetting("user:default/u2", "Recording", "external:ci",
                                                                   None, True)])
    await make(db, catalog, [recorder()], defaults).send(SENDER, entity_request(GROUP))
    assert [r.user for r in await rows(db)] == ["user:default/u2"]


async def test_configured_origin_default(db: Database, catalog: FileCatalog) -> None:
    defaults = SettingsDocument([ChannelSetting("Recording", [OriginSetting("external:ci", False)])])
    await make(db, catalog, [recorder()], defaults).send(SENDER, entity_request(GROUP))
    assert await rows(db) == []


async def test_filters_decide_before_anything_runs(db: Database, catalog: FileCatalog) -> None:
    p = recorder(minSeverity="high")
    await make(db, catalog, [p]).send(SENDER, entity_request(GROUP))
    assert await rows(db) == [] and p.calls == []
    await make(db, catalog, [p]).send(SENDER, entity_request(GROUP, severity="critical"))
    assert len(await rows(db)) == 3 and p.calls == ["process_options", "pre_process"]


async def test_broadcast_has_one_delivery_for_the_broadcast_row(db: Database, catalog: FileCatalog) -> None:
    [sent] = await make(db, catalog, [recorder()]).send(SENDER, broadcast_request(title="all"))
    [r] = await rows(db)
    assert (r.user, r.notification_id, r.snapshot["recipients"]) == (None, sent.notification.id,
                                                                      {"type": "broadcast"})


async def test_hooks_rewrite_the_send_and_failures_are_skipped(db: Database, catalog: FileCatalog,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    class Broken(RecordingProcessor):
        name = "Broken"
        kind = "broken"

        async def process_options(self, request: SendRequest) -> SendRequest:
            raise RuntimeError("boom")

        async def plan(self, notification: NewNotification, request: SendRequest) -> DeliveryPlan:
            raise RuntimeError("plan boom")

    class Decorator(RecordingProcessor):
        name = "Decorator"
        kind = "decorator"

        async def pre_process(self, notification: NewNotification, request: SendRequest) -> NewNotification:
            return replace(notification, title=f"[ci] {notification.title}")

    from herald.processors.testing import make_context

    ps = [Broken(RecordingSettings(), make_context()), Decorator(RecordingSettings(), make_context())]
    with caplog.at_level(logging.ERROR):
        sent = await make(db, catalog, ps).send(SENDER, entity_request(GROUP, title="build"))
    assert "Error while processing notification options with Broken: boom" in caplog.text
    assert "Error while planning deliveries with Broken: plan boom" in caplog.text
    assert {s.notification.title for s in sent} == {"[ci] build"}
    got = await rows(db)
    assert {r.channel for r in got} == {"Decorator"} and got[0].snapshot["title"] == "[ci] build"


async def test_plan_can_restrict_users_and_add_targets(db: Database, catalog: FileCatalog) -> None:
    class Picky(RecordingProcessor):
        async def plan(self, notification: NewNotification, request: SendRequest) -> DeliveryPlan:
            return DeliveryPlan(users={"user:default/u1"}, per_user=("a", "b"), extra=("#room",))

    from herald.processors.testing import make_context

    sent = await make(db, catalog, [Picky(RecordingSettings(), make_context())]).send(SENDER, entity_request(GROUP))
    got = await rows(db)
    assert [(r.user, r.target) for r in got] == [(None, "#room"), ("user:default/u1", "a"), ("user:default/u1", "b")]
    room = got[0]
    assert room.notification_id == room.send_id and room.notification_id not in {s.notification.id for s in sent}


async def test_a_scoped_resend_supersedes_what_is_still_pending(db: Database, catalog: FileCatalog) -> None:
    service = make(db, catalog, [recorder()])
    await service.send(SENDER, entity_request("user:default/u0", title="v1", scope="build-7"))
    await service.send(SENDER, entity_request("user:default/u0", title="v2", scope="build-7"))
    ledger = Ledger(db)
    [pending] = await ledger.find(status="pending")
    [superseded] = await ledger.find(status="superseded")
    assert pending.snapshot["title"] == "v2" and pending.resend
    assert superseded.snapshot["title"] == "v1"
    assert pending.notification_id == superseded.notification_id


async def test_statement_count_is_independent_of_recipients(db: Database, tmp_path: Path) -> None:
    org = tmp_path / "big.yaml"
    org.write_text(org_yaml(1000, group="big"))
    catalog = FileCatalog.from_files([org])
    counts = []
    for target in ("user:default/u5", "group:default/big"):
        counting = Counting(db)
        service = make(counting, catalog, [recorder(), RecordingProcessor2()])
        sent = await service.send(SENDER, entity_request(target, scope=f"s-{target}"))
        counts.append((len(counting.statements), len(sent)))
    (n1, sent1), (n1000, sent1000) = counts
    assert (sent1, sent1000) == (1, 1000)
    assert n1 == n1000, (n1, n1000)
    assert len(await Ledger(db).find(status="pending", limit=5000)) == 2 * 1001


class RecordingProcessor2(RecordingProcessor):
    name = "Recording2"
    kind = "recording2"

    def __init__(self) -> None:
        from herald.processors.testing import make_context

        super().__init__(RecordingSettings(), make_context())
