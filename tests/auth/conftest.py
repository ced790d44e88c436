"""Fixtures of the auth tests: a real JWKS server on a free loopback port, keys, a fake clock."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from herald.auth.keys import SigningKey


@dataclass
class JwksServer:
    """Serves `document` at `/api/auth/.well-known/jwks.json`; `status` != 200 simulates an outage."""

    document: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    status: int = 200
    hits: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/auth/.well-known/jwks.json"


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    state = JwksServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            if self.path != "/api/auth/.well-known/jwks.json" or state.status != 200:
                self.send_response(404 if state.status == 200 else state.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@dataclass
class BackstageKey:
    """A key of a pretend Backstage auth backend, and tokens shaped like its user tokens."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}

    def token(self, sub: str = "user:default/jane.doe", *, typ: str | None = "vnd.backstage.user",
              ttl: int = 3600, omit: tuple[str, ...] = (), **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": "http://localhost:7007/api/auth",
            "sub": sub,
            "ent": [sub, "group:default/team-a"],
            "aud": "backstage",
            "iat": now,
            "exp": now + ttl,
            "uip": "not-checked-here",
        }
        payload.update(claims)
        for name in omit:
            payload.pop(name, None)
        headers: dict[str, Any] = {"kid": self.kid}
        if typ is not None:
            headers["typ"] = typ
        return jwt.encode(payload, self.private_key, algorithm="ES256", headers=headers)


def make_backstage_key(kid: str) -> BackstageKey:
    return BackstageKey(kid, ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def new_backstage_key() -> Callable[[str], BackstageKey]:
    return make_backstage_key


@pytest.fixture
def backstage_key(jwks_server: JwksServer) -> BackstageKey:
    key = make_backstage_key("backstage-key-1")
    jwks_server.document = {"keys": [key.public_jwk()]}
    return key
