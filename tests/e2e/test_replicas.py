"""Two `herald serve` processes (replicas) on one PostgreSQL database, over real sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import create_pg_database, drop_pg_database
from websockets.sync.client import connect

HERALD = str(Path(sys.executable).parent / "herald")
SERVICE_TOKEN = "replica-test-service-token-0123"
ORG = Path(__file__).parents[1] / "catalog" / "data" / "conformance_org.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(config_file: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([HERALD, "serve", "--config", str(config_file), "--no-demo"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "replica did not start: " + log.read_text()
        time.sleep(0.1)


@pytest.fixture
async def pg_url() -> Any:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    procs = []
    bases = []
    data = tmp_path / "data"  # shared: both replicas sign and verify with the same key
    for i in range(2):
        port = _free_port()
        cfg = tmp_path / f"replica{i}.yaml"
        cfg.write_text(yaml.safe_dump({
            "server": {"host": "127.0.0.1", "port": port}, "database": {"url": pg_url},
            "dataDir": str(data), "catalog": {"files": [str(ORG)], "watch": False},
            "auth": {"serviceTokens": [{"token": SERVICE_TOKEN, "subject": "external:replicas"}]},
        }))
        log = tmp_path / f"replica{i}.log"
        proc = _start(cfg, log)
        procs.append(proc)
        bases.append(f"http://127.0.0.1:{port}")
        _wait_ready(bases[-1], proc, log)   # one at a time: the first one migrates
    try:
        yield bases[0], bases[1], tmp_path / "replica0.yaml"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def _next_frame(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=timeout)))


def test_signals_cross_replicas(replicas: tuple[str, str, Path]) -> None:
    first, second, cfg = replicas
    user = "user:default/alice"
    token = subprocess.run([HERALD, "token", "--config", str(cfg), user], capture_output=True, text=True,
                           check=True).stdout.strip()
    with connect(first.replace("http", "ws") + "/api/signals", subprotocols=[token],  # type: ignore[list-item]
                 open_timeout=10) as ws:
        assert ws.subprotocol == token
        ws.send(json.dumps({"action": "subscribe", "channel": "notifications"}))
        ws.ping().wait(5)
        time.sleep(0.3)
        r = httpx.post(second + "/api/notifications", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
                       json={"recipients": {"type": "entity", "entityRef": "group:default/team-backend"},
                             "payload": {"title": "across replicas"}})
        assert r.status_code == 200, r.text
        mine = next(n["id"] for n in r.json() if n["user"] == user)
        assert _next_frame(ws) == {"channel": "notifications",
                                   "message": {"action": "new_notification", "notification_id": mine}}
        # the notification is already readable on the first replica when the signal arrives
        got = httpx.get(f"{first}/api/notifications/notifications/{mine}",
                        headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200 and got.json()["payload"]["title"] == "across replicas"
        r = httpx.post(second + "/api/notifications/notifications/update",
                       headers={"Authorization": f"Bearer {token}"}, json={"ids": [mine], "read": True})
        assert r.status_code == 200
        assert _next_frame(ws) == {"channel": "notifications",
                                   "message": {"action": "notification_read", "notification_ids": [mine]}}
        r = httpx.post(second + "/api/notifications", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
                       json={"recipients": {"type": "broadcast"}, "payload": {"title": "to everyone"}})
        assert _next_frame(ws)["message"] == {"action": "new_notification", "notification_id": r.json()[0]["id"]}
