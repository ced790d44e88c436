"""`herald serve | db upgrade | token | catalog check | send` — imports stay lazy so that quick
commands (token) start fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Herald: self-hosted notifications.")
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
catalog_app = typer.Typer(no_args_is_help=True, help="The org catalog.")
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file "
                                                 "(default: $HERALD_CONFIG, else built-in defaults).")]


def _load(config: Path | None, overrides: dict[str, Any] | None = None) -> Any:
    from herald.config import load_config

    try:
        return load_config(config, overrides=overrides)
    except Exception as e:
        typer.secho(f"configuration error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    demo: Annotated[bool | None, typer.Option("--demo/--no-demo",
                                              help="Demo org and dev sign-in (loopback only).")] = None,
) -> None:
    """Run the service."""
    import uvicorn

    from herald.bootstrap import asgi_app

    overrides: dict[str, Any] = {"server": {}}
    if host:
        overrides["server"]["host"] = host
    if port:
        overrides["server"]["port"] = port
    cfg = _load(config, overrides)
    if demo is None:
        demo = config is None and not cfg.catalog.files
    cfg.demo = demo
    if demo and cfg.server.host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho("--demo enables dev sign-in and is only allowed on a loopback address", fg="red", err=True)
        raise typer.Exit(2)
    base = f"http://{cfg.server.host}:{cfg.server.port}"
    typer.echo(f"Herald on {base}  (database: {_redact(cfg.database.url)})")
    if demo:
        typer.echo(
            "Demo mode: open the inbox at " + base + "/ and pick a user.\n"
            "  A user token:      herald token user:default/alice\n"
            "  First notification: herald send --to user:default/alice --title 'Hello from Herald'\n"
            "                      (uses the demo sender token in " + str(cfg.data_path) + ")"
        )
    _ensure_demo_sender(cfg) if demo else None
    uvicorn.run(asgi_app(cfg), host=cfg.server.host, port=cfg.server.port, log_level="info",
                access_log=cfg.server.access_log, lifespan="on", ws_ping_interval=None)


def _redact(url: str | None) -> str:
    if not url or "@" not in url:
        return url or ""
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def _demo_token_file(cfg: Any) -> Path:
    return Path(cfg.data_path) / "demo-sender-token"


def _ensure_demo_sender(cfg: Any) -> None:
    """The demo gets a service token for `herald send`, kept in the data directory (mode 0600)."""
    import os
    import secrets

    path = _demo_token_file(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    tokens = list(cfg.auth.get("serviceTokens") or [])
    tokens.append({"token": path.read_text().strip(), "subject": "external:herald-cli"})
    cfg.auth = {**cfg.auth, "serviceTokens": tokens}


@app.command()
def token(
    user: Annotated[str, typer.Argument(help="User entity ref, e.g. user:default/alice")],
    config: ConfigOpt = None,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
) -> None:
    """Print a user token signed with this Herald's key."""
    from herald.auth.authenticator import parse_user_ref
    from herald.auth.keys import load_or_create_signing_key
    from herald.auth.tokens import issue_user_token

    cfg = _load(config)
    try:
        ref = parse_user_ref(user)
    except ValueError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2) from None
    key = load_or_create_signing_key(cfg.data_path)
    ttl_s = ttl or int((cfg.auth or {}).get("userTokenTtlSeconds") or 12 * 3600)
    typer.echo(issue_user_token(key, ref, ttl_s=ttl_s))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None,
               revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations."""
    from herald.store import migrate

    cfg = _load(config)
    migrate.upgrade(cfg.database.url, revision)
    typer.echo(f"database at {revision}: {_redact(cfg.database.url)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. base.")],
                 config: ConfigOpt = None) -> None:
    """Revert database migrations."""
    from herald.store import migrate

    cfg = _load(config)
    migrate.downgrade(cfg.database.url, revision)
    typer.echo(f"database at {revision}")


@catalog_app.command("check")
def catalog_check(files: Annotated[list[Path], typer.Argument(help="Entity YAML files.")]) -> None:
    """Validate org files and print what they resolve to."""
    from herald.catalog.check import check_files, format_report

    report = check_files([str(f) for f in files])
    typer.echo(format_report(report))
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def send(
    title: Annotated[str, typer.Option(help="Notification title.")],
    to: Annotated[list[str] | None, typer.Option("--to", help="Entity ref (repeatable); omit to broadcast.")] = None,
    description: Annotated[str | None, typer.Option(help="Body text.")] = None,
    link: Annotated[str | None, typer.Option(help="Link.")] = None,
    severity: Annotated[str | None, typer.Option(help="critical|high|normal|low")] = None,
    topic: Annotated[str | None, typer.Option(help="Topic.")] = None,
    scope: Annotated[str | None, typer.Option(help="Scope (re-sends update in place).")] = None,
    url: Annotated[str | None, typer.Option(help="Herald base URL (default: from config).")] = None,
    service_token: Annotated[str | None, typer.Option(envvar="HERALD_TOKEN",
                                                      help="Service token ($HERALD_TOKEN).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Send a notification through the API."""
    import httpx

    cfg = _load(config)
    base = url or f"http://{cfg.server.host}:{cfg.server.port}"
    tok = service_token
    if not tok and _demo_token_file(cfg).exists():
        tok = _demo_token_file(cfg).read_text().strip()
    if not tok:
        typer.secho("no service token: pass --service-token or set HERALD_TOKEN", fg="red", err=True)
        raise typer.Exit(2)
    payload = {k: v for k, v in {"title": title, "description": description, "link": link,
                                 "severity": severity, "topic": topic, "scope": scope}.items() if v}
    recipients = {"type": "entity", "entityRef": to} if to else {"type": "broadcast"}
    try:
        r = httpx.post(base.rstrip("/") + "/api/notifications/notifications",
                       json={"recipients": recipients, "payload": payload},
                       headers={"Authorization": f"Bearer {tok}"}, timeout=30)
    except httpx.HTTPError as e:
        typer.secho(f"cannot reach {base}: {e}", fg="red", err=True)
        raise typer.Exit(1) from None
    if r.status_code != 200:
        typer.secho(f"{r.status_code}: {r.text}", fg="red", err=True)
        raise typer.Exit(1)
    sent = r.json()
    typer.echo(f"sent to {len(sent)} inbox(es)")
    json.dump(sent, sys.stdout, indent=2)
    sys.stdout.write("\n")


def run() -> None:
    app()
