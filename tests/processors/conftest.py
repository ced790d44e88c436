"""Helpers for processor tests: org files, an in-process Herald with processors, TLS material."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from herald.api.app import create_app
from herald.bootstrap import Herald, build
from herald.config import load_config
from herald.core.ports import NewNotification, Outbox, OutboxEntry
from herald.processors.runtime import DeliveryRuntime
from herald.store.database import Database
from herald.store.sql_store import SqlNotificationStore

NOW = 1_700_000_000_000


def base(scope: str | None = None, title: str = "t") -> NewNotification:
    return NewNotification(origin="external:test", created=NOW, title=title, description=None, link=None,
                           severity="normal", topic=None, scope=scope, icon=None)


def uid() -> str:
    return str(uuid.uuid4())


async def enqueue(db: Database, users: Sequence[str], *, channel: str = "Recording", scope: str | None = None,
                  title: str = "t", now: int = NOW, web_disabled: Sequence[str] = ()) -> list[str]:
    """Store a send for `users` with one delivery per user (and per Web-disabled user); delivery ids."""
    store = SqlNotificationStore(db)
    entries = [OutboxEntry(uid(), channel, u) for u in users]
    entries += [OutboxEntry(uid(), channel, u, None, uid()) for u in web_disabled]
    outbox = Outbox(send_id=uid(), origin="external:test", scope=scope,
                    snapshot=orjson.dumps({"title": title, "created": now}).decode(), entries=tuple(entries), now=now)
    await store.save_user_notifications(base(scope, title), list(users), [uid() for _ in users], outbox)
    return [e.id for e in entries]


SERVICE_TOKEN = "svc-token-for-processor-tests-0123456789"
SERVICE_HEADERS = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


def org_yaml(members: int, *, group: str = "team", email: Callable[[int], str | None] | None = None,
             annotations: Callable[[int], Mapping[str, str]] | None = None,
             extra: list[dict[str, Any]] | None = None) -> str:
    """A group `group:default/<group>` with `members` users `user:default/u<i>` (email u<i>@example.com)."""
    docs: list[dict[str, Any]] = [{
        "apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": group},
        "spec": {"type": "team", "children": [], "members": [f"u{i}" for i in range(members)]},
    }]
    for i in range(members):
        profile: dict[str, Any] = {"displayName": f"User {i}"}
        address = email(i) if email else f"u{i}@example.com"
        if address:
            profile["email"] = address
        metadata: dict[str, Any] = {"name": f"u{i}"}
        if annotations:
            metadata["annotations"] = dict(annotations(i))
        docs.append({"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": metadata,
                     "spec": {"profile": profile, "memberOf": [group]}})
    docs += extra or []
    return yaml.safe_dump_all(docs)


def herald_config(db_url: str, tmp_path: Path, org: Path, *, processors: Mapping[str, Any],
                  delivery: Mapping[str, Any] | None = None, **extra: Any) -> Any:
    notifications: dict[str, Any] = {"processors": dict(processors)}
    notifications["delivery"] = {"pollInterval": "20ms", "initialBackoff": "50ms", "maxBackoff": "200ms",
                                 **(delivery or {})}
    notifications.update(extra.pop("notifications", {}))
    overrides = {
        "database": {"url": db_url, "migrateOnStart": False},
        "dataDir": str(tmp_path / "data"),
        "catalog": {"files": [str(org)], "watch": False},
        "app": {"baseUrl": "https://backstage.example.org"},
        "auth": {"serviceTokens": [{"token": SERVICE_TOKEN, "subject": "external:test-sender"}]},
        "notifications": notifications,
        **extra,
    }
    return load_config(None, environ={}, overrides=overrides)


@dataclass
class App:
    herald: Herald
    http: httpx.AsyncClient

    @property
    def deliveries(self) -> DeliveryRuntime:
        assert self.herald.deliveries is not None
        return self.herald.deliveries

    async def send(self, recipients: Any, **payload: Any) -> list[dict[str, Any]]:
        body = {"recipients": recipients, "payload": {"title": "Deploy finished", **payload}}
        r = await self.http.post("/api/notifications/notifications", json=body, headers=SERVICE_HEADERS)
        assert r.status_code == 200, r.text
        sent: list[dict[str, Any]] = r.json()
        return sent

    async def to(self, *refs: str, **payload: Any) -> list[dict[str, Any]]:
        return await self.send({"type": "entity", "entityRef": list(refs)}, **payload)

    async def deliveries_of(self, notification: str) -> list[dict[str, Any]]:
        r = await self.http.get("/api/herald/deliveries", params={"notification": notification},
                                headers=SERVICE_HEADERS)
        assert r.status_code == 200, r.text
        rows: list[dict[str, Any]] = r.json()["deliveries"]
        return rows

    async def settle(self, timeout_s: float = 20.0) -> None:
        """Wait until nothing is pending or being delivered."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout_s
        while True:
            counts = await self.deliveries.ledger.counts()
            busy = sum(c.get("pending", 0) + c.get("delivering", 0) for c in counts.values())
            if not busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"deliveries not settled: {counts}")
            await asyncio.sleep(0.02)


AppFactory = Callable[..., Awaitable[App]]


@asynccontextmanager
async def running_app(config: Any, *, start: bool = True) -> AsyncIterator[App]:
    herald = await build(config)
    if start:
        await herald.start()
    app = create_app(herald.routes)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as http:
            yield App(herald, http)
    finally:
        await herald.stop()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file
