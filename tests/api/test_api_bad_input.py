"""Bad input of every kind gets a 4xx in Backstage's error shape, never a 500, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

ALICE = "user:default/alice"
SEND = "/api/notifications/notifications"


def assert_error(r: httpx.Response, status: int, name: str, contains: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "request", "response"}
    assert body["error"]["name"] == name
    assert contains in body["error"]["message"], body
    assert body["response"] == {"statusCode": status}
    assert body["request"]["method"] == r.request.method
    return body


async def total(client: Any, user: str = ALICE) -> int:
    r = await client.get("/api/notifications/notifications", ALICE if user == ALICE else user)
    assert r.status_code == 200
    return int(r.json()["totalCount"])


BAD_SEND_BODIES: list[tuple[Any, str]] = [
    ({}, "recipients"),
    ({"recipients": {"type": "broadcast"}}, "payload"),
    ({"recipients": {"type": "broadcast"}, "payload": {}}, "title"),
    ({"recipients": {"type": "broadcast"}, "payload": {"title": ""}}, "title"),
    ({"recipients": {"type": "broadcast"}, "payload": {"title": 5}}, "title"),
    ({"recipients": {"type": "broadcast"}, "payload": {"title": "x" * 256}}, "title"),
    ({"recipients": {"type": "broadcast"}, "payload": {"title": "t", "topic": "x" * 256}}, "topic"),
    ({"recipients": {"type": "broadcast"}, "payload": {"title": "t", "severity": "HIGH"}}, "severity"),
    ({"recipients": {"type": "broadcast"}, "payload": {"title": "t", "metadata": []}}, "metadata"),
    ({"recipients": {"type": "broadcast"}, "payload": {"title": "t", "link": "javascript:alert(1)"}}, "link"),
    ({"recipients": {"type": "teams"}, "payload": {"title": "t"}}, "recipients type"),
    ({"recipients": {"type": "entity"}, "payload": {"title": "t"}}, "entityRef"),
    ({"recipients": {"type": "entity", "entityRef": [1]}, "payload": {"title": "t"}}, "entityRef"),
    ({"recipients": {"type": "entity", "entityRef": "alice"}, "payload": {"title": "t"}},
     "Failed to send user notifications"),
    ({"recipients": {"type": "entity", "entityRef": ALICE, "excludeEntityRef": {}}, "payload": {"title": "t"}},
     "excludeEntityRef"),
    ([], "object"),
    ("text", "object"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_SEND_BODIES)
async def test_bad_send_bodies_are_400_and_store_nothing(client: Any, body: Any, mentions: str) -> None:
    before = await total(client)
    r = await client.send(body)
    out = assert_error(r, 400, "InputError")
    text = out["error"]["message"] + str(out["error"].get("cause", ""))
    assert mentions.lower() in text.lower()
    assert await total(client) == before


async def test_malformed_json_is_400(client: Any) -> None:
    r = await client.http.post(SEND, content=b'{"recipients": ', headers={
        **client.service_headers, "content-type": "application/json"})
    assert_error(r, 400, "InputError", "Malformed JSON")


async def test_oversized_body_is_400_and_stores_nothing(client: Any) -> None:
    before = await total(client)
    body = {"recipients": {"type": "entity", "entityRef": ALICE},
            "payload": {"title": "big", "description": "x" * 200_000}}
    r = await client.send(body)
    assert_error(r, 400, "InputError", "too large")
    assert await total(client) == before


@pytest.mark.parametrize("query", [
    "createdAfter=not-a-date", "limit=-1", "limit=1.5", "limit=abc", "offset=-3", "read=yes",
    "minimumSeverity=urgent", "orderField=created,sideways", "orderField=nosuchcolumn", "foo=bar",
    "search=", "limit=1&limit=2",
])
async def test_bad_list_queries_are_400(client: Any, query: str) -> None:
    r = await client.http.get(f"/api/notifications/notifications?{query}", headers=client.user_headers(ALICE))
    assert_error(r, 400, "InputError")


async def test_huge_limit_is_fine(client: Any) -> None:
    r = await client.http.get("/api/notifications/notifications?limit=999999999999999",
                              headers=client.user_headers(ALICE))
    assert r.status_code == 200


@pytest.mark.parametrize("body", [{}, {"ids": "x"}, {"ids": [1]}, {"ids": [], "read": "yes"},
                                  {"ids": [], "saved": 1}, []])
async def test_bad_update_bodies_are_400(client: Any, body: Any) -> None:
    r = await client.http.post("/api/notifications/notifications/update", json=body,
                               headers=client.user_headers(ALICE))
    assert_error(r, 400, "InputError")


@pytest.mark.parametrize("body", [
    {}, {"channels": {}}, {"channels": [{"id": "Web"}]},
    {"channels": [{"id": "Web", "origins": [{"id": "x"}]}]},
    {"channels": [{"id": "Web", "origins": [{"id": "x", "enabled": "no"}]}]},
    {"channels": [{"id": "Web", "origins": [{"id": "x", "enabled": True, "topics": [{"id": "t"}]}]}]},
    {"channels": [{"id": "Nope", "origins": []}]},
])
async def test_bad_settings_are_400_and_keep_the_old_settings(client: Any, body: Any) -> None:
    good = {"channels": [{"id": "Web", "origins": [{"id": "external:x", "enabled": False, "topics": []}]}]}
    h = client.user_headers(ALICE)
    assert (await client.http.post("/api/notifications/settings", json=good, headers=h)).status_code == 200
    before = (await client.http.get("/api/notifications/settings", headers=h)).json()
    r = await client.http.post("/api/notifications/settings", json=body, headers=h)
    assert_error(r, 400, "InputError")
    assert (await client.http.get("/api/notifications/settings", headers=h)).json() == before


async def test_duplicate_settings_entries_are_saved_once(client: Any) -> None:
    origin = {"id": "external:x", "enabled": False, "topics": [{"id": "t", "enabled": True},
                                                                {"id": "t", "enabled": True}]}
    body = {"channels": [{"id": "Web", "origins": [origin, origin]}]}
    r = await client.http.post("/api/notifications/settings", json=body, headers=client.user_headers(ALICE))
    assert r.status_code == 200
    rows = await client.herald.service.store.settings_rows([ALICE])
    assert [(r.origin, r.topic, r.enabled) for r in rows] == [("external:x", None, False),
                                                              ("external:x", "t", False)]


async def test_unknown_routes_and_methods_use_the_error_shape(client: Any) -> None:
    r = await client.http.get("/api/notifications/nope/deeper", headers=client.user_headers(ALICE))
    assert_error(r, 404, "NotFoundError")
    r = await client.http.delete("/api/notifications/status", headers=client.user_headers(ALICE))
    assert r.status_code == 405
    assert r.json()["response"] == {"statusCode": 405}


async def test_wrong_principal_kinds(client: Any) -> None:
    r = await client.http.get("/api/notifications/status", headers=client.service_headers)
    assert_error(r, 403, "NotAllowedError", "'service' credentials")
    r = await client.http.post(SEND, json={"recipients": {"type": "broadcast"}, "payload": {"title": "t"}},
                               headers=client.user_headers(ALICE))
    assert_error(r, 403, "NotAllowedError", "'user' credentials")
    r = await client.http.get("/api/notifications/status")
    assert_error(r, 401, "AuthenticationError")
    r = await client.http.get("/api/notifications/status", headers={"Authorization": "Bearer nope"})
    assert_error(r, 401, "AuthenticationError")


async def test_health_needs_no_token(client: Any) -> None:
    assert (await client.http.get("/healthz")).status_code == 200
    r = await client.http.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_openapi_document_lists_every_route(client: Any) -> None:
    r = await client.http.get("/api/notifications/openapi.json")
    paths = r.json()["paths"]
    for p in ("/notifications", "/", "/notifications/{id}", "/{id}", "/notifications/update", "/update",
              "/status", "/settings", "/topics"):
        assert "/api/notifications" + (p if p != "/" else "/") in paths
