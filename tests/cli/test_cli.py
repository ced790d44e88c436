"""The `herald` command line, run for real in a subprocess where it talks to a server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt
import yaml
from typer.testing import CliRunner

from herald.catalog.generate import generate_org
from herald.cli.main import app

runner = CliRunner()
HERALD = str(Path(sys.executable).parent / "herald")


def test_token_is_a_verifiable_user_token(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"dataDir": str(tmp_path / "data")}))
    r = runner.invoke(app, ["token", "--config", str(cfg), "user:default/alice"])
    assert r.exit_code == 0, r.output
    claims = jwt.decode(r.output.strip(), options={"verify_signature": False})
    assert claims["sub"] == "user:default/alice" and claims["aud"] == "backstage"
    r2 = runner.invoke(app, ["token", "--config", str(cfg), "group:default/x"])
    assert r2.exit_code == 2


def test_catalog_check_reports_and_fails_on_errors(tmp_path: Path) -> None:
    good = tmp_path / "org.yaml"
    good.write_text(generate_org(50, 5))
    r = runner.invoke(app, ["catalog", "check", str(good)])
    assert r.exit_code == 0, r.output
    assert "50" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {}\n")
    r = runner.invoke(app, ["catalog", "check", str(bad)])
    assert r.exit_code == 1


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"dataDir": str(tmp_path / "data")}))
    out = subprocess.run([HERALD, "db", "upgrade", "--config", str(cfg)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    import sqlite3

    names = {r[0] for r in sqlite3.connect(tmp_path / "data" / "herald.db").execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"notification", "broadcast", "broadcast_user_status", "user_settings"} <= names


def test_send_reports_a_refused_request(tmp_path: Path) -> None:
    r = runner.invoke(app, ["send", "--title", "x", "--url", "http://127.0.0.1:9", "--service-token", "nope"])
    assert r.exit_code == 1
    assert "cannot reach" in r.output
