"""Publishing signals: the event log, the bus between processes, and the `SignalPublisher`.

    SignalService.publish(signals)          (after the caller's commit; never raises)
        -> rows, one per recipient user (one for a broadcast), coalesced across concurrent calls
        -> bus.publish(rows)
             MemoryBus:    append to the event log, dispatch to this process's hub
             PostgresBus:  append + pg_notify("<bus id> <batch> <lo> <hi>") in ONE statement;
                           every process's listener (this one included) dispatches ids lo..hi

**PostgresBus.** Each process keeps one dedicated connection that `LISTEN`s on
`herald_signals`. A NOTIFY payload is ~40 bytes whatever the number of recipients: the rows are
in the event log, and the payload names them by id range (exact ids, never "everything after the
last one I saw"). The range is exact because appends hold the event-log lock (see `eventlog`), so
nobody else can take ids inside it. The publishing process does not read its own rows back: it
keeps them in memory under the batch number until its own notification comes round, then
dispatches them; other processes read them with one query per burst of notifications.

Everything, local rows included, is dispatched in notification order, which is commit order,
which (thanks to the lock) is id order: every process sees events in increasing id order, which
the SSE stream relies on to resume without gaps or duplicates.

When the listening connection drops, the bus reconnects with exponential backoff (0.5 s doubling
to 30 s, with jitter), `LISTEN`s again, then catches up with the events committed meanwhile
(`id > last dispatched`, exact because ids are in commit order) before handling new notifications
(duplicates are skipped by id). A silent network failure is found by a `SELECT 1` every 15 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, Protocol

import orjson

from herald.core.clock import Clock, SystemClock
from herald.core.ports import Signal
from herald.core.tasks import spawn
from herald.signals.eventlog import NOTIFY_CHANNEL, EventLog, EventRow, SqlEventLog
from herald.signals.hub import SignalEvent, SignalHub

_log = logging.getLogger("herald.signals")

_by_id = attrgetter("id")


class SignalBus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, rows: Sequence[EventRow], now_ms: int) -> None:
        """Log the rows and have every process dispatch them. Raises when that failed."""
        ...


class MemoryBus:
    """One process: log, then dispatch to the local hub, in id order."""

    def __init__(self, hub: SignalHub, log: EventLog) -> None:
        self.hub = hub
        self.log = log
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.hub.last_id = max(self.hub.last_id, await self.log.last_id())

    async def stop(self) -> None:
        return None

    async def publish(self, rows: Sequence[EventRow], now_ms: int) -> None:
        async with self._lock:  # dispatch in the order the ids were handed out
            events = await self.log.append(rows, now_ms)
            self.hub.dispatch(events)


Connect = Callable[[str], Any]


async def _asyncpg_connect(dsn: str) -> Any:
    import asyncpg

    return await asyncpg.connect(dsn, timeout=10)


class PostgresBus:
    """Several processes sharing one PostgreSQL database; see the module docstring."""

    def __init__(self, log: SqlEventLog, hub: SignalHub, dsn: str, *, reconnect_min_s: float = 0.5,
                 reconnect_max_s: float = 30.0, health_interval_s: float = 15.0,
                 connect: Connect = _asyncpg_connect) -> None:
        self.log = log
        self.hub = hub
        self.dsn = dsn
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.health_interval_s = health_interval_s
        self._connect = connect
        self.bus_id = secrets.token_hex(8)
        self._batches = itertools.count(1)
        self._local: dict[int, Sequence[EventRow]] = {}
        self._inbox: deque[str | None] = deque()  # None: catch up with the log
        self._wake = asyncio.Event()
        self._last = 0
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._conn: Any = None
        self.listening = False
        self.connects = 0
        """How many times the listening connection was established (tests, metrics)."""
        self._attempted = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, wait_s: float = 10.0) -> None:
        """Start listening; waits (up to `wait_s`) for the first connection attempt."""
        self._stopping = False
        self._last = await self.log.last_id()
        self.hub.last_id = max(self.hub.last_id, self._last)
        self._consumer = spawn(self._consume(), name="herald.signals.bus-consumer")
        self._runner = spawn(self._listen(), name="herald.signals.bus-listener")
        try:
            await asyncio.wait_for(self._attempted.wait(), wait_s)
        except TimeoutError:
            _log.warning("signals: the PostgreSQL listener is not connected yet; retrying in background")

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._runner, self._consumer):
            if task is not None:
                task.cancel()
        for task in (self._runner, self._consumer):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._runner = self._consumer = None
        await self._close_conn()

    # -- publish -----------------------------------------------------------------------------

    async def publish(self, rows: Sequence[EventRow], now_ms: int) -> None:
        batch = next(self._batches)
        if self.listening:
            self._local[batch] = rows
            if len(self._local) > 10_000:  # notifications lost with a dead connection
                del self._local[next(iter(self._local))]
        try:
            await self.log.append_pg(rows, now_ms, notify=f"{self.bus_id} {batch}")
        except BaseException:
            self._local.pop(batch, None)
            raise

    # -- listening connection ----------------------------------------------------------------

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._inbox.append(payload)
        self._wake.set()

    async def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        self.listening = False
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), 2.0)
        except Exception:
            conn.terminate()

    async def _listen(self) -> None:
        delay = self.reconnect_min_s
        while not self._stopping:
            try:
                conn = self._conn = await self._connect(self.dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self.listening = True
                self.connects += 1
                if self.connects > 1:
                    _log.info("signals: PostgreSQL listener reconnected")
                self._inbox.append(None)  # what was committed while we were not listening
                self._wake.set()
                self._attempted.set()
                delay = self.reconnect_min_s
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), self.health_interval_s)
                    except TimeoutError:
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), 10.0)
                _log.warning("signals: the PostgreSQL listener connection was lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("signals: PostgreSQL listener failed (%s: %s); retrying in %.1f s",
                             type(exc).__name__, exc, delay)
            finally:
                self.listening = False
                self._local.clear()
                self._attempted.set()
                await self._close_conn()
            if self._stopping:
                break
            await asyncio.sleep(delay * (0.75 + random.random() / 2))
            delay = min(delay * 2, self.reconnect_max_s)

    # -- dispatch ----------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inbox:
                items = list(self._inbox)
                self._inbox.clear()
                try:
                    await self._handle(items)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.exception("signals: could not read signal events; catching up shortly")
                    self._inbox.appendleft(None)
                    await asyncio.sleep(1.0)

    async def _handle(self, items: list[str | None]) -> None:
        if None in items:
            await self._catch_up()
        events: list[SignalEvent] = []
        ranges: list[tuple[int, int]] = []
        for payload in items:
            if payload is None:
                continue
            try:
                sender, batch_s, lo_s, hi_s = payload.split(" ")
                batch, lo, hi = int(batch_s), int(lo_s), int(hi_s)
            except ValueError:
                _log.warning("signals: ignoring a malformed notification %r", payload[:100])
                continue
            if hi <= self._last:
                continue
            rows = self._local.pop(batch, None) if sender == self.bus_id else None
            if rows is not None and hi - lo + 1 == len(rows):
                events.extend(SignalEvent(lo + i, *row) for i, row in enumerate(rows))
            else:
                ranges.append((lo, hi))
        if ranges:
            events.extend(await self.log.fetch_ranges(ranges))
        if events:
            events.sort(key=_by_id)
            self._dispatch(events)

    async def _catch_up(self) -> None:
        while True:
            page = await self.log.after(self._last, 5000)
            self._dispatch(page)
            if len(page) < 5000:
                return

    def _dispatch(self, events: list[SignalEvent]) -> None:
        last = self._last
        fresh = [e for e in events if e.id > last]
        if not fresh:
            return
        # ids can repeat when the same range was both notified and caught up
        unique = [e for i, e in enumerate(fresh) if i == 0 or e.id != fresh[i - 1].id]
        self._last = unique[-1].id
        self.hub.dispatch(unique)


class SignalService:
    """The `SignalPublisher` of the core: signals -> event-log rows -> bus.

    Concurrent `publish` calls are coalesced: while one batch is being written, the rows of the
    calls that arrive meanwhile are gathered and written together by the next statement (one
    lock acquisition and one NOTIFY for all of them). `publish` returns once its rows are logged
    and handed to the bus; it never raises for delivery problems (they are logged)."""

    def __init__(self, bus: SignalBus, *, clock: Clock | None = None, max_batch_rows: int = 10_000) -> None:
        self.bus = bus
        self.clock = clock or SystemClock()
        self.max_batch_rows = max_batch_rows
        self._queue: deque[tuple[list[EventRow], asyncio.Future[None]]] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def publish(self, signals: Iterable[Signal]) -> None:
        try:
            rows = to_rows(signals)
        except Exception:
            _log.exception("signals: could not encode signals; not sent")
            return
        if not rows:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, fut))
        if self._writer is None:
            self._writer = spawn(self._write(), name="herald.signals.publisher")
        await asyncio.shield(fut)

    async def _write(self) -> None:
        try:
            while self._queue:
                rows: list[EventRow] = []
                waiters: list[asyncio.Future[None]] = []
                while self._queue and (not rows or len(rows) + len(self._queue[0][0]) <= self.max_batch_rows):
                    more, fut = self._queue.popleft()
                    rows.extend(more)
                    waiters.append(fut)
                try:
                    for start in range(0, len(rows), self.max_batch_rows):
                        await self.bus.publish(rows[start:start + self.max_batch_rows], self.clock.now_ms())
                except Exception:
                    _log.exception("signals: publishing %d signal event(s) failed; not delivered", len(rows))
                finally:
                    for fut in waiters:
                        if not fut.done():
                            fut.set_result(None)
        finally:
            self._writer = None
            while self._queue:  # only when cancelled (shutdown): release the waiting callers
                _, fut = self._queue.popleft()
                if not fut.done():
                    fut.set_result(None)


def to_rows(signals: Iterable[Signal]) -> list[EventRow]:
    """One row per recipient user, one for a broadcast. Signals without a channel or a message
    object are dropped, as upstream does."""
    rows: list[EventRow] = []
    for s in signals:
        if not s.channel or not isinstance(s.message, dict):
            continue
        try:
            message = orjson.dumps(s.message, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            _log.warning("signals: dropping a signal on %r whose message is not JSON", s.channel)
            continue
        if s.users is None:
            rows.append(EventRow(None, s.channel, message))
        else:
            rows.extend(EventRow(u, s.channel, message) for u in dict.fromkeys(s.users) if u)
    return rows
