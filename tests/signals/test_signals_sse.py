"""`GET /api/signals/stream`: Server-Sent Events with Last-Event-ID resume, on every event log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.signals.conftest import (
    JANE,
    JOHN,
    TEAM,
    Running,
    SseStream,
    StartServer,
    new_signal,
    open_database,
)

JOHN_AUTH = {"Authorization": "Bearer tok-john"}


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def server(request: pytest.FixtureRequest, make_server: StartServer, tmp_path: Path
                 ) -> AsyncIterator[Running]:
    if request.param == "memory":
        yield await make_server()
        return
    async with open_database(request.param, tmp_path) as db:
        srv = await make_server(db)
        yield srv
        await srv.stop()


@pytest.fixture
async def http(server: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        yield client


def stream(http: httpx.AsyncClient, query: str = "channel=notifications", **headers: str) -> SseStream:
    return SseStream(http, f"/api/signals/stream?{query}", {**JOHN_AUTH, **headers})


async def test_unauthenticated_is_401_in_backstage_shape(http: httpx.AsyncClient) -> None:
    resp = await http.get("/api/signals/stream?channel=notifications")
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == {
        "error": {"name": "AuthenticationError", "message": "Missing credentials"},
        "request": {"method": "GET", "url": "/api/signals/stream?channel=notifications"},
        "response": {"statusCode": 401},
    }
    resp = await http.get("/api/signals/stream?channel=notifications",
                          headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "Invalid token"


async def test_a_channel_is_required(http: httpx.AsyncClient) -> None:
    resp = await http.get("/api/signals/stream", headers=JOHN_AUTH)
    assert resp.status_code == 400
    assert resp.json()["error"]["name"] == "InputError"


async def test_live_events_with_ids_channel_and_json(server: Running, http: httpx.AsyncClient) -> None:
    async with stream(http, "channel=notifications&channel=other") as s:
        assert s.response is not None
        assert s.response.headers["content-type"].startswith("text/event-stream")
        await server.settle(lambda: server.signals.hub.stream_count == 1)
        await server.publish(new_signal("mine", (JOHN,)), new_signal("theirs", (JANE,)),
                             new_signal("team", (TEAM,)), new_signal("all"),
                             new_signal("elsewhere", channel="nobody-listens"),
                             new_signal("other", channel="other"))
        got = [await s.next_event() for _ in range(4)]
        assert [e["event"] for e in got] == ["notifications", "notifications", "notifications", "other"]
        assert [orjson.loads(e["data"])["notification_id"] for e in got] == ["mine", "team", "all", "other"]
        assert got[0]["data"] == '{"action":"new_notification","notification_id":"mine"}'
        ids = [int(e["id"]) for e in got]
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert s.bare_ids  # a fresh stream starts with its resume point


async def test_heartbeat_comments(make_server: StartServer) -> None:
    srv = await make_server(heartbeat=0.1)
    async with httpx.AsyncClient(base_url=srv.base) as http, stream(http) as s:
        assert (await s.next_comment(2)).startswith(":")
        assert (await s.next_comment(2)).startswith(":")


async def test_resume_replays_exactly_what_was_missed_then_continues_live(
        server: Running, http: httpx.AsyncClient) -> None:
    async with stream(http) as s:
        await server.settle(lambda: server.signals.hub.stream_count == 1)
        await server.publish(new_signal("seen", (JOHN,)))
        seen = await s.next_event()
    await server.settle(lambda: server.signals.hub.stream_count == 0)
    await server.publish(new_signal("m1", (JOHN,)), new_signal("not-mine", (JANE,)))
    await server.publish(new_signal("m2"))
    await server.publish(new_signal("m3", (TEAM,)), new_signal("wrong-channel", (JOHN,), channel="x"))
    async with stream(http, **{"Last-Event-ID": seen["id"]}) as s:
        replayed = [await s.next_event() for _ in range(3)]
        assert [orjson.loads(e["data"])["notification_id"] for e in replayed] == ["m1", "m2", "m3"]
        await server.publish(new_signal("live1", (JOHN,)))
        await server.publish(new_signal("live2"))
        live = [await s.next_event() for _ in range(2)]
        assert [orjson.loads(e["data"])["notification_id"] for e in live] == ["live1", "live2"]
        ids = [int(e["id"]) for e in replayed + live]
        assert ids == sorted(ids) and len(set(ids)) == 5 and ids[0] > int(seen["id"])


async def test_resume_point_of_a_stream_that_got_no_event(server: Running, http: httpx.AsyncClient) -> None:
    await server.publish(new_signal("before"))
    async with stream(http) as s:
        await server.settle(lambda: server.signals.hub.stream_count == 1)
        await server.publish(new_signal("to-other-channel", channel="other"))
        await s.expect_nothing()
    assert len(s.bare_ids) == 1
    await server.publish(new_signal("missed", (JOHN,)))
    async with stream(http, **{"Last-Event-ID": s.bare_ids[0]}) as s2:
        assert orjson.loads((await s2.next_event())["data"])["notification_id"] == "missed"


async def test_resume_with_the_query_parameter_and_while_events_keep_coming(
        server: Running, http: httpx.AsyncClient) -> None:
    """Events published during the replay are neither lost nor duplicated."""
    first = [f"a{i}" for i in range(30)]
    await server.publish(*(new_signal(n, (JOHN,)) for n in first))
    events = await server.signals.log.replay([JOHN], ["notifications"], 0, 1000)
    start = events[0].id - 1

    async def keep_publishing() -> None:
        for i in range(30):
            await server.publish(new_signal(f"b{i}", (JOHN,)))

    async with stream(http, f"channel=notifications&lastEventId={start}") as s:
        publisher = asyncio.get_running_loop().create_task(keep_publishing())
        got = [await s.next_event() for _ in range(60)]
        await publisher
    names = [orjson.loads(e["data"])["notification_id"] for e in got]
    assert names == first + [f"b{i}" for i in range(30)]


async def test_a_service_principal_gets_broadcasts_only(server: Running, http: httpx.AsyncClient) -> None:
    async with stream(http, Authorization="Bearer tok-svc") as s:
        await server.settle(lambda: server.signals.hub.stream_count == 1)
        await server.publish(new_signal("u", ("external:test-service",)), new_signal("b"))
        assert orjson.loads((await s.next_event())["data"])["notification_id"] == "b"


async def test_a_stream_that_falls_behind_is_ended_and_resumes_from_the_log(
        make_server: StartServer) -> None:
    srv = await make_server(send_buffer_frames=5)
    async with httpx.AsyncClient(base_url=srv.base) as http:
        async with stream(http) as s:
            await srv.settle(lambda: srv.signals.hub.stream_count == 1)
            await srv.publish(new_signal("first", (JOHN,)))
            first = await s.next_event()
            # twenty events in one dispatch: more than the stream may buffer
            await srv.publish(*(new_signal(f"n{i}", (JOHN,)) for i in range(20)))
            with pytest.raises(EOFError):
                while True:
                    await s.next_event()
        async with stream(http, **{"Last-Event-ID": first["id"]}) as s:
            got = [orjson.loads((await s.next_event())["data"])["notification_id"] for _ in range(20)]
        assert got == [f"n{i}" for i in range(20)]


async def test_shutdown_ends_open_streams(make_server: StartServer) -> None:
    srv = await make_server()
    async with httpx.AsyncClient(base_url=srv.base) as http, stream(http) as s:
        await srv.settle(lambda: srv.signals.hub.stream_count == 1)
        await asyncio.wait_for(srv.stop(), 10)
        with pytest.raises((EOFError, httpx.HTTPError)):
            await s.next_event(5)
