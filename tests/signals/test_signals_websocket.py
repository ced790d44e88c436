"""`/api/signals` over real sockets (spec §4.3, checklist §7.6)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
import pytest
import websockets
from tests.signals.conftest import (
    CH,
    JANE,
    JOHN,
    TEAM,
    RawClient,
    Running,
    StartServer,
    expect_silence,
    frame,
    new_signal,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from herald.core.ports import Signal


@pytest.fixture(params=["dedicated", "asgi"])
def ws_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_token_subprotocol_is_echoed(srv: Running) -> None:
    ws = await srv.connect("tok-john")
    assert ws.subprotocol == "tok-john"
    assert ws.response is not None
    assert ws.response.status_code == 101
    assert ws.response.headers["Sec-WebSocket-Protocol"] == "tok-john"


async def test_invalid_token_is_a_plain_401_before_the_upgrade(srv: Running) -> None:
    with pytest.raises(InvalidStatus) as err:
        await srv.connect("not-a-token")
    assert err.value.response.status_code == 401
    assert err.value.response.body == b""
    assert err.value.response.headers["Content-Length"] == "0"
    assert srv.signals.hub.connection_count == 0


async def test_broadcast_frame_is_exactly_the_json_text_then_unsubscribe_stops_it(srv: Running) -> None:
    """§7.6 #102."""
    ws = await srv.subscribed(None, "test")
    witness = await srv.subscribed("tok-jane", "test")
    await srv.publish(Signal("test", {"msg": "test"}))
    assert await asyncio.wait_for(ws.recv(), 5) == '{"channel":"test","message":{"msg":"test"}}'
    assert await asyncio.wait_for(witness.recv(), 5) == '{"channel":"test","message":{"msg":"test"}}'
    await ws.send('{"action":"unsubscribe","channel":"test"}')
    await srv.settle(lambda: srv.subscriptions("test") == 1)
    await srv.publish(Signal("test", {"msg": "second"}))
    assert await asyncio.wait_for(witness.recv(), 5) == '{"channel":"test","message":{"msg":"second"}}'
    await expect_silence(ws)


async def test_exact_notification_frame(srv: Running) -> None:
    ws = await srv.subscribed("tok-john")
    await srv.publish(new_signal("3f1c0e2a-7b7d-4c59-9a43-0d3c5d1e8f00", (JOHN,)))
    assert await asyncio.wait_for(ws.recv(), 5) == (
        '{"channel":"notifications","message":{"action":"new_notification",'
        '"notification_id":"3f1c0e2a-7b7d-4c59-9a43-0d3c5d1e8f00"}}')


async def test_user_signal_goes_only_to_that_users_subscribed_connections(srv: Running) -> None:
    """§7.6 #103: a guest and two John connections (one subscribed): only that one receives."""
    guest = await srv.subscribed(None)
    john_sub = await srv.subscribed("tok-john")
    john_idle = await srv.connect("tok-john")
    jane = await srv.subscribed("tok-jane")
    await srv.publish(new_signal("for-john", (JOHN,)), new_signal("for-jane", (JANE,)))
    assert await asyncio.wait_for(john_sub.recv(), 5) == frame("for-john")
    assert await asyncio.wait_for(jane.recv(), 5) == frame("for-jane")
    await srv.publish(new_signal("sentinel"))
    assert await asyncio.wait_for(guest.recv(), 5) == frame("sentinel")
    assert await asyncio.wait_for(john_sub.recv(), 5) == frame("sentinel")
    assert await asyncio.wait_for(jane.recv(), 5) == frame("sentinel")
    await expect_silence(john_idle)
    for ws in (guest, john_sub, jane):
        await expect_silence(ws, 0.05)


async def test_every_connection_of_a_user_receives_and_ownership_refs_route(srv: Running) -> None:
    a = await srv.subscribed("tok-john")
    b = await srv.subscribed("tok-john")
    await srv.publish(new_signal("team", (TEAM,)))  # John owns group:default/team-a
    assert await asyncio.wait_for(a.recv(), 5) == frame("team")
    assert await asyncio.wait_for(b.recv(), 5) == frame("team")


async def test_guest_receives_broadcasts_only(srv: Running) -> None:
    guest = await srv.subscribed(None)
    assert guest.subprotocol is None
    await srv.publish(new_signal("not-for-guests", (JOHN,)))
    await srv.publish(new_signal("for-everyone"))
    assert await asyncio.wait_for(guest.recv(), 5) == frame("for-everyone")
    await expect_silence(guest)


async def test_a_service_token_is_a_guest(srv: Running) -> None:
    ws = await srv.subscribed("tok-svc")
    assert ws.subprotocol == "tok-svc"
    await srv.publish(new_signal("x", ("external:test-service",)), new_signal("b"))
    assert await asyncio.wait_for(ws.recv(), 5) == frame("b")
    await expect_silence(ws)


async def test_nothing_without_subscribe(srv: Running) -> None:
    ws = await srv.connect("tok-john")
    witness = await srv.subscribed("tok-john")
    await srv.publish(new_signal("n1", (JOHN,)), new_signal("n2"))
    assert await asyncio.wait_for(witness.recv(), 5) == frame("n1")
    assert await asyncio.wait_for(witness.recv(), 5) == frame("n2")
    await expect_silence(ws)


async def test_other_channels_are_not_delivered(srv: Running) -> None:
    ws = await srv.subscribed("tok-john", "alpha")
    await srv.publish(new_signal("beta", channel="beta"), new_signal("alpha", channel="alpha"))
    assert await asyncio.wait_for(ws.recv(), 5) == frame("alpha", "alpha")
    await expect_silence(ws)


async def test_binary_malformed_and_unknown_frames_are_ignored(srv: Running) -> None:
    ws = await srv.connect("tok-john")
    await ws.send(b'{"action":"subscribe","channel":"notifications"}')
    for text in ("not json", "[1,2]", '{"action":"dance","channel":"notifications"}',
                 '{"action":"subscribe","channel":42}', '{"action":"subscribe"}', '"x"'):
        await ws.send(text)
    await ws.send('{"action":"subscribe","channel":"notifications"}')
    await srv.settle(lambda: srv.subscriptions() == 1)
    await srv.publish(new_signal("ok"))
    assert await asyncio.wait_for(ws.recv(), 5) == frame("ok")
    await expect_silence(ws)


async def test_too_many_subscriptions_error_frame(make_server: StartServer) -> None:
    srv = await make_server(max_subscriptions_per_connection=2)
    ws = await srv.connect("tok-john")
    for channel in ("a", "b", "a", "c"):
        await ws.send(orjson.dumps({"action": "subscribe", "channel": channel}).decode())
    assert await asyncio.wait_for(ws.recv(), 5) == (
        '{"type":"error","action":"subscribe","channel":"c","error":"too_many_subscriptions"}')
    await srv.publish(new_signal("c", channel="c"), new_signal("b", channel="b"))
    assert await asyncio.wait_for(ws.recv(), 5) == frame("b", "b")
    # after an unsubscribe there is room again
    await ws.send('{"action":"unsubscribe","channel":"a"}')
    await ws.send('{"action":"subscribe","channel":"c"}')
    await srv.settle(lambda: srv.subscriptions("c") == 1)


async def test_connections_over_the_per_user_limit_are_closed_with_1008(make_server: StartServer) -> None:
    srv = await make_server(max_connections_per_user=2)
    await srv.connect("tok-john")
    await srv.connect("tok-john")
    extra = await srv.connect("tok-john")
    assert extra.subprotocol == "tok-john"
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(extra.recv(), 5)
    assert extra.close_code == 1008
    assert srv.signals.hub.connection_count == 2
    other = await srv.connect("tok-jane")  # other users are not affected
    await other.send('{"action":"subscribe","channel":"notifications"}')
    await srv.settle(lambda: srv.subscriptions() == 1)


async def test_closed_connections_are_forgotten(srv: Running) -> None:
    ws = await srv.subscribed("tok-john")
    assert srv.signals.hub.connection_count == 1
    await ws.close()
    await srv.settle(lambda: srv.signals.hub.connection_count == 0 and srv.subscriptions() == 0)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "asgi-send"])
async def test_a_client_that_never_reads_does_not_delay_the_others(make_server: StartServer, ws_mode: str,
                                                                     fast_path: bool) -> None:
    if ws_mode == "dedicated" and not fast_path:
        pytest.skip("the ASGI send path only exists in asgi mode")
    srv = await make_server(fast_path=fast_path, send_buffer_frames=50)
    slow = await RawClient.open(srv.ws_url, "tok-jane")
    await slow.send_text('{"action":"subscribe","channel":"notifications"}')
    fast = await srv.subscribed("tok-john")
    await srv.settle(lambda: srv.subscriptions() == 2)
    pad = "x" * 16_000
    received: list[str] = []

    async def read() -> None:
        while len(received) < 1000:
            received.append(str(await fast.recv()))

    reader = asyncio.get_running_loop().create_task(read())
    t0 = time.monotonic()
    for i in range(1000):
        await srv.publish(Signal(CH, {"n": i, "pad": pad}))
    await asyncio.wait_for(reader, 20)
    elapsed = time.monotonic() - t0
    assert [orjson.loads(r)["message"]["n"] for r in received] == list(range(1000))
    # the slow client was dropped once its queue filled; the fast one was never held up
    await srv.settle(lambda: srv.signals.hub.connection_count == 1)
    assert elapsed < 15
    slow.close()


async def test_a_thousand_frames_to_one_client_while_another_never_reads(srv: Running) -> None:
    slow = await RawClient.open(srv.ws_url, "tok-jane")
    await slow.send_text('{"action":"subscribe","channel":"notifications"}')
    fast = await srv.subscribed("tok-john")
    await srv.settle(lambda: srv.subscriptions() == 2)
    await srv.publish(*(new_signal(f"n{i}", (JOHN,)) for i in range(1000)))
    got = [await asyncio.wait_for(fast.recv(), 5) for _ in range(1000)]
    assert got == [frame(f"n{i}") for i in range(1000)]
    slow.close()


async def test_a_connection_that_does_not_answer_pings_is_dropped(make_server: StartServer) -> None:
    srv = await make_server(ping=0.5)
    dead = await RawClient.open(srv.ws_url, "tok-jane")
    await dead.send_text('{"action":"subscribe","channel":"notifications"}')
    alive = await srv.subscribed("tok-john")  # the websockets client answers pings
    await srv.settle(lambda: srv.subscriptions() == 2)
    await srv.settle(lambda: srv.signals.hub.connection_count == 1, within=5)
    await asyncio.sleep(1.2)  # several ping rounds later the live one is still there
    assert srv.signals.hub.connection_count == 1
    await srv.publish(new_signal("still-here"))
    assert await asyncio.wait_for(alive.recv(), 5) == frame("still-here")
    dead.close()


async def test_server_shutdown_closes_every_socket(make_server: StartServer) -> None:
    """§7.6 #104."""
    srv = await make_server()
    sockets = [await srv.subscribed("tok-john"), await srv.connect(None), await srv.subscribed("tok-jane")]
    await srv.stop(close_clients=False)
    for ws in sockets:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code in (1001, 1012)


async def test_permessage_deflate_clients_still_work(make_server: StartServer, ws_mode: str) -> None:
    """asgi mode on a server configured with compression: the fast path compresses per connection.
    The dedicated protocol never negotiates compression."""
    srv = await make_server()
    srv.server.config.ws_per_message_deflate = True
    ws = await websockets.connect(srv.ws_url, subprotocols=None, compression="deflate")
    srv.clients.append(ws)
    assert bool(ws.protocol.extensions) == (ws_mode == "asgi")
    await ws.send('{"action":"subscribe","channel":"notifications"}')
    await srv.settle(lambda: srv.subscriptions() == 1)
    await srv.publish(new_signal("z" * 300))
    assert await asyncio.wait_for(ws.recv(), 5) == frame("z" * 300)


async def test_under_uvicorn_frames_take_the_direct_write_path(make_server: StartServer, ws_mode: str
                                                                ) -> None:
    if ws_mode == "dedicated":
        pytest.skip("asgi mode only")
    fast = await make_server()
    await fast.subscribed("tok-john")
    plain = await make_server(fast_path=False)
    await plain.subscribed("tok-john")
    (conn,) = fast.signals.hub._sinks
    (other,) = plain.signals.hub._sinks
    assert getattr(conn, "_proto", None) is not None
    assert getattr(other, "_proto", None) is None


async def test_an_authentication_failure_is_a_plain_500(srv: Running) -> None:
    with pytest.raises(InvalidStatus) as err:
        await srv.connect("tok-crash")
    assert err.value.response.status_code == 500
    assert err.value.response.body == b""


async def test_upgrades_to_other_paths_are_refused(srv: Running, ws_mode: str) -> None:
    with pytest.raises(InvalidStatus) as err:
        await websockets.connect(f"ws://127.0.0.1:{srv.port}/api/other", open_timeout=5)
    assert err.value.response.status_code == (404 if ws_mode == "dedicated" else 403)


async def test_a_fragmented_subscribe_frame_and_client_pings(srv: Running) -> None:
    ws = await srv.connect("tok-john")
    await ws.send(iter(['{"action":"subscr', 'ibe","channel":"notifications"}']))
    await srv.settle(lambda: srv.subscriptions() == 1)
    pong = await ws.ping(b"hi")
    assert await asyncio.wait_for(pong, 5) >= 0
    await srv.publish(new_signal("frag"))
    assert await asyncio.wait_for(ws.recv(), 5) == frame("frag")


async def test_a_protocol_class_made_before_start_up_is_bound_by_signals() -> None:
    """The application builds `Signals` in its lifespan, after uvicorn was configured."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from tests.signals.conftest import authenticate_request, authenticate_token

    from herald.config import SignalsConfig
    from herald.core.tasks import spawn
    from herald.signals import Signals, make_ws_protocol, uvicorn_ws_options

    ws_protocol = make_ws_protocol()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(), lifespan="off", log_level="warning",
                                           **uvicorn_ws_options(ws_protocol)))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = spawn(server.serve(sockets=[sock]))
    try:
        await Running.settle(lambda: server.started)
        url = f"ws://127.0.0.1:{port}/api/signals"
        with pytest.raises(InvalidStatus) as err:
            await websockets.connect(url)
        assert err.value.response.status_code == 503
        signals = Signals(SignalsConfig(), None, authenticate_token=authenticate_token,
                          authenticate_request=authenticate_request, ws_protocol_class=ws_protocol)
        await signals.start()
        async with websockets.connect(url, subprotocols=[Subprotocol("tok-john")]) as ws:
            await ws.send('{"action":"subscribe","channel":"notifications"}')
            await Running.settle(lambda: bool(signals.hub._channels))
            await signals.publisher.publish([new_signal("bound", (JOHN,))])
            assert await asyncio.wait_for(ws.recv(), 5) == frame("bound")
        await signals.stop()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
