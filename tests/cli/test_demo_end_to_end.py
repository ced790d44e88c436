"""The quick start for real: `herald serve --demo`, `herald send`, `herald token`, the API."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERALD = str(Path(sys.executable).parent / "herald")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serve_send_and_read(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([HERALD, "serve", "--demo", "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "demo server did not start"
            time.sleep(0.1)
        sent = subprocess.run([HERALD, "send", "--url", base, "--to", "user:default/alice", "--title",
                               "Hello from the quick start", "--topic", "welcome"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        token = subprocess.run([HERALD, "token", "user:default/alice"], cwd=tmp_path, capture_output=True,
                               text=True, timeout=60).stdout.strip()
        r = httpx.get(base + "/api/notifications/notifications", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert [n["payload"]["title"] for n in r.json()["notifications"]] == ["Hello from the quick start"]
        assert r.json()["notifications"][0]["origin"] == "external:herald-cli"
        settings = httpx.get(base + "/api/notifications/settings", headers={"Authorization": f"Bearer {token}"})
        assert [c["id"] for c in settings.json()["channels"]] == ["Web", "Email"]
        deadline = time.monotonic() + 30
        while not list((tmp_path / "herald-data" / "mail").glob("*.eml")):   # the demo's email channel
            assert time.monotonic() < deadline, "the demo email was not written"
            time.sleep(0.2)
        users = httpx.get(base + "/api/herald/dev/users").json()["users"]
        assert any(u["ref"] == "user:default/alice" for u in users)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "herald token user:default/alice" in out
    assert token not in out


def test_catalog_reload_through_a_running_server(tmp_path: Path) -> None:
    import yaml

    from herald.catalog.generate import generate_org

    org = tmp_path / "org.yaml"
    org.write_text(generate_org(20, 3))
    port = _free_port()
    cfg = tmp_path / "herald.yaml"
    token = "reload-test-service-token-0123"
    cfg.write_text(yaml.safe_dump({
        "server": {"host": "127.0.0.1", "port": port}, "dataDir": str(tmp_path / "data"),
        "catalog": {"files": [str(org)], "watch": False},
        "auth": {"serviceTokens": [{"token": token, "subject": "external:ops"}]}}))
    proc = subprocess.Popen([HERALD, "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        org.write_text(generate_org(30, 3))
        out = subprocess.run([HERALD, "catalog", "reload", "--config", str(cfg), "--service-token", token],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "reloaded: 30 users" in out.stdout
        org.write_text("kind: User\nmetadata: {}\n")
        out = subprocess.run([HERALD, "catalog", "reload", "--config", str(cfg), "--service-token", token],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "kept the previous org" in out.stdout and "30 users" in out.stdout
        r = httpx.post(base + "/api/herald/catalog/reload")
        assert r.status_code == 401
    finally:
        proc.terminate()
        proc.wait(20)
