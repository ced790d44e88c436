"""`/api/signals`: the Backstage signals WebSocket protocol (spec §4.3), as a plain ASGI app.

* The user token is the `Sec-WebSocket-Protocol` value; the first offered value is echoed on the
  `101` whatever the outcome of authentication (browsers fail the handshake otherwise).
* A token that does not authenticate: a plain HTTP `401` with an empty body before the upgrade
  (ASGI WebSocket Denial Response; servers without it get a close 1008, which uvicorn turns into a
  403). An internal failure while authenticating: `500` the same way.
* No token, or a service principal: a guest, `user:default/guest`.
* Client frames (text JSON) `{"action": "subscribe"|"unsubscribe", "channel": "…"}`; binary,
  malformed and unknown frames are ignored. Over `max_subscriptions_per_connection`:
  `{"type":"error","action":"subscribe","channel":…,"error":"too_many_subscriptions"}` (§4.5).
* Over `max_connections_per_user`: accepted, then closed with 1008 (policy violation).
* Keep-alive pings are the server's (uvicorn `ws_ping_interval`/`ws_ping_timeout`, see
  `herald.signals.runtime.uvicorn_ws_options`): ASGI has no message to send a ping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from herald.core.errors import AuthenticationError
from herald.core.model import GUEST_USER, Principal
from herald.signals.hub import GUEST_REFS, POLICY_VIOLATION, SignalHub, WsConnection

_log = logging.getLogger("herald.signals")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
SendFn = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AuthenticateToken = Callable[[str], Awaitable[Principal]]


def identity(principal: Principal | None) -> tuple[str, tuple[str, ...]]:
    """(user ref, identity refs) of a connection: a user's ref and ownership refs; else a guest."""
    if principal is None or principal.kind != "user":
        return GUEST_USER, GUEST_REFS
    return principal.subject, tuple(dict.fromkeys((principal.subject, *principal.ownership_refs)))


class SignalsWebSocket:
    """The ASGI app behind `WebSocketRoute("/api/signals", SignalsWebSocket(...))`."""

    def __init__(self, hub: SignalHub, authenticate_token: AuthenticateToken) -> None:
        self.hub = hub
        self.authenticate_token = authenticate_token

    async def __call__(self, scope: Scope, receive: Receive, send: SendFn) -> None:
        if scope["type"] != "websocket":  # pragma: no cover - the route only matches websockets
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        offered = scope.get("subprotocols") or []
        token: str | None = offered[0] if offered else None
        principal: Principal | None = None
        if token:
            try:
                principal = await self.authenticate_token(token)
            except AuthenticationError:
                await _deny(scope, send, 401)
                return
            except Exception:
                _log.exception("signals: authenticating a WebSocket failed")
                await _deny(scope, send, 500)
                return
        user, refs = identity(principal)
        conn = self.hub.connect(user, refs, send, receive)
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if token:
            accept["subprotocol"] = token
        if conn is None:
            await send(accept)
            await send({"type": "websocket.close", "code": POLICY_VIOLATION,
                        "reason": "too many connections"})
            return
        conn.task = asyncio.current_task()
        try:
            await send(accept)
            await self._serve(conn, receive)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not conn.aborted or task is None:
                raise
            task.uncancel()  # the hub dropped this connection; end the ASGI call normally
        except OSError:  # the client went away while we were accepting
            pass
        finally:
            self.hub.remove(conn)

    async def _serve(self, conn: WsConnection, receive: Receive) -> None:
        hub = self.hub
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            text = message.get("text")
            if text is None:
                continue  # binary frames are ignored
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                _log.debug("signals: ignoring a malformed client frame")
                continue
            if not isinstance(data, dict):
                continue
            action, channel = data.get("action"), data.get("channel")
            if not isinstance(channel, str):
                continue
            if action == "subscribe":
                if not hub.subscribe(conn, channel):
                    hub.send_to(conn, {"type": "error", "action": "subscribe", "channel": channel,
                                       "error": "too_many_subscriptions"})
            elif action == "unsubscribe":
                hub.unsubscribe(conn, channel)


async def _deny(scope: Scope, send: SendFn, status: int) -> None:
    """Refuse the upgrade with a plain HTTP response (empty body), or close 1008 before accepting
    when the server cannot send one."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-length", b"0"), (b"connection", b"close")]})
        await send({"type": "websocket.http.response.body", "body": b""})
    else:
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})
