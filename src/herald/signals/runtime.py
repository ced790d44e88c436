"""Wiring: build the signals subsystem from the settings, mount its routes, run its tasks.

    # before the server is configured (the app builds everything else in its lifespan):
    ws_protocol = make_ws_protocol()
    uvicorn.Config(app, …, **uvicorn_ws_options(ws_protocol))   # + timeout_graceful_shutdown
    # at start-up (lifespan):
    signals = Signals(config.signals, db, authenticate_token=authenticator.authenticate_token,
                      authenticate_request=…, ws_protocol_class=ws_protocol)
    service = NotificationService(…, signals=signals.publisher)
    app.router.routes.extend(signals.routes())          # WS /api/signals, GET /api/signals/stream
    await signals.start()   …   await signals.stop()
    # when the server begins to shut down: await signals.close_connections() (ends SSE streams)

With a PostgreSQL database the bus is `PostgresBus` (every replica delivers every signal); with
SQLite (one process) or no database it is `MemoryBus`. The event log lives in the same database
(`MemoryEventLog` without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.routing import BaseRoute, Route, WebSocketRoute

from herald.config import SignalsConfig
from herald.core.clock import Clock, SystemClock
from herald.core.tasks import spawn
from herald.signals.bus import MemoryBus, PostgresBus, SignalBus, SignalService
from herald.signals.eventlog import EventLog, MemoryEventLog, SqlEventLog
from herald.signals.hub import SignalHub
from herald.signals.sse import AuthenticateRequest, SignalsEventStream
from herald.signals.websocket import AuthenticateToken, SignalsWebSocket
from herald.signals.wsserver import SignalsWsProtocol, bind_ws_protocol, make_ws_protocol
from herald.store.database import Database

_log = logging.getLogger("herald.signals")


def uvicorn_ws_options(ws_protocol_class: type[SignalsWsProtocol] | None, *,
                       ping_interval_seconds: float = 30.0) -> dict[str, Any]:
    """uvicorn settings for `/api/signals`; pass them to `uvicorn.Config` / `uvicorn.run`.

    With a protocol class (`make_ws_protocol()`, the default way): uvicorn hands every WebSocket
    upgrade to it (`herald.signals.wsserver`), which serves `/api/signals` without ASGI: ~4-7 KiB
    per connection instead of ~20-26, and one keep-alive loop for all connections
    (`Signals.start` runs it). Other WebSocket paths then get a 404 — Herald has none.

    With None: the ASGI route (`SignalsWebSocket`) on uvicorn's `websockets-sansio`
    implementation, which the hub still writes to directly. Keep-alive is then uvicorn's
    (`ws_ping_interval` = `ws_ping_timeout` = `ping_interval_seconds`: a ping each round, closed
    when its pong has not come by the next), since ASGI cannot send a ping.

    Both: no permessage-deflate, like Backstage's `ws` server (compression state costs tens of KiB
    per connection and makes the frame bytes differ per connection); client frames are
    `{"action","channel"}`, so 64 KiB is plenty for `ws_max_size`.
    """
    if ws_protocol_class is not None:
        return {"ws": ws_protocol_class, "ws_per_message_deflate": False,
                "ws_ping_interval": None, "ws_ping_timeout": None, "ws_max_size": 64 * 1024}
    interval = ping_interval_seconds
    return {
        "ws": "websockets-sansio",
        "ws_ping_interval": interval if interval > 0 else None,
        "ws_ping_timeout": interval if interval > 0 else None,
        "ws_per_message_deflate": False,
        "ws_max_size": 64 * 1024,
    }


class Signals:
    """The signals subsystem of one process: hub, event log, bus, publisher, endpoints, tasks."""

    def __init__(self, config: SignalsConfig, db: Database | None, *,
                 authenticate_token: AuthenticateToken, authenticate_request: AuthenticateRequest,
                 clock: Clock | None = None, prune_interval_seconds: float = 60.0,
                 heartbeat_seconds: float = 15.0, fast_path: bool = True,
                 ws_protocol_class: type[SignalsWsProtocol] | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.prune_interval_seconds = prune_interval_seconds
        self.hub = SignalHub(
            max_connections_per_user=config.max_connections_per_user,
            max_subscriptions_per_connection=config.max_subscriptions_per_connection,
            send_buffer_frames=config.send_buffer_frames,
            fast_path=fast_path,
        )
        self.log: EventLog
        self.bus: SignalBus
        if db is None:
            self.log = MemoryEventLog(config.event_log_max_events)
            self.bus = MemoryBus(self.hub, self.log)
        else:
            sql_log = SqlEventLog(db)
            self.log = sql_log
            dsn = getattr(db, "dsn", None)
            if db.dialect.name == "postgresql" and isinstance(dsn, str):
                self.bus = PostgresBus(sql_log, self.hub, dsn)
            else:
                self.bus = MemoryBus(self.hub, sql_log)
        self.publisher = SignalService(self.bus, clock=self.clock)
        """The `SignalPublisher` for the core's notification service."""
        self.websocket = SignalsWebSocket(self.hub, authenticate_token)
        self.stream = SignalsEventStream(self.hub, self.log, authenticate_request,
                                         heartbeat_seconds=heartbeat_seconds)
        if ws_protocol_class is None:
            ws_protocol_class = make_ws_protocol()
        bind_ws_protocol(ws_protocol_class, self.hub, authenticate_token)
        self.ws_protocol_class = ws_protocol_class
        """The uvicorn `ws` protocol class serving `/api/signals` (see `uvicorn_ws_options`); pass
        one made before the server was configured (`make_ws_protocol()`) to have it bound here."""
        self._pruner: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    def routes(self, path: str = "/api/signals") -> list[BaseRoute]:
        return [
            WebSocketRoute(path, self.websocket),
            Route(f"{path}/stream", self.stream, methods=["GET"]),
        ]

    async def start(self) -> None:
        """Start the bus listener and the event-log pruning."""
        await self.bus.start()
        self._pruner = spawn(self._prune_loop(), name="herald.signals.pruner")
        if self.config.ping_interval_seconds > 0:
            self._pinger = spawn(self._ping_loop(), name="herald.signals.pinger")

    async def close_connections(self) -> None:
        """Close every WebSocket and end every SSE stream. Call it when the server starts shutting
        down (before uvicorn waits for open connections: SSE streams never end by themselves)."""
        await self.hub.close_all()

    async def stop(self) -> None:
        for task in (self._pruner, self._pinger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._pruner = self._pinger = None
        await self.hub.close_all()
        await self.bus.stop()

    async def prune(self) -> int:
        max_age_ms = int(self.config.event_log_max_age_seconds * 1000)
        return await self.log.prune(created_before_ms=self.clock.now_ms() - max_age_ms,
                                    keep=self.config.event_log_max_events)

    async def _ping_loop(self) -> None:
        """Keep-alive of the dedicated protocol's connections (spec §4.3): every round, a ping to
        each, and the ones that did not answer the previous round are dropped."""
        while True:
            await asyncio.sleep(self.config.ping_interval_seconds)
            try:
                self.hub.ping_round()
            except Exception:
                _log.exception("signals: keep-alive round failed")

    async def _prune_loop(self) -> None:
        while True:
            try:
                n = await self.prune()
                if n:
                    _log.debug("signals: pruned %d event(s)", n)
            except Exception:
                _log.exception("signals: pruning the event log failed")
            await asyncio.sleep(self.prune_interval_seconds)


def signals_routes(signals: Signals, path: str = "/api/signals") -> list[BaseRoute]:
    """`WebSocket {path}` and `GET {path}/stream`, to mount at the application's root."""
    return signals.routes(path)
