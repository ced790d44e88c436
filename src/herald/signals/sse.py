"""`GET /api/signals/stream?channel=…[&channel=…]`: signals as Server-Sent Events, resumable.

Beyond Backstage: a client that reconnects misses nothing. Each event is

    id: <event id>
    event: <channel>
    data: <message JSON>

with a comment line every 15 s to keep proxies from closing an idle stream. Authentication is the
API's (`Authorization: Bearer <user token>`); a service principal sees broadcasts only, as a
WebSocket guest does.

Resume. A browser `EventSource` reconnects by itself and sends the id of the last event it got
as `Last-Event-ID` (a client that cannot set headers may pass `?lastEventId=`). The stream then

1. registers for live events first (they are buffered),
2. replays from the event log every event for this user (own + broadcasts) on these channels with
   id > Last-Event-ID, in id order,
3. continues with the buffered and then the live events, skipping ids already sent.

That is gap-free and duplicate-free because every process sees events in id order and ids are
handed out in commit order (see `herald.signals.eventlog`): an event not yet in the replay has a
higher id than everything replayed and arrives live. A fresh stream (no Last-Event-ID) starts with
a bare `id: <current position>` line, so that the browser has a resume point even when it gets no
event before its next reconnect. A stream whose client falls `send_buffer_frames` events behind is
ended; the client reconnects and replays what it missed from the log.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from herald.core.errors import AuthenticationError, HeraldError
from herald.core.model import Principal
from herald.signals.eventlog import EventLog
from herald.signals.hub import SignalHub, StreamSubscriber, sse_event
from herald.signals.websocket import identity

_log = logging.getLogger("herald.signals")

AuthenticateRequest = Callable[[Request], Awaitable[Principal] | Principal]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
SendFn = Callable[[MutableMapping[str, Any]], Awaitable[None]]

REPLAY_PAGE = 500


def error_response(request: Request, error: HeraldError) -> JSONResponse:
    """Backstage's error body (spec §2.3)."""
    url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return JSONResponse(
        {"error": {"name": error.name, "message": error.message},
         "request": {"method": request.method, "url": url},
         "response": {"statusCode": error.status}},
        status_code=error.status, media_type="application/json; charset=utf-8")


class _BadRequest(HeraldError):
    name = "InputError"
    status = 400


def _parse_last_id(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() and len(value) <= 18 else None


class SignalsEventStream:
    """The ASGI app behind `Route("/api/signals/stream", SignalsEventStream(...), methods=["GET"])`."""

    def __init__(self, hub: SignalHub, log: EventLog, authenticate_request: AuthenticateRequest, *,
                 heartbeat_seconds: float = 15.0) -> None:
        self.hub = hub
        self.log = log
        self.authenticate_request = authenticate_request
        self.heartbeat_seconds = heartbeat_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: SendFn) -> None:
        request = Request(scope, receive)
        try:
            result = self.authenticate_request(request)
            principal = await result if inspect.isawaitable(result) else result
        except AuthenticationError as exc:
            await error_response(request, exc)(scope, receive, send)
            return
        assert isinstance(principal, Principal)
        channels = list(dict.fromkeys(c for c in request.query_params.getlist("channel") if c))
        if not channels:
            err = _BadRequest("Missing query parameter 'channel'")
            await error_response(request, err)(scope, receive, send)
            return
        after = _parse_last_id(request.headers.get("last-event-id"))
        if after is None:
            after = _parse_last_id(request.query_params.get("lastEventId"))
        user, refs = identity(principal)
        sub = self.hub.open_stream(user, refs, channels)
        try:
            response = StreamingResponse(
                self._events(sub, refs, channels, after), media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            await response(scope, receive, send)
        finally:
            self.hub.remove(sub)

    async def _events(self, sub: StreamSubscriber, refs: tuple[str, ...], channels: list[str],
                      after: int | None) -> AsyncIterator[bytes]:
        if after is None:
            last = self.hub.last_id
            yield f"id: {last}\n\n".encode()
        else:
            newest = await self.log.last_id()
            last = min(after, newest)  # an id from before a database reset: start over
            while True:
                page = await self.log.replay(refs, channels, last, REPLAY_PAGE)
                if page:
                    yield b"".join(sse_event(e) for e in page)
                    last = page[-1].id
                if len(page) < REPLAY_PAGE:
                    break
            if last < after:
                yield f"id: {last}\n\n".encode()
        while True:
            batch = await sub.next(self.heartbeat_seconds)
            if batch is None:
                yield b": keep-alive\n\n"
                continue
            chunk = []
            for d in batch:
                ev = d.event
                if ev is not None and ev.id > last:
                    chunk.append(d.sse)
                    last = ev.id
            if chunk:
                yield b"".join(chunk)
            if sub.closed:
                return
