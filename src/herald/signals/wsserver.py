"""A dedicated uvicorn WebSocket protocol for `/api/signals`: one small object per connection.

Through ASGI, every WebSocket costs uvicorn's protocol state (the handshake request and response
kept for the connection's lifetime, the ASGI scope, a receive queue, events, timers), a task and
the app's coroutine chain: measured here at ~20 KiB per idle connection before any Herald state,
twice Backstage's. Signals connections do nothing but receive the odd subscribe frame and get
frames pushed, so this protocol serves them directly:

* the handshake is parsed and answered by `websockets`' sans-I/O `ServerProtocol` (header
  validation, `Sec-WebSocket-Accept`, the first offered subprotocol echoed), then replaced by a
  bare frame parser (`websockets.protocol.Protocol`) for the rest of the connection;
* authentication is the same `authenticate_token` as the ASGI endpoint (a task only while it
  runs); `401`/`500` are plain HTTP responses with an empty body;
* the connection object *is* the hub's sink: frames are written straight to the transport, a
  queue exists only while the client is behind (`pause_writing`), and overflowing it drops the
  connection;
* keep-alive is one loop for all connections (`SignalHub.ping_round`): a ping each round, and a
  connection that sent no pong (or ping) since the previous round is dropped — no timer per
  connection.

Use it with `uvicorn.Config(app, ws=signals.ws_protocol_class, ...)` (see
`herald.signals.runtime.uvicorn_ws_options`). It then receives *every* WebSocket upgrade of that
server; upgrades to other paths get a 404. The ASGI endpoint (`SignalsWebSocket`) stays the
portable path for other servers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import orjson
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from herald.core.errors import AuthenticationError
from herald.core.model import GUEST_USER, Principal
from herald.core.tasks import spawn
from herald.signals.hub import GOING_AWAY, GUEST_REFS, POLICY_VIOLATION, Delivery, SignalHub, Sink
from herald.signals.websocket import AuthenticateToken, identity

_log = logging.getLogger("herald.signals")

PING_FRAME = b"\x89\x00"  # a ping with an empty payload: the same bytes for every connection


@dataclass(slots=True)
class Binding:
    """What a protocol class serves, shared by all its connections. Filled when `Signals` is built
    (which may be after uvicorn was configured: the application builds it in its lifespan)."""

    hub: SignalHub | None = None
    authenticate_token: AuthenticateToken | None = None
    path: str = "/api/signals"
    max_size: int = 64 * 1024
    auth_timeout: float = 10.0


def _first_offered(_protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return offered[0] if offered else None


class SignalsWsProtocol(Sink, asyncio.Protocol):
    """One `/api/signals` WebSocket, from the upgrade request on. Bound to a hub by
    `make_ws_protocol`; uvicorn instantiates it with (config, server_state, app_state)."""

    binding: ClassVar[Binding]

    __slots__ = ("_frags", "_pending", "_server_state", "_task", "_ws", "alive", "attached", "transport",
                 "writable")

    def __init__(self, config: Any = None, server_state: Any = None, app_state: Any = None) -> None:
        Sink.__init__(self, self.binding.hub or SignalHub(), GUEST_USER, GUEST_REFS)
        self._server_state = server_state
        self._ws: Protocol = ServerProtocol(select_subprotocol=_first_offered, max_size=self.binding.max_size)
        self._task: asyncio.Task[None] | None = None
        self._pending: deque[bytes] | None = None
        self._frags: bytearray | None = None
        self.transport: asyncio.Transport | None = None
        self.writable = True
        self.alive = True
        self.attached = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the asyncio.Transport interface without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        if self._server_state is not None:
            self._server_state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pending = None
        if self.attached:
            self.hub.remove(self)
        if self._server_state is not None:
            self._server_state.connections.discard(self)
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        pending, self._pending = self._pending, None
        if pending and not self.closed and self.transport is not None:
            self.transport.write(b"".join(pending))

    def data_received(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        if isinstance(ws, ServerProtocol):  # the opening handshake
            for event in ws.events_received():
                if isinstance(event, Request) and self._task is None:
                    self._begin(event)
            if ws.parser_exc is not None:
                self._reply(ws, 400)
            return
        for frame in ws.events_received():
            if not isinstance(frame, Frame):
                continue
            op = frame.opcode
            if op is Opcode.TEXT:
                if frame.fin:
                    self._on_text(frame.data)
                else:
                    self._frags = bytearray(frame.data)
            elif op is Opcode.CONT:
                if self._frags is not None:
                    self._frags += frame.data
                    if frame.fin:
                        text, self._frags = bytes(self._frags), None
                        self._on_text(text)
            elif op is Opcode.BINARY:
                self._frags = None  # ignored, and so are its continuations
            elif op is Opcode.PONG or op is Opcode.PING:
                self.alive = True  # websockets answered the ping already
        self._flush(ws)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    # -- handshake ---------------------------------------------------------------------------

    def _begin(self, request: Request) -> None:
        if request.path.partition("?")[0] != self.binding.path:
            self._reply(self._ws, 404)
            return
        if self.binding.hub is None or self.binding.authenticate_token is None:
            self._reply(self._ws, 503)  # not started yet
            return
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol")
                   for p in h.split(",") if p.strip()]
        if not offered:
            self._open(request, None)
            return
        self._task = spawn(self._authenticate(request, offered[0]), name="herald.signals.ws-auth")

    async def _authenticate(self, request: Request, token: str) -> None:
        try:
            b = self.binding
            assert b.authenticate_token is not None
            principal = await asyncio.wait_for(b.authenticate_token(token), b.auth_timeout)
        except AuthenticationError:
            self._reply(self._ws, 401)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("signals: authenticating a WebSocket failed")
            self._reply(self._ws, 500)
            return
        finally:
            self._task = None
        if not self.closed:
            self._open(request, principal)

    def _reply(self, ws: Protocol, status: int) -> None:
        """Refuse the upgrade with a plain HTTP response and an empty body."""
        if self.transport is None or self.closed:
            return
        assert isinstance(ws, ServerProtocol)
        ws.send_response(ws.reject(status, ""))
        self.transport.write(b"".join(ws.data_to_send()))
        self.closed = True
        self.transport.close()

    def _open(self, request: Request, principal: Principal | None) -> None:
        handshake = self._ws
        assert isinstance(handshake, ServerProtocol) and self.transport is not None
        response = handshake.accept(request)
        if response.status_code != 101:  # malformed upgrade request
            handshake.send_response(response)
            self.transport.write(b"".join(handshake.data_to_send()))
            self.closed = True
            self.transport.close()
            return
        handshake.send_response(response)
        self.transport.write(b"".join(handshake.data_to_send()))
        leftover = bytes(handshake.reader.buffer)  # frames sent before our answer (not by browsers)
        # The handshake state (request and response headers) is dropped here.
        self._ws = Protocol(Side.SERVER, state=State.OPEN, max_size=self.binding.max_size)
        self.user, self.refs = identity(principal)
        if not self.hub.attach(self):
            self._ws.send_close(POLICY_VIOLATION, "too many connections")
            self._flush(self._ws)
            self.closed = True
            self.transport.close()
            return
        self.attached = True
        if leftover:
            self.data_received(leftover)

    # -- frames ------------------------------------------------------------------------------

    def _on_text(self, data: bytes | bytearray | memoryview) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(msg, dict):
            return
        action, channel = msg.get("action"), msg.get("channel")
        if not isinstance(channel, str):
            return
        if action == "subscribe":
            if not self.hub.subscribe(self, channel):
                self.hub.send_to(self, {"type": "error", "action": "subscribe", "channel": channel,
                                        "error": "too_many_subscriptions"})
        elif action == "unsubscribe":
            self.hub.unsubscribe(self, channel)

    def _flush(self, ws: Protocol) -> None:
        """Write what the frame layer produced (pongs, close replies); b"" means close the TCP
        connection (the server's side of the closing handshake)."""
        transport = self.transport
        if transport is None:
            return
        for chunk in ws.data_to_send():
            if chunk:
                transport.write(chunk)
            else:
                self.closed = True
                transport.close()

    # -- Sink --------------------------------------------------------------------------------

    def offer(self, d: Delivery) -> bool:
        if self.closed:
            return True
        pending = self._pending
        if pending is None:
            if self.writable:
                assert self.transport is not None
                self.transport.write(d.enc.wire)
                return True
            pending = self._pending = deque()
        if len(pending) >= self.hub.send_buffer_frames:
            return False
        pending.append(d.enc.wire)
        return True

    def keepalive(self) -> bool:
        if not self.alive:
            return False
        self.alive = False
        if self.writable and self._pending is None and not self.closed and self.transport is not None:
            self.transport.write(PING_FRAME)
        return True

    def abort(self) -> None:
        self.closed = True
        self._pending = None
        if self.transport is not None:
            self.transport.abort()

    async def close(self, code: int = GOING_AWAY, reason: str = "") -> None:
        self.shutdown(code)

    def shutdown(self, code: int = GOING_AWAY) -> None:
        """uvicorn calls this on every connection when the server stops."""
        if self.closed or self.transport is None:
            if self.transport is not None:
                self.transport.close()
            return
        self.closed = True
        ws = self._ws
        if not isinstance(ws, ServerProtocol) and ws.state is State.OPEN:
            ws.send_close(code)
            for chunk in ws.data_to_send():
                if chunk:
                    self.transport.write(chunk)
        self.transport.close()


def make_ws_protocol(hub: SignalHub | None = None, authenticate_token: AuthenticateToken | None = None, *,
                     path: str = "/api/signals", max_size: int = 64 * 1024) -> type[SignalsWsProtocol]:
    """A `SignalsWsProtocol` class of its own, to pass as uvicorn's `ws`. Without a hub it answers
    503 until `Signals(..., ws_protocol_class=it)` binds it."""
    binding = Binding(hub, authenticate_token, path, max_size)
    return type("BoundSignalsWsProtocol", (SignalsWsProtocol,), {"__slots__": (), "binding": binding})


def bind_ws_protocol(cls: type[SignalsWsProtocol], hub: SignalHub, authenticate_token: AuthenticateToken
                     ) -> None:
    cls.binding.hub = hub
    cls.binding.authenticate_token = authenticate_token
