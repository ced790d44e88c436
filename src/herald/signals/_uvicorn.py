"""A synchronous write path into uvicorn's WebSocket connections (the fan-out fast path).

Through ASGI, every frame to every socket costs an `await send(...)`: a coroutine, a websockets
`Frame` object, its serialisation and an `encode()` of the text, per recipient. A broadcast to
10,000 sockets is then dominated by that per-recipient work. A server frame is unmasked, so the
bytes on the wire are identical for every recipient: we build them once (`text_frame`) and hand
the same `bytes` to each transport, which is one `transport.write` (one `send(2)`) per socket.

This reaches into uvicorn's `WebSocketsSansIOProtocol` (the default `ws="auto"` implementation
when `websockets` is installed) through the `receive` callable it gives the app, a bound method of
the protocol. Detection is strict (module, class name, the attributes we use); anything else —
another server, another uvicorn implementation, a middleware that wraps `receive` — gets `None`
and the connection uses the plain ASGI `send` path, which is correct, only slower.

Middleware that wraps `send` does not see the data frames written here (it still sees the
handshake and the close); Herald has none on the WebSocket route.
"""

from __future__ import annotations

import struct
from typing import Any

from websockets.protocol import State

OPEN = State.OPEN
_ATTRS = ("transport", "writable", "conn", "close_sent")


def uvicorn_protocol(receive: Any) -> Any | None:
    """The uvicorn sans-I/O WebSocket protocol behind an ASGI `receive`, or None."""
    proto = getattr(receive, "__self__", None)
    if proto is None:
        return None
    cls = type(proto)
    if cls.__name__ != "WebSocketsSansIOProtocol" or not cls.__module__.startswith("uvicorn."):
        return None
    if not all(hasattr(proto, a) for a in _ATTRS):
        return None
    conn = proto.conn
    if not (hasattr(conn, "state") and hasattr(conn, "extensions") and hasattr(conn, "send_text")):
        return None
    return proto


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2) carrying `payload` (UTF-8)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def try_write(proto: Any, wire: bytes, payload: bytes) -> bool:
    """Write one text frame now if the socket can take it without waiting; False otherwise
    (closing, or paused because the client reads slower than we write)."""
    if proto.close_sent or not proto.writable.is_set():
        return False
    transport = proto.transport
    conn = proto.conn
    if transport.is_closing() or conn.state is not OPEN:
        return False
    if conn.extensions:  # permessage-deflate negotiated: the frame differs per connection
        conn.send_text(payload)
        transport.write(b"".join(conn.data_to_send()))
    else:
        transport.write(wire)
    return True


def abort(proto: Any) -> None:
    """Drop the TCP connection at once (no closing handshake: its buffer is what is full)."""
    proto.transport.abort()
