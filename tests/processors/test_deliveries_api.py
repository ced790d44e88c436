"""`/api/herald/deliveries` and `/api/herald/processors`: service principals only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.processors.conftest import SERVICE_HEADERS, App, herald_config, org_yaml, running_app

from herald.processors.testing import HttpRecorder

SECRET = "api-test-hmac-SECRET-0123456789"


@pytest.fixture
async def app(db_url: str, tmp_path: Path) -> Any:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(3))
    async with HttpRecorder() as server:
        server.default = lambda r: (400, {}, b"nope")
        cfg = herald_config(db_url, tmp_path, org, processors={
            "email": {"transportConfig": {"transport": "stream"}, "sender": "herald@example.com"},
            "webhook": {"allowPrivateNetworks": True,
                        "endpoints": [{"name": "ops", "url": server.url + "/t0ken-path", "secret": SECRET}]}})
        async with running_app(cfg) as running:
            yield running


async def get(app: App, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    return await app.http.get(path, params=params, headers=SERVICE_HEADERS if headers is None else headers)


async def test_only_service_principals(app: App) -> None:
    assert (await get(app, "/api/herald/deliveries/dead", headers={})).status_code == 401
    user = {"Authorization": f"Bearer {app.herald.authenticator.issue_user_token('user:default/u0')}"}
    r = await get(app, "/api/herald/deliveries/dead", headers=user)
    assert r.status_code == 403 and r.json()["error"]["name"] == "NotAllowedError"
    r = await app.http.post("/api/herald/deliveries/dead/retry", headers=user)
    assert r.status_code == 403


async def test_list_show_dead_and_retry(app: App) -> None:
    sent = await app.to("group:default/team", title="API test")
    await app.settle()
    nid = sent[0]["id"]
    r = await get(app, "/api/herald/deliveries", notification=nid)
    rows = r.json()["deliveries"]
    assert {(d["channel"], d["status"]) for d in rows} == {("Email", "delivered"), ("Webhook", "dead")}
    assert all(d["notificationId"] == nid and d["user"] == sent[0]["user"] for d in rows)
    send_id = rows[0]["sendId"]
    assert len((await get(app, "/api/herald/deliveries", send=send_id)).json()["deliveries"]) == 6
    assert len((await get(app, "/api/herald/deliveries", status="delivered", channel="Email"))
               .json()["deliveries"]) == 3

    dead = (await get(app, "/api/herald/deliveries/dead", channel="Webhook")).json()["deliveries"]
    assert len(dead) == 3 and all(d["detail"] == "ops: HTTP 400" for d in dead)
    one = (await get(app, f"/api/herald/deliveries/{dead[0]['id']}")).json()
    assert [a["outcome"] for a in one["attempts"]] == ["permanent"]
    assert one["notification"]["title"] == "API test"

    r = await app.http.post(f"/api/herald/deliveries/{dead[0]['id']}/retry", headers=SERVICE_HEADERS)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    await app.settle()
    again = (await get(app, f"/api/herald/deliveries/{dead[0]['id']}")).json()
    assert again["status"] == "dead" and len(again["attempts"]) == 2

    delivered = next(d for d in rows if d["status"] == "delivered")
    r = await app.http.post(f"/api/herald/deliveries/{delivered['id']}/retry", headers=SERVICE_HEADERS)
    assert r.status_code == 400 and "only dead deliveries can be retried" in r.json()["error"]["message"]
    r = await app.http.post("/api/herald/deliveries/00000000-0000-4000-8000-000000000000/retry",
                            headers=SERVICE_HEADERS)
    assert r.status_code == 404
    assert (await get(app, "/api/herald/deliveries/not-an-id")).status_code == 404

    r = await app.http.post("/api/herald/deliveries/dead/retry", params={"channel": "Webhook"},
                            headers=SERVICE_HEADERS)
    assert r.json() == {"retried": 3}


async def test_bad_queries(app: App) -> None:
    for params in ({}, {"bogus": "1", "status": "dead"}, {"status": "lost"}, {"status": "dead", "limit": "-1"},
                   {"status": "dead", "limit": "100000"}):
        r = await app.http.get("/api/herald/deliveries", params=params, headers=SERVICE_HEADERS)
        assert r.status_code == 400, params
        assert r.json()["error"]["name"] == "InputError"


async def test_processors_are_shown_redacted(app: App) -> None:
    r = await get(app, "/api/herald/processors")
    assert r.status_code == 200
    body = r.json()
    names = [p["name"] for p in body["processors"]]
    assert names == ["Email", "Webhook"]
    text = r.text
    assert SECRET not in text and "t0ken-path" not in text
    webhook = body["processors"][1]["settings"]["endpoints"][0]
    assert webhook["secret"] == "**********" and webhook["url"].endswith("/****")


async def test_settings_channels_are_web_plus_processors(app: App) -> None:
    user = {"Authorization": f"Bearer {app.herald.authenticator.issue_user_token('user:default/u0')}"}
    await app.to("user:default/u0")
    r = await app.http.get("/api/notifications/settings", headers=user)
    assert [c["id"] for c in r.json()["channels"]] == ["Web", "Email", "Webhook"]
    # a user can switch a processor channel off, and then gets nothing there
    doc = {"channels": [{"id": "Webhook", "origins": [{"id": "external:test-sender", "enabled": False}]}]}
    assert (await app.http.post("/api/notifications/settings", json=doc, headers=user)).status_code == 200
    [sent] = await app.to("user:default/u0")
    await app.settle()
    assert [d["channel"] for d in await app.deliveries_of(sent["id"])] == ["Email"]
