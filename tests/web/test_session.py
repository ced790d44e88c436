"""`POST /api/herald/session`: an authenticated request (bearer or trusted proxy) becomes a
short-lived Herald user token for the page. In process, with the real Authenticator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from herald.api.herald_routes import HeraldApi
from herald.auth.authenticator import Authenticator
from herald.auth.config import AuthConfig
from herald.auth.keys import load_or_create_signing_key

SERVICE_TOKEN = "svc-token-for-session-tests-0123"
USERS = [{"ref": "user:default/alice", "displayName": "Alice Adams", "email": "alice@example.com"}]
JSON = {"Content-Type": "application/json"}

Factory = Callable[..., Any]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Factory]:
    clients: list[httpx.AsyncClient] = []
    authenticators: list[Authenticator] = []

    async def make(*, client_host: str = "127.0.0.1", sessions: bool = True,
                   **auth: Any) -> tuple[httpx.AsyncClient, Authenticator]:
        config = AuthConfig.model_validate({"dev": True, "serviceTokens": [
            {"token": SERVICE_TOKEN, "subject": "external:ci"}], **auth})
        authenticator = Authenticator(config, load_or_create_signing_key(tmp_path))
        authenticators.append(authenticator)
        api = HeraldApi(
            jwks=authenticator.jwks, issue_dev_token=authenticator.issue_dev_token,
            users=lambda: USERS, dev=True,
            authenticate=authenticator.authenticate if sessions else None,
            issue_user_token=authenticator.issue_user_token if sessions else None,
            app_base_url="http://backstage.test", proxy=config.proxy is not None,
        )
        transport = httpx.ASGITransport(app=Starlette(routes=api.routes()), client=(client_host, 5555))
        client = httpx.AsyncClient(transport=transport, base_url="http://herald.test")
        clients.append(client)
        return client, authenticator

    yield make
    for c in clients:
        await c.aclose()
    for a in authenticators:
        await a.aclose()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


async def test_a_bearer_user_token_becomes_a_session(make_client: Factory) -> None:
    http, auth = await make_client()
    credential = auth.issue_user_token("user:default/alice", ownership_refs=["user:default/alice", "group:default/web"])
    r = await http.post("/api/herald/session", json={}, headers=_bearer(credential))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["user"] == "user:default/alice"
    assert body["displayName"] == "Alice Adams"
    assert body["via"] == "bearer"
    assert 0 < body["expiresInSeconds"] <= 3600
    assert body["expiresAt"].endswith("Z")
    principal = await auth.authenticate_token(body["token"])
    assert principal.kind == "user" and principal.subject == "user:default/alice"
    assert principal.ownership_refs == ("user:default/alice", "group:default/web")
    # A session token renews itself (the page does this before it runs out).
    again = await http.post("/api/herald/session", json={}, headers=_bearer(body["token"]))
    assert again.status_code == 200


async def test_a_session_never_outlives_the_presented_token(make_client: Factory) -> None:
    http, auth = await make_client()
    short = auth.issue_user_token("user:default/alice", ttl_s=120)
    body = (await http.post("/api/herald/session", json={}, headers=_bearer(short))).json()
    assert body["expiresInSeconds"] <= 120
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["exp"] <= jwt.decode(short, options={"verify_signature": False})["exp"]
    dying = auth.issue_user_token("user:default/alice", ttl_s=10)
    r = await http.post("/api/herald/session", json={}, headers=_bearer(dying))
    assert r.status_code == 401
    assert r.json()["error"]["name"] == "AuthenticationError"


async def test_refusals(make_client: Factory) -> None:
    http, auth = await make_client()
    none = await http.post("/api/herald/session", json={}, headers=JSON)
    assert none.status_code == 401
    service = await http.post("/api/herald/session", json={}, headers=_bearer(SERVICE_TOKEN))
    assert service.status_code == 403
    bad = await http.post("/api/herald/session", json={}, headers=_bearer("not-a-token-at-all"))
    assert bad.status_code == 401
    # A cross-site form cannot send JSON without a preflight: anything else is refused.
    token = auth.issue_user_token("user:default/alice")
    form = await http.post("/api/herald/session", content=b"x=1", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 400
    for r in (none, service, bad, form):
        assert "token" not in r.json()


async def test_a_trusted_proxy_header_becomes_a_session(make_client: Factory) -> None:
    proxy = {"proxy": {"header": "X-Forwarded-User", "trustedProxies": ["127.0.0.1"]}}
    http, auth = await make_client(**proxy)
    info = (await http.get("/api/herald/info")).json()
    assert info == {"dev": True, "session": True, "proxy": True, "appBaseUrl": "http://backstage.test"}
    r = await http.post("/api/herald/session", json={}, headers={"X-Forwarded-User": "alice", **JSON})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"] == "user:default/alice" and body["via"] == "proxy"
    assert body["expiresInSeconds"] == 3600
    assert (await auth.authenticate_token(body["token"])).subject == "user:default/alice"

    untrusted, _ = await make_client(client_host="192.0.2.7", **proxy)
    r = await untrusted.post("/api/herald/session", json={}, headers={"X-Forwarded-User": "alice", **JSON})
    assert r.status_code == 401


async def test_without_the_wiring_there_are_no_sessions(make_client: Factory) -> None:
    http, _ = await make_client(sessions=False)
    info = (await http.get("/api/herald/info")).json()
    assert info["session"] is False and info["proxy"] is False
    assert (await http.post("/api/herald/session", json={}, headers=JSON)).status_code == 404
