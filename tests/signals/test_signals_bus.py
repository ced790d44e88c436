"""Publishing: SignalService, MemoryBus, and PostgresBus between two replicas of one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from tests.signals.conftest import JANE, JOHN, Running, StartServer, frame, new_signal, until

from herald.core.ports import Signal
from herald.signals.bus import MemoryBus, PostgresBus, SignalService, to_rows
from herald.signals.eventlog import NOTIFY_CHANNEL, EventRow, MemoryEventLog, SqlEventLog
from herald.signals.hub import SignalEvent, SignalHub
from herald.store.database import PostgresDatabase, connect


class RecordingHub(SignalHub):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[SignalEvent] = []

    def dispatch(self, events: Any) -> None:
        events = list(events)
        self.seen.extend(events)
        super().dispatch(events)


# -- SignalService / MemoryBus -----------------------------------------------------------------


def test_rows_one_per_user_one_per_broadcast_invalid_dropped() -> None:
    got = to_rows([
        Signal("n", {"a": 1}, (JOHN, JANE, JOHN, "")),
        Signal("n", {"b": 2}),
        Signal("", {"c": 3}),
        Signal("n", None, None),  # type: ignore[arg-type]
        Signal("n", {"bad": object()}),
        Signal("n", {1: "non-string key"}),
        Signal("n", {"none": 1}, ()),
    ])
    assert got == [EventRow(JOHN, "n", '{"a":1}'), EventRow(JANE, "n", '{"a":1}'),
                   EventRow(None, "n", '{"b":2}'), EventRow(None, "n", '{"1":"non-string key"}')]


async def test_publish_never_raises_when_delivery_fails(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        async def start(self) -> None: ...

        async def stop(self) -> None: ...

        async def publish(self, rows: Sequence[EventRow], now_ms: int) -> None:
            raise ConnectionError("database is gone")

    service = SignalService(Broken())
    await service.publish([new_signal("x", (JOHN,))])
    assert "publishing 1 signal event(s) failed" in caplog.text


async def test_concurrent_publishes_are_coalesced_and_ordered() -> None:
    hub = RecordingHub()
    calls: list[int] = []

    class Counting(MemoryBus):
        async def publish(self, rows: Sequence[EventRow], now_ms: int) -> None:
            calls.append(len(rows))
            await asyncio.sleep(0.01)
            await super().publish(rows, now_ms)

    service = SignalService(Counting(hub, MemoryEventLog()))
    await asyncio.gather(*(service.publish([new_signal(f"n{i}")]) for i in range(50)))
    assert sum(calls) == 50 and len(calls) < 50
    assert [e.id for e in hub.seen] == list(range(1, 51))


async def test_after_publish_returns_the_event_is_logged_and_dispatched() -> None:
    hub = RecordingHub()
    log = MemoryEventLog()
    service = SignalService(MemoryBus(hub, log))
    await service.publish([new_signal("a", (JOHN,))])
    assert [e.user_ref for e in hub.seen] == [JOHN]
    assert await log.last_id() == 1 == hub.last_id


# -- PostgresBus -----------------------------------------------------------------------------


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[PostgresDatabase]:
    db = await connect(pg_url)
    assert isinstance(db, PostgresDatabase)
    yield db
    await db.close()


async def test_two_replicas_deliver_each_others_signals_to_their_sockets(
        pg_url: str, make_server: StartServer) -> None:
    db_a, db_b = await connect(pg_url), await connect(pg_url)
    try:
        a: Running = await make_server(db_a)
        b: Running = await make_server(db_b)
        assert isinstance(a.signals.bus, PostgresBus) and isinstance(b.signals.bus, PostgresBus)
        on_a = await a.subscribed("tok-john")
        on_b = await b.subscribed("tok-john")
        guest_b = await b.subscribed(None)
        await a.publish(new_signal("from-a", (JOHN,)))
        assert await asyncio.wait_for(on_b.recv(), 5) == frame("from-a")
        assert await asyncio.wait_for(on_a.recv(), 5) == frame("from-a")
        await b.publish(new_signal("from-b"))
        assert await asyncio.wait_for(on_a.recv(), 5) == frame("from-b")
        assert await asyncio.wait_for(on_b.recv(), 5) == frame("from-b")
        assert await asyncio.wait_for(guest_b.recv(), 5) == frame("from-b")
        await a.stop()
        await b.stop()
    finally:
        await db_a.close()
        await db_b.close()


async def test_a_send_to_ten_thousand_users_is_one_small_notify(pg_url: str, pg_db: PostgresDatabase) -> None:
    listener = await asyncpg.connect(pg_url.replace("postgresql://", "postgres://", 1))
    payloads: list[str] = []
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: payloads.append(args[-1]))
    hub_a, hub_b = RecordingHub(), RecordingHub()
    bus_a = PostgresBus(SqlEventLog(pg_db), hub_a, pg_db.dsn)
    db_b = await connect(pg_url)
    bus_b = PostgresBus(SqlEventLog(db_b), hub_b, pg_url)
    try:
        await bus_a.start()
        await bus_b.start()
        users = [f"user:default/u{i}" for i in range(10_000)]
        await SignalService(bus_a).publish(new_signal(f"id-{u}", (u,)) for u in users)
        await until(lambda: len(hub_a.seen) == len(hub_b.seen) == 10_000 and bool(payloads), 10)
        assert len(payloads) == 1 and len(payloads[0]) < 64
        for hub in (hub_a, hub_b):
            assert [e.user_ref for e in hub.seen] == users
            assert hub.seen[1234].message == f'{{"action":"new_notification","notification_id":"id-{users[1234]}"}}'
    finally:
        await bus_a.stop()
        await bus_b.stop()
        await db_b.close()
        await listener.close()


async def test_every_replica_sees_every_event_once_in_id_order(pg_url: str) -> None:
    dbs = [await connect(pg_url) for _ in range(2)]
    hubs = [RecordingHub() for _ in dbs]
    buses = [PostgresBus(SqlEventLog(db), hub, pg_url) for db, hub in zip(dbs, hubs, strict=True)]
    try:
        for bus in buses:
            await bus.start()
        services = [SignalService(bus, max_batch_rows=7) for bus in buses]
        await asyncio.gather(*(
            services[i % 2].publish([new_signal(f"{i}-{k}", (JOHN,)) for k in range(i % 5 + 1)])
            for i in range(60)))
        total = sum(i % 5 + 1 for i in range(60))
        await until(lambda: all(len(h.seen) >= total for h in hubs), 10)
        logged = await SqlEventLog(dbs[0]).after(0, 10_000)
        for hub in hubs:
            assert [e.id for e in hub.seen] == [e.id for e in logged]
    finally:
        for bus in buses:
            await bus.stop()
        for db in dbs:
            await db.close()


async def test_the_listener_reconnects_and_catches_up(pg_url: str, pg_db: PostgresDatabase) -> None:
    hub = RecordingHub()
    bus = PostgresBus(SqlEventLog(pg_db), hub, pg_url, reconnect_min_s=0.05, health_interval_s=0.2)
    publisher = SignalService(bus)
    try:
        await bus.start()
        await publisher.publish([new_signal("before")])
        await until(lambda: len(hub.seen) >= 1, 5)
        pid = bus._conn.get_server_pid()
        await pg_db.execute("SELECT pg_terminate_backend(:pid)", {"pid": pid})
        await until(lambda: not bus.listening, 5)
        # published while nobody listens: found again by the catch-up after the reconnect
        await publisher.publish([new_signal("during-1"), new_signal("during-2", (JANE,))])
        await until(lambda: len(hub.seen) >= 3, 10)
        assert bus.connects >= 2
        await publisher.publish([new_signal("after")])
        await until(lambda: len(hub.seen) >= 4, 5)
        assert [e.message.split('"')[-2] for e in hub.seen] == ["before", "during-1", "during-2", "after"]
    finally:
        await bus.stop()


async def test_publish_still_logs_when_the_listener_is_down(pg_url: str, pg_db: PostgresDatabase) -> None:
    async def refuse(dsn: str) -> Any:
        raise OSError("no route")

    hub = RecordingHub()
    log = SqlEventLog(pg_db)
    bus = PostgresBus(log, hub, pg_url, connect=refuse, reconnect_min_s=10)
    try:
        await bus.start()
        assert not bus.listening
        await SignalService(bus).publish([new_signal("x")])
        assert [e.message for e in await log.after(0, 10)] == [
            '{"action":"new_notification","notification_id":"x"}']
    finally:
        await bus.stop()
