"""Start a real `herald serve` for a benchmark: free loopback port, fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import yaml

PG_ADMIN = os.environ.get("HERALD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class Server:
    base: str
    service_token: str
    db_url: str
    config_file: Path
    proc: subprocess.Popen[bytes]

    def user_token(self, user: str) -> str:
        herald = Path(sys.executable).parent / "herald"
        out = subprocess.run([str(herald), "token", "--config", str(self.config_file), user],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def herald_server(org_file: Path | None, *, extra: dict[str, Any] | None = None) -> Iterator[Server]:
    name = f"herald_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    work = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    port = _free_port()
    token = secrets.token_urlsafe(24)
    config: dict[str, Any] = {
        "app": {"baseUrl": "http://localhost:3000"},
        "server": {"host": "127.0.0.1", "port": port},
        "database": {"url": db_url},
        "dataDir": str(work / "data"),
        "catalog": {"files": [str(org_file)] if org_file else [], "watch": False},
        "auth": {"serviceTokens": [{"token": token, "subject": "external:bench"}]},
        **(extra or {}),
    }
    cfg = work / "herald.yaml"
    cfg.write_text(yaml.safe_dump(config))
    herald = Path(sys.executable).parent / "herald"
    log = open(work / "herald.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(herald), "serve", "--config", str(cfg), "--no-demo"], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError((work / "herald.log").read_text())
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("herald did not start")
            time.sleep(0.1)
        yield Server(base, token, db_url, cfg, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
