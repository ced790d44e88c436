"""`herald deliveries …` and `herald worker`: the ledger from the command line, and delivery by a
separate worker process while the server only enqueues."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from tests.processors.conftest import SERVICE_TOKEN, herald_config, org_yaml, running_app
from typer.testing import CliRunner

from herald.cli.main import app as cli
from herald.processors.testing import HttpRecorder, SmtpRecorder

SECRET = "cli-test-hmac-SECRET-0123456789"


def config_file(tmp_path: Path, db_url: str, org: Path, processors: dict[str, Any], **notifications: Any) -> Path:
    path = tmp_path / "herald.yaml"
    path.write_text(yaml.safe_dump({
        "database": {"url": db_url}, "dataDir": str(tmp_path / "data"),
        "catalog": {"files": [str(org)], "watch": False}, "app": {"baseUrl": "https://backstage.example.org"},
        "auth": {"serviceTokens": [{"token": SERVICE_TOKEN, "subject": "external:cli"}]},
        "notifications": {"processors": processors, **notifications}}))
    return path


def start_worker(cfg: Path) -> subprocess.Popen[bytes]:
    herald = Path(sys.executable).parent / "herald"
    return subprocess.Popen([str(herald), "worker", "--config", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes]) -> bytes:
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    return out


async def invoke(*args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_list_dead_show_retry_stats(db_url: str, tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(2))
    async with HttpRecorder() as server:
        server.default = lambda r: (404, {}, b"")
        processors = {"webhook": {"allowPrivateNetworks": True,
                                  "endpoints": [{"name": "ops", "url": server.url, "secret": SECRET}]}}
        async with running_app(herald_config(db_url, tmp_path, org, processors=processors)) as app:
            sent = await app.to("group:default/team")
            await app.settle()
        cfg = str(config_file(tmp_path, db_url, org, processors))

        r = await invoke("deliveries", "list", "--notification", sent[0]["id"], "--config", cfg)
        assert r.exit_code == 0, r.output
        assert "dead" in r.output and "Webhook" in r.output and sent[0]["user"] in r.output
        r = await invoke("deliveries", "dead", "--json", "--config", cfg)
        dead = json.loads(r.output)
        assert len(dead) == 2 and {d["detail"] for d in dead} == {"ops: HTTP 404"}
        r = await invoke("deliveries", "show", dead[0]["id"], "--config", cfg)
        assert json.loads(r.output)["attempts"][0]["outcome"] == "permanent"
        r = await invoke("deliveries", "stats", "--config", cfg)
        assert r.output.strip() == "Webhook: dead=2"
        r = await invoke("deliveries", "retry", dead[0]["id"], "--config", cfg)
        assert r.exit_code == 0 and f"{dead[0]['id']}  pending" in r.output
        r = await invoke("deliveries", "retry", dead[0]["id"], "--config", cfg)
        assert r.exit_code == 1 and "only dead deliveries can be retried" in r.output
        r = await invoke("deliveries", "retry", "--all-dead", "--config", cfg)
        assert "queued 1 dead deliveries again" in r.output
        r = await invoke("deliveries", "list", "--config", cfg)
        assert r.exit_code == 2
        r = await invoke("worker", "--check", "--config", cfg)
        assert r.exit_code == 0, r.output
        assert r.output.startswith("Webhook (webhook): ") and SECRET not in r.output


async def test_worker_check_reports_bad_configuration(tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(1))
    cfg = config_file(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", org,
                      {"slack": [{"token": "SECRET-not-a-token"}]})
    r = await invoke("worker", "--check", "--config", str(cfg))
    assert r.exit_code == 2
    assert "notifications.processors.slack.workspaces.0.token" in r.output and "SECRET" not in r.output


async def test_a_separate_worker_process_delivers(db_url: str, tmp_path: Path) -> None:
    """The server only enqueues (`worker: external`); `herald worker` delivers and stops cleanly."""
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(5))
    with SmtpRecorder() as smtp:
        processors = {"email": {"transportConfig": {"transport": "smtp", "hostname": "127.0.0.1",
                                                    "port": smtp.port}, "sender": "herald@example.com"}}
        delivery = {"worker": "external", "pollInterval": "50ms"}
        async with running_app(herald_config(db_url, tmp_path, org, processors=processors,
                                             delivery=delivery)) as app:
            await app.to("group:default/team")
            await asyncio.sleep(0.3)
            assert smtp.messages == []
            assert (await app.deliveries.ledger.counts()) == {"Email": {"pending": 5}}
            cfg = config_file(tmp_path, db_url, org, processors, delivery=delivery)
            proc = start_worker(cfg)
            try:
                await smtp.wait_for(lambda ms: len(ms) == 5, timeout_s=30)
                deadline = time.monotonic() + 10
                while (await app.deliveries.ledger.counts()) != {"Email": {"delivered": 5}}:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            finally:
                out = await asyncio.to_thread(stop_worker, proc)
    assert proc.returncode == 0, out.decode()
    assert b"delivering Email" in out and b"stopping" in out
    assert sorted(m.recipients[0] for m in smtp.messages) == [f"u{i}@example.com" for i in range(5)]


async def test_serve_refuses_to_start_with_a_bad_processor(tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text(org_yaml(1))
    bad = {"webhook": {"endpoints": [{"name": "x", "url": "https://hooks.example.com/", "secret": "short-SECRET"}]}}
    cfg = config_file(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", org, bad)
    r = await invoke("serve", "--config", str(cfg), "--no-demo")
    assert r.exit_code == 2
    assert "configuration error: notifications.processors.webhook.endpoints.0.secret" in r.output
    assert "SECRET" not in r.output
