"""The delivery ledger on SQL: claim due rows, record attempts, list, dead-letter, retry.

Rows are written by the store in the send's transaction (`SqlNotificationStore._write_outbox`);
this module runs everything after that. Statuses:

    pending     due at `next_attempt_at`
    delivering  claimed by `claimed_by` until `next_attempt_at` (the lease); a lease that runs out
                means the worker died: the row is claimed again and the lost attempt recorded
    delivered   done (`receipt` kept for scoped re-sends)
    skipped     nothing to deliver (no address …)
    dead        failed permanently, or out of attempts: a dead letter, until retried
    superseded  replaced by a scoped re-send before it was delivered

Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers share the table;
SQLite serialises writers (`BEGIN IMMEDIATE`), which gives the same guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from herald.core.clock import iso_ms, iso_ms_or_none
from herald.core.errors import InputError, NotFoundError
from herald.core.service import is_uuid
from herald.store.database import Database, Executor, Row

PENDING = "pending"
DELIVERING = "delivering"
DELIVERED = "delivered"
SKIPPED = "skipped"
DEAD = "dead"
SUPERSEDED = "superseded"
STATUSES = (PENDING, DELIVERING, DELIVERED, SKIPPED, DEAD, SUPERSEDED)
FINISHED = (DELIVERED, SKIPPED, SUPERSEDED)

_COLS = ("id, send_id, notification_id, user_ref, channel, target, route_key, resend, origin, scope, "
         "snapshot, status, attempts, retry_base, next_attempt_at, claimed_by, created, updated, "
         "delivered_at, detail, receipt")


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One ledger row."""

    id: str
    send_id: str
    notification_id: str
    user: str | None
    channel: str
    target: str | None
    route_key: str
    resend: bool
    origin: str
    scope: str | None
    snapshot: dict[str, Any]
    status: str
    attempts: int
    retry_base: int
    next_attempt_at: int
    claimed_by: str | None
    created: int
    updated: int
    delivered_at: int | None
    detail: str | None
    receipt: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "sendId": self.send_id, "notificationId": self.notification_id,
            "user": self.user, "channel": self.channel, "target": self.target, "origin": self.origin,
            "scope": self.scope, "status": self.status, "attempts": self.attempts,
            "nextAttemptAt": iso_ms(self.next_attempt_at) if self.status in (PENDING, DELIVERING) else None,
            "created": iso_ms(self.created), "updated": iso_ms(self.updated),
            "deliveredAt": iso_ms_or_none(self.delivered_at), "detail": self.detail,
            "receipt": self.receipt, "resend": self.resend,
            "notification": {k: self.snapshot.get(k) for k in
                             ("title", "description", "link", "severity", "topic", "scope", "icon")},
        }


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt: int
    started: int
    finished: int
    outcome: str
    detail: str | None
    worker: str | None

    def to_json(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "started": iso_ms(self.started), "finished": iso_ms(self.finished),
                "outcome": self.outcome, "detail": self.detail, "worker": self.worker}


@dataclass(frozen=True, slots=True)
class Finish:
    """What a worker records after an attempt."""

    status: str
    outcome: str
    detail: str
    next_attempt_at: int
    started: int
    finished: int
    receipt: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _record(r: Row) -> DeliveryRecord:
    return DeliveryRecord(
        id=str(r[0]), send_id=str(r[1]), notification_id=str(r[2]), user=r[3], channel=r[4], target=r[5],
        route_key=r[6], resend=bool(r[7]), origin=r[8], scope=r[9], snapshot=orjson.loads(r[10]),
        status=r[11], attempts=int(r[12]), retry_base=int(r[13]), next_attempt_at=int(r[14]),
        claimed_by=r[15], created=int(r[16]), updated=int(r[17]),
        delivered_at=None if r[18] is None else int(r[18]), detail=r[19],
        receipt=None if r[20] is None else orjson.loads(r[20]),
    )


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.d = db.dialect

    # -- the worker side -----------------------------------------------------------------------

    async def claim(self, channel: str, limit: int, *, now: int, lease_ms: int, worker: str,
                    max_attempts: int) -> list[DeliveryRecord]:
        """Claim up to `limit` due rows of `channel` for `lease_ms`. Rows whose lease ran out (their
        worker died mid-attempt) get an `interrupted` attempt recorded, and are dead-lettered when
        they have no attempts left (a message that crashes its worker must not loop forever)."""
        if limit <= 0:
            return []
        d = self.d
        lock = " FOR UPDATE SKIP LOCKED" if d.name == "postgresql" else ""
        async with self.db.transaction() as tx:
            due = await tx.fetch(
                "SELECT id, status, attempts, retry_base FROM delivery WHERE channel = :channel AND "
                "status IN ('pending', 'delivering') AND next_attempt_at <= :now "
                f"ORDER BY next_attempt_at LIMIT :limit{lock}",
                {"channel": channel, "now": now, "limit": limit})
            if not due:
                return []
            lost = [str(r[0]) for r in due if r[1] == DELIVERING]
            exhausted = {str(r[0]) for r in due if r[1] == DELIVERING and int(r[2]) - int(r[3]) >= max_attempts}
            if lost:
                await tx.execute(
                    "INSERT INTO delivery_attempt (delivery_id, attempt, started, finished, outcome, detail, "
                    "worker) SELECT id, attempts, updated, :now, 'interrupted', "
                    "'the worker stopped during the attempt (lease expired)', claimed_by FROM delivery WHERE "
                    + d.in_list("id", "ids", uuid=True), {"now": now, "ids": d.encode_list(lost)})
            if exhausted:
                await tx.execute(
                    "UPDATE delivery SET status = 'dead', claimed_by = NULL, updated = :now, "
                    "detail = 'the worker stopped during the last attempt; no attempts left' WHERE "
                    + d.in_list("id", "ids", uuid=True), {"now": now, "ids": d.encode_list(sorted(exhausted))})
            ids = [str(r[0]) for r in due if str(r[0]) not in exhausted]
            if not ids:
                return []
            rows = await tx.fetch(
                "UPDATE delivery SET status = 'delivering', attempts = attempts + 1, claimed_by = :worker, "
                "next_attempt_at = :lease, updated = :now WHERE " + d.in_list("id", "ids", uuid=True)
                + f" RETURNING {_COLS}",
                {"worker": worker, "lease": now + lease_ms, "now": now, "ids": d.encode_list(ids)})
        records = [_record(r) for r in rows]
        order = {i: n for n, i in enumerate(ids)}
        records.sort(key=lambda r: order.get(r.id, 0))
        return records

    async def extend(self, ids: Sequence[str], *, worker: str, until: int) -> None:
        """Extend the lease of rows this worker is still delivering."""
        if ids:
            await self.db.execute(
                "UPDATE delivery SET next_attempt_at = :until WHERE status = 'delivering' AND "
                "claimed_by = :worker AND " + self.d.in_list("id", "ids", uuid=True),
                {"until": until, "worker": worker, "ids": self.d.encode_list(list(ids))})

    async def finish(self, record: DeliveryRecord, *, worker: str, finish: Finish) -> bool:
        """Record the attempt and the row's new state. False when the row was no longer ours (its
        lease ran out and another worker claimed it): the attempt is recorded all the same."""
        status = finish.status
        async with self.db.transaction() as tx:
            if record.scope is not None and status in (PENDING, DEAD) and await self._has_newer(tx, record):
                status = SUPERSEDED
            changed = await tx.execute(
                "UPDATE delivery SET status = :status, next_attempt_at = :next, detail = :detail, "
                "receipt = COALESCE(:receipt, receipt), delivered_at = :delivered_at, claimed_by = NULL, "
                "updated = :now WHERE id = :id AND status = 'delivering' AND claimed_by = :worker AND "
                "attempts = :attempt",
                {"status": status, "next": finish.next_attempt_at,
                 "detail": finish.detail if status != SUPERSEDED else "superseded by a scoped re-send",
                 "receipt": None if finish.receipt is None else orjson.dumps(finish.receipt).decode(),
                 "delivered_at": finish.finished if status == DELIVERED else None, "now": finish.finished,
                 "id": record.id, "worker": worker, "attempt": record.attempts})
            await tx.execute(
                "INSERT INTO delivery_attempt (delivery_id, attempt, started, finished, outcome, detail, worker) "
                "VALUES (:id, :attempt, :started, :finished, :outcome, :detail, :worker)",
                {"id": record.id, "attempt": record.attempts, "started": finish.started,
                 "finished": finish.finished, "outcome": finish.outcome, "detail": finish.detail[:4000],
                 "worker": worker})
        return bool(changed > 0)

    async def _has_newer(self, ex: Executor, record: DeliveryRecord) -> bool:
        row = await ex.fetchrow(
            "SELECT 1 FROM delivery WHERE origin = :origin AND scope = :scope AND route_key = :rk AND "
            "created > :created AND status <> 'superseded' LIMIT 1",
            {"origin": record.origin, "scope": record.scope, "rk": record.route_key, "created": record.created})
        return row is not None

    async def previous_receipt(self, record: DeliveryRecord) -> dict[str, Any] | None:
        """The receipt of the latest delivered message with the same origin, scope and route."""
        if record.scope is None:
            return None
        row = await self.db.fetchrow(
            "SELECT receipt FROM delivery WHERE origin = :origin AND scope = :scope AND route_key = :rk AND "
            "status = 'delivered' AND receipt IS NOT NULL AND id <> :id ORDER BY delivered_at DESC LIMIT 1",
            {"origin": record.origin, "scope": record.scope, "rk": record.route_key, "id": record.id})
        if row is None:
            return None
        receipt = orjson.loads(row[0])
        return receipt if isinstance(receipt, dict) else None

    async def due_count(self, now: int) -> int:
        row = await self.db.fetchrow(
            "SELECT count(*) FROM delivery WHERE status IN ('pending', 'delivering') AND next_attempt_at <= :now",
            {"now": now})
        return int(row[0]) if row else 0

    async def purge(self, before: int) -> int:
        """Delete finished rows (delivered, skipped, superseded) last changed before `before`.
        Dead letters stay until retried."""
        deleted = await self.db.execute(
            "DELETE FROM delivery WHERE status IN ('delivered', 'skipped', 'superseded') AND updated < :before",
            {"before": before})
        return int(deleted)

    # -- the operator side ---------------------------------------------------------------------

    async def get(self, id: str) -> DeliveryRecord | None:
        if not _looks_like_uuid(id):
            return None
        row = await self.db.fetchrow(f"SELECT {_COLS} FROM delivery WHERE id = :id", {"id": id.lower()})
        return None if row is None else _record(row)

    async def find(self, *, notification: str | None = None, send: str | None = None,
                   status: str | None = None, channel: str | None = None, limit: int = 100,
                   offset: int = 0) -> list[DeliveryRecord]:
        conds: list[str] = []
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        for column, value in (("notification_id", notification), ("send_id", send)):
            if value is not None:
                if not _looks_like_uuid(value):
                    return []
                conds.append(f"{column} = :{column}")
                params[column] = value.lower()
        if status is not None:
            if status not in STATUSES:
                raise InputError(f"Unknown delivery status '{status}' (one of {', '.join(STATUSES)})")
            conds.append("status = :status")
            params["status"] = status
        if channel is not None:
            conds.append("channel = :channel")
            params["channel"] = channel
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        rows = await self.db.fetch(
            f"SELECT {_COLS} FROM delivery{where} ORDER BY created DESC, channel, user_ref, target, id "
            "LIMIT :limit OFFSET :offset", params)
        return [_record(r) for r in rows]

    async def attempts(self, id: str) -> list[AttemptRecord]:
        if not _looks_like_uuid(id):
            return []
        rows = await self.db.fetch(
            "SELECT attempt, started, finished, outcome, detail, worker FROM delivery_attempt "
            "WHERE delivery_id = :id ORDER BY id", {"id": id.lower()})
        return [AttemptRecord(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5]) for r in rows]

    async def counts(self) -> dict[str, dict[str, int]]:
        """channel -> status -> number of rows."""
        rows = await self.db.fetch("SELECT channel, status, count(*) FROM delivery GROUP BY channel, status "
                                   "ORDER BY channel, status")
        out: dict[str, dict[str, int]] = {}
        for channel, status, n in rows:
            out.setdefault(channel, {})[status] = int(n)
        return out

    async def retry(self, id: str, *, now: int) -> DeliveryRecord:
        """Put a dead letter back in the queue with a fresh budget of attempts. A dead letter
        that a later scoped re-send replaced is superseded instead of sent stale."""
        record = await self.get(id)
        if record is None:
            raise NotFoundError(f"No delivery with id {id}")
        if record.status != DEAD:
            raise InputError(f"Delivery {record.id} is {record.status}; only dead deliveries can be retried")
        requeued = await self._requeue_dead(now, ids=[record.id])
        if requeued:
            return requeued[0]
        again = await self.get(record.id)  # superseded by a newer scoped send
        assert again is not None
        return again

    async def retry_dead(self, *, now: int, channel: str | None = None) -> int:
        """Retry every dead letter (of one channel); returns how many were queued again."""
        return len(await self._requeue_dead(now, channel=channel))

    async def _requeue_dead(self, now: int, *, ids: Sequence[str] | None = None,
                            channel: str | None = None) -> list[DeliveryRecord]:
        d = self.d
        conds = ["status = 'dead'"]
        params: dict[str, Any] = {"now": now}
        if ids is not None:
            conds.append(d.in_list("id", "ids", uuid=True))
            params["ids"] = d.encode_list(list(ids))
        if channel is not None:
            conds.append("channel = :channel")
            params["channel"] = channel
        where = " AND ".join(conds)
        newer = ("EXISTS (SELECT 1 FROM delivery n WHERE n.origin = delivery.origin AND n.scope = delivery.scope "
                 "AND n.route_key = delivery.route_key AND n.created > delivery.created "
                 "AND n.status <> 'superseded')")
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE delivery SET status = 'superseded', updated = :now, "
                f"detail = 'superseded by a scoped re-send' WHERE {where} AND scope IS NOT NULL AND {newer}",
                params)
            rows = await tx.fetch(
                "UPDATE delivery SET status = 'pending', retry_base = attempts, next_attempt_at = :now, "
                f"updated = :now, detail = 'retried by an operator' WHERE {where} RETURNING {_COLS}", params)
        return [_record(r) for r in rows]


def _looks_like_uuid(value: str) -> bool:
    return is_uuid(value)
