"""The per-process registry of signal connections, and the fan-out of events to them.

A *sink* is one receiver: a WebSocket connection (`WsConnection`) or a Server-Sent-Events stream
(`StreamSubscriber`). Each has identity refs (the user ref and its ownership refs; guests have
`("user:default/guest",)`) and a set of subscribed channels. The hub indexes sinks per channel,
and inside a channel per ref, so

* a broadcast on channel `c` iterates the sinks subscribed to `c` once, and
* an event for user `u` on `c` touches only the sinks of `u` subscribed to `c`.

`dispatch` is synchronous and never waits on a socket: the frame text is encoded once per event
(`Delivery`), and the same bytes go to every recipient. A WebSocket that cannot take a frame right
now (its client reads slower than we write) gets a bounded queue (`send_buffer_frames`) only for
as long as it is behind; when that queue is full the connection is dropped, so a slow client never
delays the others. A healthy connection has no task and no queue.

Two kinds of WebSocket sinks exist: `herald.signals.wsserver.SignalsWsProtocol` (Herald's own
uvicorn protocol, the default: the connection object is the sink) and `WsConnection` (the
portable ASGI endpoint; behind, it drains its queue with a writer task through ASGI `send`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from herald.core.model import GUEST_USER
from herald.core.tasks import spawn
from herald.signals import _uvicorn

_log = logging.getLogger("herald.signals")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

GUEST_REFS: tuple[str, ...] = (GUEST_USER,)
POLICY_VIOLATION = 1008
GOING_AWAY = 1001


@dataclass(frozen=True, slots=True)
class SignalEvent:
    """One logged signal for one recipient: `user_ref` None is a broadcast. `message` is the JSON
    text of the message object, exactly as it goes on the wire."""

    id: int
    user_ref: str | None
    channel: str
    message: str


class _Encoded:
    """The WebSocket encodings of one `{"channel", "message"}` frame, built once."""

    __slots__ = ("_text", "payload", "wire")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.wire = _uvicorn.text_frame(payload)
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode()
        return self._text


def frame_payload(channel: str, message_json: str) -> bytes:
    """`{"channel":…,"message":…}` exactly as `JSON.stringify` writes it (compact, in this order)."""
    return b'{"channel":' + orjson.dumps(channel) + b',"message":' + message_json.encode() + b"}"


class Delivery:
    """One event on its way to its recipients; every encoding is computed at most once."""

    __slots__ = ("_sse", "enc", "event")

    def __init__(self, event: SignalEvent | None, enc: _Encoded) -> None:
        self.event = event
        self.enc = enc
        self._sse: bytes | None = None

    @classmethod
    def of(cls, event: SignalEvent, like: Delivery | None = None) -> Delivery:
        """Reuse `like`'s frame when it carries the same channel and message (a signal sent to
        many users is logged as one event per user, all with the same frame)."""
        if like is not None and like.event is not None and like.event.message == event.message \
                and like.event.channel == event.channel:
            return cls(event, like.enc)
        return cls(event, _Encoded(frame_payload(event.channel, event.message)))

    @classmethod
    def raw(cls, obj: Any) -> Delivery:
        """A frame that is not a logged event (error frames)."""
        return cls(None, _Encoded(orjson.dumps(obj)))

    @property
    def sse(self) -> bytes:
        if self._sse is None:
            assert self.event is not None
            self._sse = sse_event(self.event)
        return self._sse


def sse_event(ev: SignalEvent) -> bytes:
    """The Server-Sent-Events block of one event (`message` is one line: compact JSON)."""
    name = ev.channel.replace("\r", " ").replace("\n", " ")
    return f"id: {ev.id}\nevent: {name}\ndata: {ev.message}\n\n".encode()


class Sink:
    """A receiver of events. Subclasses decide how a delivery is written."""

    __slots__ = ("channels", "closed", "hub", "refs", "user")

    def __init__(self, hub: SignalHub, user: str, refs: tuple[str, ...]) -> None:
        self.hub = hub
        self.user = user
        self.refs = refs
        self.channels: set[str] = set()
        self.closed = False

    def offer(self, d: Delivery) -> bool:
        """Take `d` without waiting. False: this sink cannot keep up and must be dropped."""
        raise NotImplementedError

    def abort(self) -> None:
        """Stop at once (the hub has dropped it)."""
        raise NotImplementedError

    def keepalive(self) -> bool:
        """One keep-alive round (for sinks that do their own pings). False: dead, drop it."""
        return True

    async def close(self, code: int = GOING_AWAY, reason: str = "") -> None:
        """End it cleanly (server shutdown)."""
        self.abort()


class WsConnection(Sink):
    """One `/api/signals` WebSocket."""

    __slots__ = ("_closing", "_limit", "_pending", "_proto", "_send", "_writer", "aborted", "task")

    def __init__(self, hub: SignalHub, user: str, refs: tuple[str, ...], send: Send, proto: Any | None,
                 limit: int) -> None:
        super().__init__(hub, user, refs)
        self._send = send
        self._proto = proto
        self._limit = limit
        self._pending: deque[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.aborted = False
        self._closing = False
        self.task: asyncio.Task[Any] | None = None
        """The task serving this connection (its ASGI call), cancelled to drop it."""

    def offer(self, d: Delivery) -> bool:
        if self.closed:
            return True
        pending = self._pending
        if pending is None:
            proto = self._proto
            enc = d.enc
            if proto is not None and _uvicorn.try_write(proto, enc.wire, enc.payload):
                return True
            self._pending = deque((enc.text,))
            self._writer = spawn(self._drain(), name="herald.signals.ws-writer")
            return True
        if len(pending) >= self._limit:
            return False
        pending.append(d.enc.text)
        return True

    async def _drain(self) -> None:
        pending = self._pending
        try:
            while pending:
                text = pending.popleft()
                await self._send({"type": "websocket.send", "text": text})
        except asyncio.CancelledError:
            raise
        except Exception:  # the client went away; its ASGI call sees the disconnect
            self.closed = True
        finally:
            if self._pending is pending:
                self._pending = None
                self._writer = None

    def abort(self) -> None:
        if self.aborted:
            return
        self.aborted = True
        self.closed = True
        writer, self._writer, self._pending = self._writer, None, None
        if writer is not None:
            writer.cancel()
        if self._proto is not None:
            _uvicorn.abort(self._proto)  # the ASGI call then receives websocket.disconnect
        elif self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def close(self, code: int = GOING_AWAY, reason: str = "") -> None:
        """Close with a closing handshake (server shutdown); abort if that cannot be sent soon."""
        if self.aborted or self._closing:
            return
        self._closing = True
        self.closed = True
        writer, self._writer, self._pending = self._writer, None, None
        if writer is not None:
            writer.cancel()
        try:
            await asyncio.wait_for(
                self._send({"type": "websocket.close", "code": code, "reason": reason}), 2.0)
        except Exception:
            self.abort()


class StreamSubscriber(Sink):
    """One Server-Sent-Events stream: a bounded buffer that the stream's response drains."""

    __slots__ = ("_items", "_limit", "_ready")

    def __init__(self, hub: SignalHub, user: str, refs: tuple[str, ...], limit: int) -> None:
        super().__init__(hub, user, refs)
        self._items: list[Delivery] = []
        self._limit = limit
        self._ready = asyncio.Event()

    def offer(self, d: Delivery) -> bool:
        if self.closed:
            return True
        if len(self._items) >= self._limit:
            return False
        self._items.append(d)
        self._ready.set()
        return True

    def abort(self) -> None:
        self.closed = True
        self._ready.set()

    async def next(self, wait_s: float) -> list[Delivery] | None:
        """What arrived since the last call, in order; [] once closed; None after `wait_s`
        seconds without anything."""
        if not self._items and not self.closed:
            try:
                await asyncio.wait_for(self._ready.wait(), wait_s)
            except TimeoutError:
                return None
        self._ready.clear()
        items, self._items = self._items, []
        return items


class _ChannelIndex:
    __slots__ = ("by_ref", "everyone")

    def __init__(self) -> None:
        self.everyone: set[Sink] = set()
        self.by_ref: dict[str, set[Sink]] = {}


class SignalHub:
    """Connections and streams of this process; see the module docstring."""

    def __init__(self, *, max_connections_per_user: int = 50, max_subscriptions_per_connection: int = 50,
                 send_buffer_frames: int = 1000, fast_path: bool = True) -> None:
        self.max_connections_per_user = max_connections_per_user
        """0 or less: unlimited."""
        self.max_subscriptions = max_subscriptions_per_connection
        self.send_buffer_frames = max(1, send_buffer_frames)
        self.fast_path = fast_path
        """Write frames straight into uvicorn's transports when possible (see `_uvicorn`)."""
        self.last_id = 0
        """The highest event id dispatched here; every event up to it is in the event log."""
        self._channels: dict[str, _ChannelIndex] = {}
        self._sinks: set[Sink] = set()
        self._ws_per_user: dict[str, int] = {}

    # -- registration ------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Open WebSocket connections."""
        return sum(self._ws_per_user.values())

    @property
    def stream_count(self) -> int:
        return sum(1 for s in self._sinks if isinstance(s, StreamSubscriber))

    def connect(self, user: str, refs: tuple[str, ...], send: Send, receive: Any = None
                ) -> WsConnection | None:
        """Register a WebSocket for `user`; None when the user already has the maximum."""
        proto = _uvicorn.uvicorn_protocol(receive) if self.fast_path and receive is not None else None
        conn = WsConnection(self, user, refs, send, proto, self.send_buffer_frames)
        return conn if self.attach(conn) else None

    def attach(self, sink: Sink) -> bool:
        """Register a WebSocket sink built elsewhere; False when its user has the maximum."""
        count = self._ws_per_user.get(sink.user, 0)
        if 0 < self.max_connections_per_user <= count:
            return False
        self._ws_per_user[sink.user] = count + 1
        self._sinks.add(sink)
        return True

    def open_stream(self, user: str, refs: tuple[str, ...], channels: Iterable[str]) -> StreamSubscriber:
        sub = StreamSubscriber(self, user, refs, self.send_buffer_frames)
        self._sinks.add(sub)
        for channel in channels:
            self._index(sub, channel)
        return sub

    def subscribe(self, sink: Sink, channel: str) -> bool:
        """False when the sink already has the maximum number of subscriptions."""
        if channel in sink.channels or sink.closed:
            return True
        if 0 < self.max_subscriptions <= len(sink.channels):
            return False
        self._index(sink, channel)
        return True

    def unsubscribe(self, sink: Sink, channel: str) -> None:
        if channel not in sink.channels:
            return
        sink.channels.discard(channel)
        idx = self._channels.get(channel)
        if idx is None:
            return
        idx.everyone.discard(sink)
        for ref in sink.refs:
            group = idx.by_ref.get(ref)
            if group is not None:
                group.discard(sink)
                if not group:
                    del idx.by_ref[ref]
        if not idx.everyone:
            del self._channels[channel]

    def remove(self, sink: Sink) -> None:
        """Forget a sink (idempotent)."""
        if sink not in self._sinks:
            return
        self._sinks.discard(sink)
        for channel in list(sink.channels):
            self.unsubscribe(sink, channel)
        if not isinstance(sink, StreamSubscriber):
            left = self._ws_per_user.get(sink.user, 0) - 1
            if left > 0:
                self._ws_per_user[sink.user] = left
            else:
                self._ws_per_user.pop(sink.user, None)

    def _index(self, sink: Sink, channel: str) -> None:
        sink.channels.add(channel)
        idx = self._channels.get(channel)
        if idx is None:
            idx = self._channels[channel] = _ChannelIndex()
        idx.everyone.add(sink)
        for ref in sink.refs:
            group = idx.by_ref.get(ref)
            if group is None:
                idx.by_ref[ref] = {sink}
            else:
                group.add(sink)

    # -- fan-out -----------------------------------------------------------------------------

    def dispatch(self, events: Iterable[SignalEvent]) -> None:
        """Hand events (in id order) to every matching sink of this process. Never waits."""
        dropped: list[Sink] = []
        prev: Delivery | None = None
        channels = self._channels
        for ev in events:
            if ev.id > self.last_id:
                self.last_id = ev.id
            idx = channels.get(ev.channel)
            if idx is None:
                continue
            targets = idx.everyone if ev.user_ref is None else idx.by_ref.get(ev.user_ref)
            if not targets:
                continue
            d = prev = Delivery.of(ev, prev)
            for sink in targets:
                if not sink.offer(d):
                    dropped.append(sink)
        for sink in dropped:
            self.drop(sink)

    def send_to(self, sink: Sink, obj: Any) -> None:
        """Send one frame that is not an event (an error frame) to one connection."""
        if not sink.offer(Delivery.raw(obj)):
            self.drop(sink)

    def drop(self, sink: Sink) -> None:
        if sink not in self._sinks:
            return
        _log.warning("signals: dropping a %s of %s that does not keep up (%d frames queued)",
                     "stream" if isinstance(sink, StreamSubscriber) else "connection", sink.user,
                     self.send_buffer_frames)
        self.remove(sink)
        sink.abort()

    def ping_round(self) -> int:
        """One keep-alive round over the sinks that do their own pings; drops the dead ones."""
        dead = [sink for sink in self._sinks if not sink.keepalive()]
        for sink in dead:
            _log.info("signals: dropping a connection of %s that did not answer the last ping", sink.user)
            self.remove(sink)
            sink.abort()
        return len(dead)

    async def close_all(self) -> None:
        """Close every WebSocket (1001) and end every stream: server shutdown."""
        sinks = list(self._sinks)
        for sink in sinks:
            self.remove(sink)
        if sinks:
            await asyncio.gather(*(sink.close() for sink in sinks), return_exceptions=True)
