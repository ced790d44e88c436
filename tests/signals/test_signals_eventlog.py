"""The signal event log, on SQLite and PostgreSQL (and its in-memory twin)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.signals.conftest import open_database

from herald.signals.eventlog import EventLog, EventRow, MemoryEventLog, SqlEventLog
from herald.store.database import Database

JOHN, JANE, TEAM = "user:default/john.doe", "user:default/jane.doe", "group:default/team-a"


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield MemoryEventLog()
        return
    async with open_database(request.param, tmp_path) as db:
        yield SqlEventLog(db)


def rows(*specs: tuple[str | None, str, str]) -> list[EventRow]:
    return [EventRow(*s) for s in specs]


async def test_append_hands_out_increasing_ids_in_row_order(log: EventLog) -> None:
    assert await log.last_id() == 0
    first = await log.append(rows((JOHN, "n", '{"a":1}'), (None, "n", '{"b":2}'), (JANE, "x", "{}")), 1000)
    second = await log.append(rows((JOHN, "n", '{"c":3}')), 1001)
    ids = [e.id for e in first + second]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [(e.user_ref, e.channel, e.message) for e in first] == [
        (JOHN, "n", '{"a":1}'), (None, "n", '{"b":2}'), (JANE, "x", "{}")]
    assert await log.last_id() == ids[-1]


async def test_message_text_is_kept_byte_for_byte(log: EventLog) -> None:
    text = '{"z":1,"a":{"é":"\\u2028 \\"q\\""},"n":null,"l":[1.5,true]}'
    (ev,) = await log.append(rows((None, "n", text)), 1)
    (back,) = await log.replay([JOHN], ["n"], 0, 10)
    assert ev.message == back.message == text


async def test_replay_is_own_plus_broadcasts_on_the_channels_after_an_id(log: EventLog) -> None:
    evs = await log.append(rows(
        (JOHN, "n", '{"i":0}'), (JANE, "n", '{"i":1}'), (None, "n", '{"i":2}'), (TEAM, "n", '{"i":3}'),
        (JOHN, "other", '{"i":4}'), (JOHN, "n", '{"i":5}'), (None, "other", '{"i":6}')), 1)
    ids = [e.id for e in evs]
    got = await log.replay([JOHN, TEAM], ["n"], 0, 100)
    assert [e.id for e in got] == [ids[0], ids[2], ids[3], ids[5]]
    got = await log.replay([JOHN, TEAM], ["n"], ids[2], 100)
    assert [e.id for e in got] == [ids[3], ids[5]]
    got = await log.replay([JOHN], ["n", "other"], ids[0], 2)
    assert [e.id for e in got] == [ids[2], ids[4]]
    assert await log.replay(["user:default/guest"], ["n"], 0, 100) == [evs[2]]


async def test_prune_by_age_and_by_count_and_ids_are_never_reused(log: EventLog) -> None:
    old = await log.append(rows(*((None, "n", "{}"),) * 3), 1_000)
    new = await log.append(rows(*((None, "n", "{}"),) * 5), 5_000)
    assert await log.prune(created_before_ms=2_000, keep=100) == 3
    assert [e.id for e in await log.replay([], ["n"], 0, 100)] == [e.id for e in new]
    assert await log.prune(created_before_ms=0, keep=2) == 3
    assert [e.id for e in await log.replay([], ["n"], 0, 100)] == [e.id for e in new[-2:]]
    await log.prune(created_before_ms=10_000, keep=100)
    assert await log.replay([], ["n"], 0, 100) == []
    (again,) = await log.append(rows((None, "n", "{}")), 20_000)
    assert again.id > new[-1].id > old[-1].id


async def test_a_big_append_is_one_statement(db: Database) -> None:
    log = SqlEventLog(db)
    evs = await log.append([EventRow(f"user:default/u{i}", "n", f'{{"i":{i}}}') for i in range(10_000)], 1)
    assert [e.id for e in evs] == list(range(evs[0].id, evs[0].id + 10_000))
    assert (await log.replay(["user:default/u9999"], ["n"], 0, 10))[0].message == '{"i":9999}'
    got = await log.fetch_ranges([(evs[10].id, evs[12].id), (evs[9000].id, evs[9000].id)])
    assert [e.message for e in got] == ['{"i":10}', '{"i":11}', '{"i":12}', '{"i":9000}']
    assert [e.id for e in await log.after(evs[-3].id, 10)] == [evs[-2].id, evs[-1].id]


async def test_concurrent_appends_get_ids_in_commit_order(db: Database) -> None:
    """With the append lock, concurrent appends never interleave ids."""
    log = SqlEventLog(db)
    batches = await asyncio.gather(*(
        log.append([EventRow(None, "n", f'{{"b":{b}}}')] * 50, 1) for b in range(8)))
    for evs in batches:
        assert [e.id for e in evs] == list(range(evs[0].id, evs[0].id + 50))
