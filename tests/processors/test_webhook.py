"""The Webhook processor against a local recording HTTP server: signatures, payloads, retries on
5xx/429 (honouring Retry-After), no retry on 4xx, refusing private addresses."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from tests.processors.conftest import SERVICE_HEADERS, herald_config, org_yaml, running_app

from herald.processors import Outcome, ProcessorConfigError, verify_signature
from herald.processors._webhook import WebhookProcessor, WebhookSettings, _pin_public, sign
from herald.processors.testing import (
    FakeClock,
    HttpRecorder,
    broadcast_request,
    entity_request,
    make_context,
    make_delivery,
    make_notification,
)

SECRET = "whsec-0123456789-SECRET"


def endpoint(url: str, name: str = "ops", **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "secret": SECRET, **extra}


def webhook(*endpoints: dict[str, Any], clock: FakeClock | None = None, **raw: Any) -> WebhookProcessor:
    settings = WebhookProcessor.parse_settings({"endpoints": list(endpoints), "allowPrivateNetworks": True, **raw})
    assert isinstance(settings, WebhookSettings)
    return WebhookProcessor(settings, make_context(clock=clock or FakeClock(1_700_000_000_000)))


async def test_signed_json_document() -> None:
    async with HttpRecorder() as server:
        p = webhook(endpoint(server.url + "/hook?x=1", headers={"X-Team": "ops"}))
        n = make_notification(title="Deploy", description="done", link="/catalog", severity="high", topic="deploy",
                              scope="build-1")
        result = await p.deliver(make_delivery(n, target="ops", metadata={"build": 42}, attempt=2))
        await p.aclose()
    assert result.outcome == Outcome.OK and result.receipt == {"status": 200}
    [req] = server.requests
    assert (req.method, req.path) == ("POST", "/hook?x=1")
    h = req.headers
    assert h["content-type"] == "application/json" and h["x-team"] == "ops"
    assert h["x-herald-delivery"] == h["idempotency-key"] == "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
    assert h["x-herald-timestamp"] == "1700000000"
    assert h["x-herald-signature"] == sign(SECRET, 1_700_000_000, req.body)
    assert verify_signature(SECRET, req.body, h["x-herald-timestamp"], h["x-herald-signature"],
                            now_s=1_700_000_100)
    assert not verify_signature("another-secret-value", req.body, h["x-herald-timestamp"],
                                h["x-herald-signature"], now_s=1_700_000_100)
    assert not verify_signature(SECRET, req.body + b" ", h["x-herald-timestamp"], h["x-herald-signature"],
                                now_s=1_700_000_100)
    assert not verify_signature(SECRET, req.body, h["x-herald-timestamp"], h["x-herald-signature"],
                                now_s=1_700_001_000)  # replayed too late
    assert req.json() == {
        "type": "notification", "deliveryId": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", "attempt": 2,
        "resend": False, "broadcast": False,
        "notification": {"id": n.id, "user": "user:default/mock", "created": "2023-11-14T22:13:20.000Z",
                         "updated": None, "origin": "external:test",
                         "payload": {"title": "Deploy", "description": "done", "link": "/catalog",
                                     "severity": "high", "topic": "deploy", "scope": "build-1", "icon": None,
                                     "metadata": {"build": 42}}},
        "link": "https://example.org/catalog"}


@pytest.mark.parametrize(("status", "headers", "outcome", "retry_after"), [
    (200, {}, Outcome.OK, None), (204, {}, Outcome.OK, None),
    (500, {}, Outcome.RETRYABLE, None), (503, {"Retry-After": "7"}, Outcome.RETRYABLE, 7000),
    (429, {"Retry-After": "2"}, Outcome.RETRYABLE, 2000), (408, {}, Outcome.RETRYABLE, None),
    (400, {}, Outcome.PERMANENT, None), (404, {}, Outcome.PERMANENT, None), (410, {}, Outcome.PERMANENT, None),
    (302, {"Location": "http://169.254.169.254/"}, Outcome.PERMANENT, None),
])
async def test_status_codes(status: int, headers: dict[str, str], outcome: Outcome, retry_after: int | None) -> None:
    async with HttpRecorder() as server:
        server.reply(status, b"", headers)
        p = webhook(endpoint(server.url))
        result = await p.deliver(make_delivery(target="ops"))
        await p.aclose()
    assert (result.outcome, result.retry_after_ms) == (outcome, retry_after)
    assert len(server.requests) == 1  # redirects are not followed


async def test_connection_refused_and_timeout_are_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    p = webhook(endpoint(f"http://127.0.0.1:{closed_port}/"))
    result = await p.deliver(make_delivery(target="ops"))
    assert result.outcome == Outcome.RETRYABLE and "ConnectError" in result.detail

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        p = webhook(endpoint(f"http://127.0.0.1:{port}/", timeout="200ms"))
        result = await p.deliver(make_delivery(target="ops"))
        await p.aclose()
    finally:
        server.close()
    assert result.outcome == Outcome.RETRYABLE and "timed out after 0.2 s" in result.detail


async def test_plan_uses_endpoint_filters() -> None:
    p = webhook(endpoint("http://127.0.0.1:1/", "all"), endpoint("http://127.0.0.1:1/", "urgent",
                                                                   filter={"minSeverity": "high"}))
    from herald.core.ports import NewNotification

    normal = await p.plan(NewNotification("o", 0, "t", None, None, "normal", None, None, None),
                          entity_request("user:default/a"))
    assert normal.per_user == ("all",)
    high = NewNotification("o", 0, "t", None, None, "critical", None, None, None)
    assert (await p.plan(high, entity_request("user:default/a"))).per_user == ("all", "urgent")
    assert (await p.plan(high, broadcast_request())).extra == ("all", "urgent")
    removed = await p.deliver(make_delivery(target="gone"))
    assert removed.outcome == Outcome.PERMANENT and "no webhook endpoint named 'gone'" in removed.detail


def test_settings_are_validated() -> None:
    for raw, message in [
        ({"endpoints": []}, "endpoints"),
        ({"endpoints": [endpoint("ftp://x/")]}, "url must be an absolute http"),
        ({"endpoints": [{**endpoint("https://x.example/"), "secret": "short"}]}, "at least 16"),
        ({"endpoints": [endpoint("https://x.example/"), endpoint("https://y.example/")]}, "must be unique"),
        ({"endpoints": [endpoint("http://127.0.0.1:8080/")]}, "loopback/private address"),
        ({"endpoints": [endpoint("http://[::1]/")]}, "loopback/private address"),
        ({"endpoints": [endpoint("http://10.1.2.3/")]}, "loopback/private address"),
    ]:
        with pytest.raises(ProcessorConfigError, match=message) as e:
            WebhookProcessor.parse_settings(raw)
        assert "SECRET" not in str(e.value)
    ok = WebhookProcessor.parse_settings({"endpoints": [endpoint("http://127.0.0.1/", allowPrivateNetwork=True)]})
    assert ok.redacted()["endpoints"][0]["url"] == "http://127.0.0.1/****"


async def test_names_that_resolve_to_private_addresses_are_refused() -> None:
    async with HttpRecorder() as server:
        settings = WebhookProcessor.parse_settings({"endpoints": [endpoint(f"http://localhost:{server.port}/")]})
        p = WebhookProcessor(settings, make_context())  # type: ignore[arg-type]
        result = await p.deliver(make_delivery(target="ops"))
        await p.aclose()
    assert result.outcome == Outcome.PERMANENT and "loopback/private address" in result.detail
    assert server.requests == []


async def test_public_names_are_pinned_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_getaddrinfo(host: str, port: int, **kw: Any) -> list[Any]:
        assert host == "hooks.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    url, host, sni = await _pin_public("https://hooks.example.com:8443/p?q=1")
    assert (url, host, sni) == ("https://93.184.216.34:8443/p?q=1", "hooks.example.com:8443", "hooks.example.com")

    async def rebinding(host: str, port: int, **kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    from herald.processors._webhook import _Refused

    with pytest.raises(_Refused, match=r"169\.254\.169\.254"):
        await _pin_public("http://hooks.example.com/")


# -- through the ledger: retries on 5xx/429, none on 4xx ------------------------------------------


async def test_retries_and_dead_letters_through_the_worker(db_url: str, tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(2))
    async with HttpRecorder() as flaky, HttpRecorder() as strict:
        flaky.reply(503)
        flaky.reply(429, b"", {"Retry-After": "1"})
        strict.reply(400, b"bad")
        cfg = herald_config(db_url, tmp_path, org, processors={"webhook": {
            "allowPrivateNetworks": True,
            "endpoints": [endpoint(flaky.url + "/flaky", "flaky"), endpoint(strict.url + "/strict", "strict")]}})
        async with running_app(cfg) as app:
            [sent] = await app.to("user:default/u0", title="webhook test")
            await app.settle(timeout_s=30)
            rows = {d["target"]: d for d in await app.deliveries_of(sent["id"])}
            flaky_history = (await app.http.get(f"/api/herald/deliveries/{rows['flaky']['id']}",
                                                headers=SERVICE_HEADERS)).json()
    assert rows["flaky"]["status"] == "delivered" and rows["flaky"]["attempts"] == 3
    assert [a["outcome"] for a in flaky_history["attempts"]] == ["retryable", "retryable", "ok"]
    started = [a["started"] for a in flaky_history["attempts"]]
    from herald.core.clock import parse_date_ms

    gap = (parse_date_ms(started[2]) or 0) - (parse_date_ms(flaky_history["attempts"][1]["finished"]) or 0)
    assert gap >= 950, "Retry-After: 1 must delay the next attempt by a second"
    assert rows["strict"]["status"] == "dead" and rows["strict"]["attempts"] == 1
    assert len(strict.requests) == 1 and len(flaky.requests) == 3
    bodies = [r.json() for r in flaky.requests]
    assert [b["attempt"] for b in bodies] == [1, 2, 3]
    assert len({b["deliveryId"] for b in bodies}) == 1
    for r in flaky.requests:
        assert verify_signature(SECRET, r.body, r.headers["x-herald-timestamp"], r.headers["x-herald-signature"])
    assert json.loads(strict.requests[0].body)["notification"]["user"] == "user:default/u0"
