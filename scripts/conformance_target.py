"""Start Herald on a free loopback port with a fresh database and an org file; print exports."""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: conformance-target ORG_FILE", file=sys.stderr)
        return 2
    org = Path(sys.argv[1]).resolve()
    if not org.is_file():
        print(f"no such org file: {org}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="herald-conf-"))
    port = free_port()
    db_url = os.environ.get("CONF_DATABASE_URL") or f"sqlite:///{work / 'herald.db'}"
    token1, token2 = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    config = {
        "app": {"baseUrl": "http://localhost:3000"},
        "server": {"host": "127.0.0.1", "port": port},
        "database": {"url": db_url},
        "dataDir": str(work / "data"),
        "catalog": {"files": [str(org)], "watch": False},
        "auth": {"serviceTokens": [{"token": token1, "subject": "external:conformance"},
                                   {"token": token2, "subject": "external:conformance-2"}]},
    }
    cfg_file = work / "herald.yaml"
    cfg_file.write_text(yaml.safe_dump(config))
    herald = Path(sys.executable).parent / "herald"
    log = open(work / "herald.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([str(herald), "serve", "--config", str(cfg_file), "--no-demo"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            sys.stderr.write((work / "herald.log").read_text())
            print(f"herald exited with {proc.returncode}", file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            print("herald did not become ready in 60 s", file=sys.stderr)
            return 1
        time.sleep(0.1)
    token_cmd = f"{shlex.quote(str(herald))} token --config {shlex.quote(str(cfg_file))}"
    exports = {
        "CONF_BASE": base,
        "CONF_SERVICE_TOKEN": token1,
        "CONF_ORIGIN": "external:conformance",
        "CONF_SERVICE_TOKEN_2": token2,
        "CONF_ORIGIN_2": "external:conformance-2",
        "CONF_USER_TOKEN_CMD": token_cmd,
        "CONF_PID": str(proc.pid),
        "CONF_WORKDIR": str(work),
    }
    for k, v in exports.items():
        print(f"export {k}={shlex.quote(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
