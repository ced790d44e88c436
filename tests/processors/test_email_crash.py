"""Killing Herald mid-delivery loses nothing: a real `herald serve` process, SIGKILLed while the
SMTP server is slowly taking a group's messages, then restarted.

SMTP is at-least-once: a message whose DATA the server had accepted when Herald died was never
marked delivered, so it is sent again after its lease runs out. Every copy carries the delivery's
idempotency key (`X-Herald-Delivery`, also in `Message-ID`), so the test checks exactly-once per
key: every member gets exactly one distinct message, and copies of one key are the only extras.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.processors.conftest import SERVICE_HEADERS, SERVICE_TOKEN, org_yaml

from herald.processors.testing import SmtpRecorder, free_port

MEMBERS = 30
CONCURRENCY = 3


@contextmanager
def herald_process(config_file: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    herald = Path(sys.executable).parent / "herald"
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(herald), "serve", "--config", str(config_file), "--no-demo"], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def tail(log: Path) -> str:
    return log.read_text()[-4000:]


async def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"herald exited with {proc.returncode}:\n{tail(log)}")
            try:
                if (await http.get(base + "/readyz", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"herald did not become ready:\n{tail(log)}")
            await asyncio.sleep(0.1)


async def test_sigkill_mid_delivery_loses_nothing(db_url: str, tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(MEMBERS))
    smtp = SmtpRecorder(delay_s=0.25).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config: dict[str, Any] = {
        "app": {"baseUrl": "https://backstage.example.org"},
        "server": {"host": "127.0.0.1", "port": port},
        "database": {"url": db_url},
        "dataDir": str(tmp_path / "data"),
        "catalog": {"files": [str(org)], "watch": False},
        "auth": {"serviceTokens": [{"token": SERVICE_TOKEN, "subject": "external:crash-test"}]},
        "notifications": {
            "processors": {"email": {
                "transportConfig": {"transport": "smtp", "hostname": "127.0.0.1", "port": smtp.port},
                "sender": "herald@example.com", "concurrencyLimit": CONCURRENCY, "throttleInterval": 0}},
            "delivery": {"lease": "2s", "pollInterval": "50ms", "initialBackoff": "100ms", "maxBackoff": "500ms"},
        },
    }
    config_file = tmp_path / "herald.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log = tmp_path / "herald.log"
    everyone = {f"u{i}@example.com" for i in range(MEMBERS)}
    try:
        with herald_process(config_file, log) as first:
            await wait_ready(base, first, log)
            async with httpx.AsyncClient(base_url=base) as http:
                r = await http.post("/api/notifications/notifications", headers=SERVICE_HEADERS, json={
                    "recipients": {"type": "entity", "entityRef": "group:default/team"},
                    "payload": {"title": "Incident resolved", "severity": "high"}})
                assert r.status_code == 200, r.text
                assert len(r.json()) == MEMBERS
            await smtp.wait_for(lambda ms: len(ms) >= 6)
            os.killpg(first.pid, signal.SIGKILL)  # mid-delivery: some sent, some in flight, most waiting
            first.wait(10)
        delivered_before_restart = {m.recipients[0] for m in smtp.messages}
        assert len(delivered_before_restart) < MEMBERS, "the kill came too late to prove anything"

        with herald_process(config_file, log) as second:
            await wait_ready(base, second, log)
            await smtp.wait_for(lambda ms: {m.recipients[0] for m in ms} >= everyone, timeout_s=60)
            async with httpx.AsyncClient(base_url=base) as http:
                deadline = time.monotonic() + 30
                while True:
                    r = await http.get("/api/herald/deliveries", headers=SERVICE_HEADERS,
                                       params={"status": "delivered", "limit": 1000})
                    delivered = r.json()["deliveries"]
                    if len(delivered) == MEMBERS or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.1)
                assert len(delivered) == MEMBERS, tail(log)
                histories = [(await http.get(f"/api/herald/deliveries/{d['id']}", headers=SERVICE_HEADERS)).json()
                             for d in delivered]
            await asyncio.sleep(0.5)  # a stray extra copy would show up now
    finally:
        smtp.stop()

    keys_by_member: dict[str, set[str]] = {}
    copies: dict[str, int] = {}
    for m in smtp.messages:
        keys_by_member.setdefault(m.recipients[0], set()).add(m.key)
        copies[m.key] = copies.get(m.key, 0) + 1
    assert set(keys_by_member) == everyone
    assert all(len(keys) == 1 for keys in keys_by_member.values()), keys_by_member  # exactly once per key
    assert {d["id"] for d in delivered} == set(copies)
    # extra copies can only be messages that were in flight when Herald died
    assert sum(n - 1 for n in copies.values()) <= CONCURRENCY
    interrupted = [h for h in histories if any(a["outcome"] == "interrupted" for a in h["attempts"])]
    assert interrupted, "the restarted Herald should have taken over deliveries the killed one had claimed"
    assert all(h["attempts"][-1]["outcome"] == "ok" for h in histories)
