"""A real uvicorn server on a free loopback port, in the test's event loop, with the signals routes.

Tokens (the WebSocket subprotocol, or `Authorization: Bearer` for SSE):
  tok-john   user:default/john.doe  (ownership: group:default/team-a)
  tok-jane   user:default/jane.doe
  tok-svc    a service principal
  anything else: AuthenticationError
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from tests.conftest import create_pg_database, drop_pg_database
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from herald.config import SignalsConfig
from herald.core.errors import AuthenticationError
from herald.core.model import Principal
from herald.core.ports import Signal
from herald.core.tasks import spawn
from herald.signals import Signals, signals_routes, uvicorn_ws_options
from herald.store import migrate
from herald.store.database import Database, connect

JOHN = "user:default/john.doe"
JANE = "user:default/jane.doe"
TEAM = "group:default/team-a"
CH = "notifications"

PRINCIPALS = {
    "tok-john": Principal("user", JOHN, (JOHN, TEAM)),
    "tok-jane": Principal("user", JANE, (JANE,)),
    "tok-svc": Principal("service", "external:test-service"),
}


async def authenticate_token(token: str) -> Principal:
    await asyncio.sleep(0)
    if token == "tok-crash":
        raise RuntimeError("the token service is down")
    try:
        return PRINCIPALS[token]
    except KeyError:
        raise AuthenticationError("Invalid token") from None


def authenticate_request(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise AuthenticationError("Missing credentials")
    try:
        return PRINCIPALS[header[7:].strip()]
    except KeyError:
        raise AuthenticationError("Invalid token") from None


def new_signal(nid: str, users: tuple[str, ...] | None = None, channel: str = CH) -> Signal:
    return Signal(channel, {"action": "new_notification", "notification_id": nid}, users)


def frame(nid: str, channel: str = CH) -> str:
    return f'{{"channel":"{channel}","message":{{"action":"new_notification","notification_id":"{nid}"}}}}'


async def until(cond: Callable[[], bool], within: float = 5.0) -> None:
    """Poll a condition on server-side state (there is no event to wait on from the outside)."""
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, signals: Signals) -> None:
        super().__init__(config)
        self.signals = signals

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test runner owns the process's signal handlers

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.signals.close_connections()  # SSE streams do not end by themselves
        await super().shutdown(sockets)


@dataclass
class Running:
    signals: Signals
    server: _Server
    task: asyncio.Task[Any]
    port: int
    clients: list[ClientConnection] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/signals"

    async def connect(self, token: str | None = None, **kw: Any) -> ClientConnection:
        protos = [Subprotocol(token)] if token else None
        ws = await websockets.connect(self.ws_url, subprotocols=protos, open_timeout=5, **kw)
        self.clients.append(ws)
        return ws

    async def subscribed(self, token: str | None = None, channel: str = CH) -> ClientConnection:
        before = self.subscriptions(channel)
        ws = await self.connect(token)
        await ws.send(f'{{"action":"subscribe","channel":"{channel}"}}')
        await self.settle(lambda: self.subscriptions(channel) > before)
        return ws

    def subscriptions(self, channel: str = CH) -> int:
        idx = self.signals.hub._channels.get(channel)
        return len(idx.everyone) if idx else 0

    async def publish(self, *signals: Signal) -> None:
        await self.signals.publisher.publish(signals)

    @staticmethod
    async def settle(cond: Callable[[], bool], within: float = 5.0) -> None:
        await until(cond, within)

    async def stop(self, *, close_clients: bool = True) -> None:
        if self.task.done():
            return
        for ws in self.clients if close_clients else ():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


StartServer = Callable[..., Awaitable[Running]]


async def start_server(db: Database | None = None, *, ping: float = 30.0, fast_path: bool = True,
                       heartbeat: float = 15.0, dedicated: bool = True, **config: Any) -> Running:
    cfg = SignalsConfig(ping_interval_seconds=ping, **config)
    signals = Signals(cfg, db, authenticate_token=authenticate_token,
                      authenticate_request=authenticate_request, fast_path=fast_path,
                      heartbeat_seconds=heartbeat)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await signals.start()
        try:
            yield
        finally:
            await signals.stop()

    app = Starlette(routes=signals_routes(signals), lifespan=lifespan)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=5,
                        **uvicorn_ws_options(signals.ws_protocol_class if dedicated else None,
                                             ping_interval_seconds=ping))
    server = _Server(uv, signals)
    task = spawn(server.serve(sockets=[sock]), name="test-uvicorn")
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    return Running(signals, server, task, port)


@pytest.fixture
def ws_mode() -> str:
    """How `/api/signals` is served: "dedicated" (Herald's uvicorn protocol) or "asgi" (the ASGI
    route on uvicorn's websockets-sansio). WebSocket tests run both."""
    return "dedicated"


@pytest.fixture
async def make_server(ws_mode: str) -> AsyncIterator[StartServer]:
    running: list[Running] = []

    async def make(db: Database | None = None, **kw: Any) -> Running:
        kw.setdefault("dedicated", ws_mode == "dedicated")
        r = await start_server(db, **kw)
        running.append(r)
        return r

    yield make
    for r in running:
        await r.stop()


@pytest.fixture
async def srv(make_server: StartServer) -> Running:
    """A server without a database (memory bus and event log)."""
    return await make_server()


async def expect_silence(ws: ClientConnection, seconds: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        got = await asyncio.wait_for(ws.recv(), seconds)
        pytest.fail(f"unexpected frame {got!r}")


class RawClient:
    """A WebSocket client that completes the handshake, may subscribe, and then never reads: it
    answers no ping and lets the server's writes pile up (small receive buffer)."""

    def __init__(self, sock: socket.socket, proto: ClientProtocol) -> None:
        self.sock = sock
        self.proto = proto

    @classmethod
    async def open(cls, ws_url: str, token: str | None = None, rcvbuf: int = 4096) -> RawClient:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        uri = parse_uri(ws_url)
        await loop.sock_connect(sock, (uri.host, uri.port))
        proto = ClientProtocol(uri, subprotocols=[Subprotocol(token)] if token else None)
        proto.send_request(proto.connect())
        await loop.sock_sendall(sock, b"".join(proto.data_to_send()))
        async with asyncio.timeout(5):
            while True:
                data = await loop.sock_recv(sock, 65536)
                assert data, "closed during the handshake"
                proto.receive_data(data)
                if any(isinstance(e, Response) for e in proto.events_received()):
                    break
        return cls(sock, proto)

    async def send_text(self, text: str) -> None:
        self.proto.send_text(text.encode())
        await asyncio.get_running_loop().sock_sendall(self.sock, b"".join(self.proto.data_to_send()))

    def close(self) -> None:
        self.sock.close()


class SseStream:
    """One open `GET /api/signals/stream` read block by block."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self._cm = client.stream("GET", url, headers=headers)
        self.response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None
        self.comments: list[str] = []
        self.bare_ids: list[str] = []

    async def __aenter__(self) -> SseStream:
        self.response = await self._cm.__aenter__()
        self._lines = self.response.aiter_lines()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._cm.__aexit__(None, None, None)

    async def next_event(self, within: float = 5.0) -> dict[str, str]:
        """The next block with `data` (comments and bare `id:` blocks are recorded on the way)."""
        assert self._lines is not None
        block: dict[str, str] = {}
        async with asyncio.timeout(within):
            async for line in self._lines:
                if line == "":
                    if "data" in block:
                        return block
                    if "id" in block:
                        self.bare_ids.append(block["id"])
                    block = {}
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    key, _, value = line.partition(": ")
                    block[key] = value
        raise EOFError("stream ended")

    async def expect_nothing(self, seconds: float = 0.2) -> None:
        """No event for a while (comments and bare ids are recorded)."""
        try:
            got = await self.next_event(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected event {got}")

    async def next_comment(self, within: float = 5.0) -> str:
        n = len(self.comments)
        assert self._lines is not None
        async with asyncio.timeout(within):
            async for line in self._lines:
                if line.startswith(":"):
                    self.comments.append(line)
                if len(self.comments) > n:
                    return self.comments[-1]
        raise EOFError("stream ended")


@contextlib.asynccontextmanager
async def open_database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database: SQLite in tmp_path, or a PostgreSQL database of its own."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'signals.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        db = await connect(url)
        try:
            yield db
        finally:
            await db.close()
        return
    url = await create_pg_database()
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        db = await connect(url)
        try:
            yield db
        finally:
            await db.close()
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A migrated PostgreSQL database of this test's own (skipped locally when unreachable, a
    failure under CI=true)."""
    url = await create_pg_database()
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await drop_pg_database(url)
