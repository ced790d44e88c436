"""An in-process Herald (real database, real catalog, real auth) driven through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.api.app import create_app
from herald.bootstrap import Herald, build
from herald.config import load_config

ORG = Path(__file__).parents[1] / "catalog" / "data" / "conformance_org.yaml"
SERVICE_TOKEN = "svc-token-for-tests-0123456789"
SERVICE_TOKEN_2 = "svc-token-for-tests-2-0123456789"


@dataclass
class Client:
    http: httpx.AsyncClient
    herald: Herald

    def user_headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.herald.authenticator.issue_user_token(user)}"}

    service_headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}

    async def send(self, body: dict[str, Any], token: str = SERVICE_TOKEN) -> httpx.Response:
        return await self.http.post("/api/notifications/notifications", json=body,
                                    headers={"Authorization": f"Bearer {token}"})

    async def get(self, path: str, user: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params or None, headers=self.user_headers(user))


def make_config(db_url: str, tmp_path: Path, **extra: Any) -> Any:
    overrides = {
        "database": {"url": db_url, "migrateOnStart": False},
        "dataDir": str(tmp_path / "data"),
        "catalog": {"files": [str(ORG)], "watch": False},
        "app": {"baseUrl": "http://localhost:3000"},
        "auth": {"serviceTokens": [{"token": SERVICE_TOKEN, "subject": "external:test-service"},
                                   {"token": SERVICE_TOKEN_2, "subject": "external:test-service2"}]},
        **extra,
    }
    return load_config(None, environ={}, overrides=overrides)


@pytest.fixture
async def client(db_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    herald = await build(make_config(db_url, tmp_path))
    app = create_app(herald.routes)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as http:
        yield Client(http, herald)
    await herald.stop()
