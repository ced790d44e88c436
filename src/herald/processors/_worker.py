"""The delivery worker: claims due ledger rows, calls the processors, records every attempt.

One lane per processor, each with the processor's concurrency limit and throttle. A lane claims
only as many rows as it can start soon (its free slots plus a small prefetch), so leases do not
run out while rows wait. Failures are retried with exponential backoff and jitter, and
dead-lettered after `maxAttempts`.

Configuration `notifications.delivery` (Herald's own)::

    worker: in-process        # in-process (default) | external: only `herald worker` delivers
    maxAttempts: 10           # then the row is a dead letter (retry it with the API or CLI)
    initialBackoff: 10s       # 1st retry after ~10 s, then doubling …
    maxBackoff: 1h            # … up to an hour; each delay is jittered within [d/2, d]
    lease: 2m                 # a claimed row returns to the queue if its worker dies
    pollInterval: 1s          # how often to look for due rows (a send wakes its process at once)
    batchSize: 100            # rows claimed at most per lane and poll
    retention: 30d            # finished rows are deleted after this (false keeps them); dead letters stay
    shutdownGrace: 10s        # on stop, in-flight deliveries get this long to finish
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from herald.core.clock import Clock, SystemClock
from herald.core.model import Notification
from herald.core.tasks import spawn
from herald.processors._api import Delivery, DeliveryResult, Duration, Outcome, Processor, SettingsModel
from herald.processors._ledger import (
    DEAD,
    DELIVERED,
    PENDING,
    SKIPPED,
    DeliveryRecord,
    Finish,
    Ledger,
)
from herald.processors._throttle import Throttle

_log = logging.getLogger("herald.delivery")


class DeliverySettings(SettingsModel):
    """`notifications.delivery` (see the module docstring)."""

    worker: Literal["in-process", "external"] = "in-process"
    max_attempts: int = Field(10, ge=1, le=1000)
    initial_backoff: Duration = 10_000
    max_backoff: Duration = 3_600_000
    lease: Duration = 120_000
    poll_interval: Duration = 1_000
    batch_size: int = Field(100, ge=1, le=10_000)
    retention: Duration | None = 30 * 86_400_000
    shutdown_grace: Duration = 10_000

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, v: Any) -> Any:
        return None if v is False else v

    @field_validator("lease")
    @classmethod
    def _lease(cls, v: int) -> int:
        if v < 1000:
            raise ValueError("lease must be at least one second")
        return v


def backoff_ms(attempt: int, initial_ms: int, max_ms: int, rng: random.Random) -> int:
    """Exponential backoff with jitter: d = min(max, initial * 2^(attempt-1)), a delay in [d/2, d]."""
    d = min(max_ms, initial_ms * (2 ** min(max(attempt - 1, 0), 40)))
    return int(d / 2 + rng.random() * d / 2)


def delivery_from_record(record: DeliveryRecord, previous_receipt: dict[str, Any] | None) -> Delivery:
    snap = record.snapshot
    created = int(snap.get("created") or record.created)
    notification = Notification(
        id=record.notification_id, user=record.user, created=created, origin=record.origin,
        title=str(snap.get("title") or ""), description=snap.get("description"), link=snap.get("link"),
        severity=str(snap.get("severity") or "normal"), topic=snap.get("topic"), scope=snap.get("scope"),
        icon=snap.get("icon"), updated=created if record.resend else None,
    )
    recipients = snap.get("recipients") or {}
    metadata = snap.get("metadata")
    return Delivery(
        id=record.id, channel=record.channel, notification=notification, target=record.target,
        attempt=record.attempts, resend=record.resend, metadata=metadata if isinstance(metadata, dict) else {},
        recipients=tuple(recipients.get("entityRef") or ()), broadcast=recipients.get("type") == "broadcast",
        previous_receipt=previous_receipt,
    )


class _Lane:
    def __init__(self, processor: Processor[Any]) -> None:
        limits = processor.limits()
        self.processor = processor
        self.channel = processor.name
        self.concurrency = max(1, limits.concurrency)
        self.capacity = self.concurrency * 2  # running + claimed and about to run
        self.semaphore = asyncio.Semaphore(self.concurrency)
        self.throttle = Throttle(limits.per_interval, limits.interval_ms)
        self.tasks: set[asyncio.Task[None]] = set()
        self.idle = False
        """The last claim found fewer rows than asked: nothing more is due until a send, a retry or
        the next poll says otherwise (a finished delivery alone does not make this lane busy)."""

    def free(self) -> int:
        return self.capacity - len(self.tasks)


class DeliveryWorker:
    """Runs the lanes until stopped. `wake()` makes it look for work now (called after a send)."""

    def __init__(self, ledger: Ledger, processors: Sequence[Processor[Any]], settings: DeliverySettings, *,
                 clock: Clock | None = None, worker_id: str | None = None, rng: random.Random | None = None
                 ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.clock = clock or SystemClock()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.rng = rng or random.Random()
        self.lanes = [_Lane(p) for p in processors]
        self._wake = asyncio.Event()
        self._force = True
        self._stopping = False
        self._last_purge = 0.0

    def wake(self) -> None:
        """New work may be due (a send, a retry): look on every lane now."""
        self._force = True
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return sum(len(lane.tasks) for lane in self.lanes)

    async def run(self) -> None:
        """Deliver until `stop()` (or cancellation)."""
        poll_s = self.settings.poll_interval / 1000
        _log.info("delivery worker %s started for %s", self.worker_id,
                  ", ".join(lane.channel for lane in self.lanes) or "no channels")
        while not self._stopping:
            self._wake.clear()
            force, self._force = self._force, False
            try:
                claimed = await self.tick(force=force)
                await self._maybe_purge()
            except Exception:
                _log.exception("delivery worker: cannot claim deliveries; will retry")
                claimed = 0
            if claimed and any(lane.free() > 0 and not lane.idle for lane in self.lanes):
                continue  # there may be more due right now
            try:
                await asyncio.wait_for(self._wake.wait(), self._sleep_s(poll_s))
            except TimeoutError:
                self._force = True  # the poll: retries come due without anyone saying so

    def _sleep_s(self, poll_s: float) -> float:
        waits = [poll_s]
        for lane in self.lanes:
            slot = lane.throttle.next_slot_in()
            if slot > 0:
                waits.append(slot)
        return max(0.001, min(waits))

    async def tick(self, *, force: bool = True) -> int:
        """Claim and start what is due on every lane (with `force` False, only on lanes whose last
        claim was full); returns how many rows were claimed."""
        claimed = 0
        for lane in self.lanes:
            if lane.idle and not force:
                continue
            free = min(lane.free(), lane.throttle.available() + lane.concurrency, self.settings.batch_size)
            if free <= 0:
                continue
            now = self.clock.now_ms()
            records = await self.ledger.claim(lane.channel, free, now=now, lease_ms=self.settings.lease,
                                              worker=self.worker_id, max_attempts=self.settings.max_attempts)
            for record in records:
                task = spawn(self._run_one(lane, record, claimed_at=now), name=f"deliver-{record.id}")
                lane.tasks.add(task)
                task.add_done_callback(functools.partial(self._done, lane))
            lane.idle = len(records) < free
            claimed += len(records)
        return claimed

    def _done(self, lane: _Lane, task: asyncio.Task[None]) -> None:
        lane.tasks.discard(task)
        self._wake.set()

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Deliver everything due now and wait for it (tests; a one-shot run)."""
        deadline = time.monotonic() + timeout_s
        while True:
            claimed = await self.tick()
            tasks = [t for lane in self.lanes for t in lane.tasks]
            if not claimed and not tasks and await self.ledger.due_count(self.clock.now_ms()) == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("deliveries still due after the drain timeout")
            if tasks:
                await asyncio.wait(tasks, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop claiming, let in-flight deliveries finish for `shutdownGrace`, then interrupt them
        (they go back to the queue at once)."""
        self._stopping = True
        self._wake.set()
        tasks = [t for lane in self.lanes for t in lane.tasks]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace / 1000)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _maybe_purge(self) -> None:
        retention = self.settings.retention
        if retention is None or time.monotonic() - self._last_purge < 3600:
            return
        self._last_purge = time.monotonic()
        deleted = await self.ledger.purge(self.clock.now_ms() - retention)
        if deleted:
            _log.info("deleted %d finished deliveries older than the retention", deleted)

    # -- one delivery ---------------------------------------------------------------------------

    async def _run_one(self, lane: _Lane, record: DeliveryRecord, *, claimed_at: int) -> None:
        lease = self.settings.lease
        timeout_s = lease * 0.8 / 1000
        started = self.clock.now_ms()
        try:
            async with lane.semaphore:
                await lane.throttle.acquire()
                started = self.clock.now_ms()
                if started + lease * 0.8 > claimed_at + lease - 1000:
                    # it waited for its turn long enough that the lease would run out mid-attempt
                    await self.ledger.extend([record.id], worker=self.worker_id, until=started + lease)
                previous = await self.ledger.previous_receipt(record)
                delivery = delivery_from_record(record, previous)
                try:
                    result = await asyncio.wait_for(lane.processor.deliver(delivery), timeout_s)
                except TimeoutError:
                    result = DeliveryResult.retryable(f"timed out after {timeout_s:g} s")
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    _log.exception("processor %s failed on delivery %s", lane.channel, record.id)
                    result = DeliveryResult.retryable(f"unexpected error: {type(e).__name__}: {e}")
        except asyncio.CancelledError:
            now = self.clock.now_ms()
            await asyncio.shield(self._finish(record, Finish(
                status=PENDING, outcome="interrupted", detail="interrupted: the worker stopped",
                next_attempt_at=now, started=started, finished=now)))
            raise
        except Exception as e:  # the ledger could not be read: the lease will bring the row back
            _log.exception("delivery %s could not be prepared", record.id)
            result = DeliveryResult.retryable(f"unexpected error: {type(e).__name__}: {e}")
        await self._finish(record, self._decide(record, result, started))

    def _decide(self, record: DeliveryRecord, result: DeliveryResult, started: int) -> Finish:
        now = self.clock.now_ms()
        detail = result.detail
        receipt = dict(result.receipt) if result.receipt is not None else None
        outcome = result.outcome
        if outcome == Outcome.OK:
            return Finish(DELIVERED, outcome.value, detail, now, started, now, receipt)
        if outcome == Outcome.SKIPPED:
            return Finish(SKIPPED, outcome.value, detail, now, started, now)
        if outcome == Outcome.PERMANENT:
            _log.warning("delivery %s (%s) failed permanently: %s", record.id, record.channel, detail)
            return Finish(DEAD, outcome.value, detail, now, started, now)
        attempts = record.attempts - record.retry_base
        if attempts >= self.settings.max_attempts:
            _log.warning("delivery %s (%s) dead-lettered after %d attempts: %s", record.id, record.channel,
                         attempts, detail)
            return Finish(DEAD, outcome.value, f"gave up after {attempts} attempts: {detail}", now, started, now)
        delay = backoff_ms(attempts, self.settings.initial_backoff, self.settings.max_backoff, self.rng)
        if result.retry_after_ms is not None:
            delay = max(delay, result.retry_after_ms)
        return Finish(PENDING, outcome.value, detail, now + delay, started, now)

    async def _finish(self, record: DeliveryRecord, finish: Finish) -> None:
        """Record the outcome; a few tries if the database hiccups. If it cannot be recorded, the
        lease runs out and the row is delivered again (at-least-once, same idempotency key)."""
        for attempt in range(5):
            try:
                await self.ledger.finish(record, worker=self.worker_id, finish=finish)
                return
            except Exception:
                if attempt == 4:
                    _log.exception("cannot record the outcome of delivery %s; it will be retried", record.id)
                    return
                await asyncio.sleep(0.2 * (attempt + 1))
