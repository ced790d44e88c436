"""The worker: retries with backoff and jitter, dead letters, limits, leases, shutdown (both databases)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from tests.processors.conftest import NOW, enqueue

from herald.processors import DeliveryResult, Limits
from herald.processors._ledger import Ledger
from herald.processors._worker import DeliverySettings, DeliveryWorker, backoff_ms
from herald.processors.testing import FakeClock, RecordingProcessor, RecordingSettings, make_context
from herald.store.database import Database


def settings(**raw: Any) -> DeliverySettings:
    return DeliverySettings.model_validate({"initialBackoff": "1s", "maxBackoff": "8s", "maxAttempts": 4,
                                            "pollInterval": "10ms", **raw})


def recording(delay_ms: int = 0, limits: Limits | None = None) -> RecordingProcessor:
    class Limited(RecordingProcessor):
        def limits(self) -> Limits:
            return limits or Limits()

    return Limited(RecordingSettings(delay_ms=delay_ms), make_context())


def worker(db: Database, processor: RecordingProcessor, clock: FakeClock, **raw: Any) -> DeliveryWorker:
    return DeliveryWorker(Ledger(db), [processor], settings(**raw), clock=clock, worker_id="w",
                          rng=random.Random(7))


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    rng = random.Random(1)
    for attempt, (lo, hi) in enumerate([(500, 1000), (1000, 2000), (2000, 4000), (4000, 8000), (4000, 8000)],
                                       start=1):
        values = [backoff_ms(attempt, 1000, 8000, rng) for _ in range(200)]
        assert lo <= min(values) and max(values) <= hi
        assert len(set(values)) > 50  # jittered


async def test_retries_then_delivers(db: Database) -> None:
    clock = FakeClock(NOW)
    p = recording()
    p.script.extend([DeliveryResult.retryable("busy"), DeliveryResult.retryable("busy again")])
    [did] = await enqueue(db, ["user:default/a"])
    w = worker(db, p, clock)
    await w.drain()
    rec = await w.ledger.get(did)
    assert rec is not None and rec.status == "pending" and rec.detail == "busy"
    assert NOW + 500 <= rec.next_attempt_at <= NOW + 1000
    await w.drain()  # not due yet: nothing happens
    assert len(p.deliveries) == 1
    clock.advance(1000)
    await w.drain()
    rec = await w.ledger.get(did)
    assert rec is not None and NOW + 1000 + 1000 <= rec.next_attempt_at <= NOW + 1000 + 2000
    clock.advance(2000)
    await w.drain()
    rec = await w.ledger.get(did)
    assert rec is not None and rec.status == "delivered" and rec.attempts == 3 and rec.receipt == {"n": 3}
    assert [a.outcome for a in await w.ledger.attempts(did)] == ["retryable", "retryable", "ok"]
    assert [d.attempt for d in p.deliveries] == [1, 2, 3]
    assert len({d.id for d in p.deliveries}) == 1  # one idempotency key across attempts


async def test_dead_letter_after_max_attempts(db: Database) -> None:
    clock = FakeClock(NOW)
    p = recording()
    p.script.extend([DeliveryResult.retryable(f"down {i}") for i in range(10)])
    [did] = await enqueue(db, ["user:default/a"])
    w = worker(db, p, clock)
    for _ in range(6):
        await w.drain()
        clock.advance(8000)
    rec = await w.ledger.get(did)
    assert rec is not None and rec.status == "dead" and rec.attempts == 4
    assert rec.detail == "gave up after 4 attempts: down 3"
    assert len(p.deliveries) == 4


async def test_permanent_failure_is_not_retried(db: Database) -> None:
    clock = FakeClock(NOW)
    p = recording()
    p.script.append(DeliveryResult.permanent("HTTP 400"))
    [did] = await enqueue(db, ["user:default/a"])
    w = worker(db, p, clock)
    await w.drain()
    clock.advance(60_000)
    await w.drain()
    rec = await w.ledger.get(did)
    assert rec is not None and (rec.status, rec.attempts, rec.detail) == ("dead", 1, "HTTP 400")
    assert len(p.deliveries) == 1


async def test_skipped_and_exceptions(db: Database) -> None:
    clock = FakeClock(NOW)
    p = recording()
    p.script.extend([DeliveryResult.skipped("no address"), RuntimeError("bug")])
    [a, b] = await enqueue(db, ["user:default/a", "user:default/b"])
    w = worker(db, p, clock)
    await w.drain()
    recs = {r.user: r for r in [await w.ledger.get(a), await w.ledger.get(b)] if r}
    assert {r.status for r in recs.values()} == {"skipped", "pending"}
    failed = next(r for r in recs.values() if r.status == "pending")
    assert failed.detail == "unexpected error: RuntimeError: bug"


async def test_retry_after_is_a_lower_bound(db: Database) -> None:
    clock = FakeClock(NOW)
    p = recording()
    p.script.append(DeliveryResult.retryable("429", retry_after_ms=30_000))
    [did] = await enqueue(db, ["user:default/a"])
    w = worker(db, p, clock)
    await w.drain()
    rec = await w.ledger.get(did)
    assert rec is not None and rec.next_attempt_at == NOW + 30_000


async def test_concurrency_limit(db: Database) -> None:
    running = 0
    peak = 0

    class Counting(RecordingProcessor):
        def limits(self) -> Limits:
            return Limits(concurrency=3)

        async def deliver(self, delivery: Any) -> DeliveryResult:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1
            return DeliveryResult.ok()

    await enqueue(db, [f"user:default/u{i}" for i in range(20)])
    w = DeliveryWorker(Ledger(db), [Counting(RecordingSettings(), make_context())], settings(), clock=FakeClock(NOW))
    await w.drain()
    assert peak == 3
    assert (await w.ledger.counts())["Recording"] == {"delivered": 20}


async def test_throttle_limits_starts_per_interval(db: Database) -> None:
    starts: list[float] = []

    class Throttled(RecordingProcessor):
        def limits(self) -> Limits:
            return Limits(concurrency=5, per_interval=2, interval_ms=200)

        async def deliver(self, delivery: Any) -> DeliveryResult:
            starts.append(time.monotonic())
            return DeliveryResult.ok()

    await enqueue(db, [f"user:default/u{i}" for i in range(6)])
    w = DeliveryWorker(Ledger(db), [Throttled(RecordingSettings(), make_context())], settings(), clock=FakeClock(NOW))
    await w.drain()
    assert len(starts) == 6
    for i in range(2, 6):
        assert starts[i] - starts[i - 2] >= 0.19  # never more than 2 starts in any 200 ms window


async def test_a_delivery_that_hangs_times_out_and_is_retried(db: Database) -> None:
    class Hangs(RecordingProcessor):
        async def deliver(self, delivery: Any) -> DeliveryResult:
            await asyncio.sleep(30)
            return DeliveryResult.ok()

    [did] = await enqueue(db, ["user:default/a"])
    w = DeliveryWorker(Ledger(db), [Hangs(RecordingSettings(), make_context())], settings(lease="1s"),
                       clock=FakeClock(NOW))
    await w.drain()
    rec = await w.ledger.get(did)
    assert rec is not None and rec.status == "pending" and rec.detail == "timed out after 0.8 s"


async def test_stop_interrupts_and_requeues_in_flight_deliveries(db: Database) -> None:
    p = recording(delay_ms=10_000)
    [did] = await enqueue(db, ["user:default/a"])
    w = worker(db, p, FakeClock(NOW), shutdownGrace="50ms")
    await w.tick()
    await asyncio.sleep(0.05)
    assert len(p.deliveries) == 1
    await w.stop()
    rec = await w.ledger.get(did)
    assert rec is not None and rec.status == "pending" and rec.next_attempt_at <= NOW
    assert [a.outcome for a in await w.ledger.attempts(did)] == ["interrupted"]


async def test_run_loop_picks_up_work_when_woken(db: Database) -> None:
    from herald.core.tasks import spawn

    p = recording()
    w = DeliveryWorker(Ledger(db), [p], settings(pollInterval="1h"))
    task = spawn(w.run())
    try:
        await asyncio.sleep(0.05)
        await enqueue(db, ["user:default/a"], now=int(time.time() * 1000))
        w.wake()
        for _ in range(200):
            if p.deliveries:
                break
            await asyncio.sleep(0.01)
        assert len(p.deliveries) == 1
    finally:
        await w.stop()
        await asyncio.wait_for(task, 2)  # stop() ends the loop


def test_delivery_settings_validation() -> None:
    from herald.processors import ProcessorConfigError
    from herald.processors.runtime import delivery_settings

    assert delivery_settings(None).max_attempts == 10
    assert delivery_settings({"retention": False}).retention is None
    assert delivery_settings({"lease": {"minutes": 5}}).lease == 300_000
    with pytest.raises(ProcessorConfigError, match=r"notifications\.delivery\.maxAttempts"):
        delivery_settings({"maxAttempts": 0})
    with pytest.raises(ProcessorConfigError, match=r"notifications\.delivery\.worker"):
        delivery_settings({"worker": "elsewhere"})
