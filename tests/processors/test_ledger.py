"""The delivery ledger on SQLite and PostgreSQL: written with the send, claimed, leased, finished,
dead-lettered, retried, superseded."""

from __future__ import annotations

import asyncio

import pytest
from tests.processors.conftest import NOW, base, enqueue, uid

from herald.core.ports import Outbox, OutboxEntry
from herald.processors._ledger import DEAD, DELIVERED, PENDING, SUPERSEDED, Finish, Ledger
from herald.store.database import Database, connect
from herald.store.sql_store import SqlNotificationStore

LEASE = 60_000


async def test_deliveries_are_written_with_the_notifications(db: Database) -> None:
    ids = await enqueue(db, ["user:default/a", "user:default/b"], web_disabled=["user:default/c"])
    ledger = Ledger(db)
    rows = {r.id: r for r in await ledger.find(status=PENDING)}
    assert set(rows) == set(ids)
    stored = {r[0]: str(r[1]) for r in await db.fetch("SELECT user_ref, id FROM notification")}
    assert set(stored) == {"user:default/a", "user:default/b"}  # c has Web disabled: no inbox row
    for r in rows.values():
        assert r.snapshot["title"] == "t"
        if r.user in stored:
            assert r.notification_id == stored[r.user]
        else:
            assert r.user == "user:default/c" and r.notification_id not in stored.values()


async def test_a_failing_send_writes_no_deliveries(db: Database) -> None:
    store = SqlNotificationStore(db)
    dup = uid()
    outbox = Outbox(uid(), "external:test", None, "{}", (OutboxEntry(uid(), "Recording", "user:default/a"),), NOW)
    with pytest.raises(Exception):  # noqa: B017 - the driver's unique violation
        await store.save_user_notifications(base(), ["user:default/a", "user:default/b"], [dup, dup], outbox)
    assert await Ledger(db).find(status=PENDING) == []


async def test_claim_finish_and_attempts(db: Database) -> None:
    [did] = await enqueue(db, ["user:default/a"])
    ledger = Ledger(db)
    assert await ledger.claim("Other", 10, now=NOW, lease_ms=LEASE, worker="w1", max_attempts=3) == []
    [rec] = await ledger.claim("Recording", 10, now=NOW, lease_ms=LEASE, worker="w1", max_attempts=3)
    assert (rec.id, rec.attempts, rec.status, rec.claimed_by) == (did, 1, "delivering", "w1")
    # claimed rows are not due for anyone else until the lease runs out
    assert await ledger.claim("Recording", 10, now=NOW + 1, lease_ms=LEASE, worker="w2", max_attempts=3) == []
    ok = await ledger.finish(rec, worker="w1", finish=Finish(DELIVERED, "ok", "fine", NOW + 5, NOW, NOW + 5,
                                                             {"ts": "1"}))
    assert ok
    again = await ledger.get(did)
    assert again is not None
    assert (again.status, again.delivered_at, again.receipt, again.claimed_by) == (DELIVERED, NOW + 5, {"ts": "1"},
                                                                                   None)
    [attempt] = await ledger.attempts(did)
    assert (attempt.attempt, attempt.outcome, attempt.detail, attempt.worker) == (1, "ok", "fine", "w1")


async def test_an_expired_lease_is_reclaimed_and_the_lost_attempt_recorded(db: Database) -> None:
    [did] = await enqueue(db, ["user:default/a"])
    ledger = Ledger(db)
    [first] = await ledger.claim("Recording", 1, now=NOW, lease_ms=LEASE, worker="dead", max_attempts=5)
    [second] = await ledger.claim("Recording", 1, now=NOW + LEASE, lease_ms=LEASE, worker="w2", max_attempts=5)
    assert (second.id, second.attempts, second.claimed_by) == (did, 2, "w2")
    attempts = await ledger.attempts(did)
    assert [(a.attempt, a.outcome, a.worker) for a in attempts] == [(1, "interrupted", "dead")]
    # the dead worker's late report does not overwrite the new claim
    assert not await ledger.finish(first, worker="dead", finish=Finish(DELIVERED, "ok", "", NOW, NOW, NOW))
    current = await ledger.get(did)
    assert current is not None and current.status == "delivering" and current.claimed_by == "w2"


async def test_a_row_that_keeps_killing_its_worker_is_dead_lettered(db: Database) -> None:
    [did] = await enqueue(db, ["user:default/a"])
    ledger = Ledger(db)
    t = NOW
    for _ in range(2):
        assert await ledger.claim("Recording", 1, now=t, lease_ms=LEASE, worker="w", max_attempts=2)
        t += LEASE
    assert await ledger.claim("Recording", 1, now=t, lease_ms=LEASE, worker="w", max_attempts=2) == []
    rec = await ledger.get(did)
    assert rec is not None and rec.status == DEAD
    assert [a.outcome for a in await ledger.attempts(did)] == ["interrupted", "interrupted"]


async def test_retry_gives_a_dead_letter_a_fresh_budget(db: Database) -> None:
    [did] = await enqueue(db, ["user:default/a"])
    ledger = Ledger(db)
    [rec] = await ledger.claim("Recording", 1, now=NOW, lease_ms=LEASE, worker="w", max_attempts=1)
    await ledger.finish(rec, worker="w", finish=Finish(DEAD, "permanent", "nope", NOW, NOW, NOW))
    assert [r.id for r in await ledger.find(status=DEAD)] == [did]
    retried = await ledger.retry(did, now=NOW + 10)
    assert (retried.status, retried.retry_base, retried.attempts, retried.detail) == (
        PENDING, 1, 1, "retried by an operator")
    [rec2] = await ledger.claim("Recording", 1, now=NOW + 10, lease_ms=LEASE, worker="w", max_attempts=1)
    assert rec2.attempts - rec2.retry_base == 1
    with pytest.raises(Exception, match="only dead deliveries can be retried"):
        await ledger.retry(did, now=NOW)
    with pytest.raises(Exception, match="No delivery with id"):
        await ledger.retry(uid(), now=NOW)


async def test_retry_all_dead_of_a_channel(db: Database) -> None:
    ids = await enqueue(db, ["user:default/a", "user:default/b"])
    other = await enqueue(db, ["user:default/c"], channel="Other")
    await db.execute("UPDATE delivery SET status = 'dead'")
    ledger = Ledger(db)
    assert await ledger.retry_dead(now=NOW, channel="Recording") == 2
    assert {r.id for r in await ledger.find(status=PENDING)} == set(ids)
    assert [r.id for r in await ledger.find(status=DEAD)] == other


async def test_a_scoped_resend_supersedes_pending_and_dead_deliveries(db: Database) -> None:
    [old_a, old_b] = await enqueue(db, ["user:default/a", "user:default/b"], scope="build-1", title="v1")
    await db.execute("UPDATE delivery SET status = 'dead' WHERE id = :id", {"id": old_b})
    other_scope = await enqueue(db, ["user:default/a"], scope="build-2")
    [new_a] = await enqueue(db, ["user:default/a"], scope="build-1", title="v2", now=NOW + 1)
    ledger = Ledger(db)
    statuses = {i: (await ledger.get(i)).status for i in (old_a, old_b, *other_scope, new_a)}  # type: ignore[union-attr]
    assert statuses == {old_a: SUPERSEDED, old_b: "dead", other_scope[0]: PENDING, new_a: PENDING}
    new = await ledger.get(new_a)
    old = await ledger.get(old_a)
    assert new is not None and old is not None
    assert new.resend and new.notification_id == old.notification_id  # the inbox row was updated in place
    assert new.snapshot["title"] == "v2"


async def test_a_delivery_being_sent_is_not_superseded_but_its_retry_is(db: Database) -> None:
    [old] = await enqueue(db, ["user:default/a"], scope="s")
    ledger = Ledger(db)
    [rec] = await ledger.claim("Recording", 1, now=NOW, lease_ms=LEASE, worker="w", max_attempts=5)
    [new] = await enqueue(db, ["user:default/a"], scope="s", now=NOW + 1)
    still = await ledger.get(old)
    assert still is not None and still.status == "delivering"
    await ledger.finish(rec, worker="w", finish=Finish(PENDING, "retryable", "later", NOW + 100, NOW, NOW))
    after = await ledger.get(old)
    assert after is not None and after.status == SUPERSEDED
    assert (await ledger.get(new)).status == PENDING  # type: ignore[union-attr]


async def test_retrying_a_stale_dead_letter_supersedes_it(db: Database) -> None:
    [old] = await enqueue(db, ["user:default/a"], scope="s")
    ledger = Ledger(db)
    [rec] = await ledger.claim("Recording", 1, now=NOW, lease_ms=LEASE, worker="w", max_attempts=5)
    await enqueue(db, ["user:default/a"], scope="s", now=NOW + 1)
    await db.execute("UPDATE delivery SET status = 'dead', claimed_by = NULL WHERE id = :id", {"id": rec.id})
    retried = await ledger.retry(old, now=NOW + 2)
    assert retried.status == SUPERSEDED


async def test_previous_receipt_of_the_same_scope_and_route(db: Database) -> None:
    [first] = await enqueue(db, ["user:default/a"], scope="s")
    ledger = Ledger(db)
    [rec] = await ledger.claim("Recording", 1, now=NOW, lease_ms=LEASE, worker="w", max_attempts=5)
    await ledger.finish(rec, worker="w", finish=Finish(DELIVERED, "ok", "", NOW, NOW, NOW, {"ts": "111"}))
    [second] = await enqueue(db, ["user:default/a"], scope="s", now=NOW + 1)
    [unscoped] = await enqueue(db, ["user:default/a"])
    [other_user] = await enqueue(db, ["user:default/b"], scope="s")
    recs = {r.id: r for r in await ledger.find(status=PENDING)}
    assert await ledger.previous_receipt(recs[second]) == {"ts": "111"}
    assert await ledger.previous_receipt(recs[unscoped]) is None
    assert await ledger.previous_receipt(recs[other_user]) is None
    assert first not in recs


async def test_purge_keeps_dead_letters(db: Database) -> None:
    ids = await enqueue(db, ["user:default/a", "user:default/b", "user:default/c"])
    for i, status in zip(ids, ("delivered", "dead", "pending"), strict=True):
        await db.execute("UPDATE delivery SET status = :s, updated = :u WHERE id = :id",
                         {"s": status, "u": NOW, "id": i})
    ledger = Ledger(db)
    assert await ledger.purge(NOW + 1) == 1
    assert {r.id for r in await ledger.find(status=DEAD)} | {r.id for r in await ledger.find(status=PENDING)} == set(
        ids[1:])


async def test_find_validates_its_input(db: Database) -> None:
    ledger = Ledger(db)
    assert await ledger.find(notification="not-a-uuid") == []
    assert await ledger.get("nope") is None
    with pytest.raises(Exception, match="Unknown delivery status"):
        await ledger.find(status="lost")


async def test_concurrent_claimers_never_share_a_row(db_url: str) -> None:
    """Several workers (own connections) claiming at once: every row claimed exactly once."""
    setup = await connect(db_url)
    try:
        ids = await enqueue(setup, [f"user:default/u{i}" for i in range(200)])
    finally:
        await setup.close()
    dbs = [await connect(db_url) for _ in range(4)]
    try:
        async def worker(n: int) -> list[str]:
            ledger = Ledger(dbs[n])
            got: list[str] = []
            while True:
                batch = await ledger.claim("Recording", 7, now=NOW, lease_ms=LEASE, worker=f"w{n}", max_attempts=5)
                if not batch:
                    return got
                got += [r.id for r in batch]

        results = await asyncio.gather(*(worker(n) for n in range(4)))
    finally:
        for d in dbs:
            await d.close()
    claimed = [i for r in results for i in r]
    assert sorted(claimed) == sorted(ids)
    assert len(set(claimed)) == len(claimed)
