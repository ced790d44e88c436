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
deliveries_app = typer.Typer(no_args_is_help=True, help="Durable deliveries (email, webhooks, Slack): "
                             "inspect them, list dead letters, retry.")
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")
app.add_typer(deliveries_app, name="deliveries")

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
    from herald.bootstrap import run_server

    overrides: dict[str, Any] = {"server": {}}
    if host:
        overrides["server"]["host"] = host
    if port:
        overrides["server"]["port"] = port
    cfg = _load(config, overrides)
    if demo is None:
        demo = cfg.demo or (config is None and not cfg.catalog.files)
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
    if demo:
        _ensure_demo_sender(cfg)
        _demo_email(cfg)
    _check_processors(cfg)
    run_server(cfg)


def _check_processors(cfg: Any) -> None:
    """Refuse to start, with one line, when a processor's configuration is wrong."""
    from herald.processors import ProcessorConfigError
    from herald.processors.runtime import check_configuration

    try:
        check_configuration(cfg.notifications.processors, (cfg.notifications.model_extra or {}).get("delivery"))
    except ProcessorConfigError as e:
        typer.secho(f"configuration error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None


def _demo_email(cfg: Any) -> None:
    """The demo shows an Email channel too: messages are written as .eml files under <dataDir>/mail."""
    processors = cfg.notifications.processors
    if "email" not in processors:
        processors["email"] = {"transportConfig": {"transport": "stream"}, "sender": "herald@localhost"}
        typer.echo(f"  Email (demo): messages are written to {Path(cfg.data_path) / 'mail'}")


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


def _post_as_service(config: Path | None, url: str | None, token: str | None, path: str, body: Any) -> Any:
    """POST to a running Herald with a service token (the demo's own when none is given); exits on errors."""
    import httpx

    cfg = _load(config)
    base = url or f"http://{cfg.server.host}:{cfg.server.port}"
    if not token and _demo_token_file(cfg).exists():
        token = _demo_token_file(cfg).read_text().strip()
    if not token:
        typer.secho("no service token: pass --service-token or set HERALD_TOKEN", fg="red", err=True)
        raise typer.Exit(2)
    try:
        r = httpx.post(base.rstrip("/") + path, json=body, headers={"Authorization": f"Bearer {token}"},
                       timeout=60)
    except httpx.HTTPError as e:
        typer.secho(f"cannot reach {base}: {e}", fg="red", err=True)
        raise typer.Exit(1) from None
    if r.status_code != 200:
        typer.secho(f"{r.status_code}: {r.text}", fg="red", err=True)
        raise typer.Exit(1)
    return r.json()


@catalog_app.command("reload")
def catalog_reload(
    url: Annotated[str | None, typer.Option(help="Herald base URL (default: from config).")] = None,
    service_token: Annotated[str | None, typer.Option(envvar="HERALD_TOKEN",
                                                      help="Service token ($HERALD_TOKEN).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Make a running Herald re-read its org files now (it also does when they change)."""
    body = _post_as_service(config, url, service_token, "/api/herald/catalog/reload", None)
    state = "reloaded" if body["reloaded"] else "kept the previous org (see errors)"
    typer.echo(f"{state}: {body['users']} users, {body['groups']} groups, {body['entities']} other entities")
    for err in body.get("errors", []):
        typer.secho(f"  error: {err}", fg="red")
    raise typer.Exit(0 if body["reloaded"] else 1)


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
    payload = {k: v for k, v in {"title": title, "description": description, "link": link,
                                 "severity": severity, "topic": topic, "scope": scope}.items() if v}
    recipients = {"type": "entity", "entityRef": to} if to else {"type": "broadcast"}
    sent = _post_as_service(config, url, service_token, "/api/notifications/notifications",
                            {"recipients": recipients, "payload": payload})
    typer.echo(f"sent to {len(sent)} inbox(es)")
    json.dump(sent, sys.stdout, indent=2)
    sys.stdout.write("\n")


# -- deliveries -------------------------------------------------------------------------------


@app.command()
def worker(
    config: ConfigOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Validate the processors' configuration, print "
                                                        "it (secrets redacted) and exit.")] = False,
) -> None:
    """Deliver from the ledger without serving HTTP. Run any number of them; on the servers set
    notifications.delivery.worker: external so that only workers deliver."""
    import asyncio

    cfg = _load(config)
    raise typer.Exit(asyncio.run(_run_worker(cfg, check)))


async def _run_worker(cfg: Any, check: bool) -> int:
    import asyncio
    import signal

    from herald.bootstrap import build_worker
    from herald.core.tasks import spawn
    from herald.processors import ProcessorConfigError

    try:
        runtime, db, catalog = await build_worker(cfg)
    except ProcessorConfigError as e:
        typer.secho(f"configuration error: {e}", fg="red", err=True)
        return 2
    try:
        if check:
            for p in runtime.describe():
                typer.echo(f"{p['name']} ({p['kind']}): {json.dumps(p['settings'])}")
            if not runtime.processors:
                typer.echo("no processors are configured (notifications.processors)")
            return 0
        if not runtime.processors:
            typer.secho("no processors are configured (notifications.processors): nothing to deliver",
                        fg="red", err=True)
            return 2
        try:
            await runtime.start(run_worker=True)
        except ProcessorConfigError as e:
            typer.secho(f"configuration error: {e}", fg="red", err=True)
            return 2
        watch = spawn(catalog.watch(cfg.catalog.watch_interval_seconds)) if cfg.catalog.watch and catalog.paths \
            else None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"herald worker {runtime.worker.worker_id}: delivering {', '.join(runtime.channels)}")
        await stop.wait()
        typer.echo("stopping: letting in-flight deliveries finish")
        if watch is not None:
            watch.cancel()
        await runtime.stop()
        return 0
    finally:
        await db.close()


async def _ledger(cfg: Any) -> Any:
    from herald.processors.runtime import Ledger
    from herald.store.database import connect

    return Ledger(await connect(cfg.database.url))


def _print_rows(rows: list[Any], as_json: bool) -> None:
    if as_json:
        json.dump([r.to_json() for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if not rows:
        typer.echo("no deliveries")
        return
    for r in rows:
        who = r.user or "-"
        if r.target:
            who = f"{who} -> {r.target}" if r.user else r.target
        typer.echo(f"{r.id}  {r.status:<10} {r.channel:<12} attempts={r.attempts:<3} {who}  "
                   f"{(r.detail or '')[:100]}")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LimitOpt = Annotated[int, typer.Option(help="At most this many rows.")]


@deliveries_app.command("list")
def deliveries_list(
    notification: Annotated[str | None, typer.Option(help="Deliveries of this notification id.")] = None,
    send: Annotated[str | None, typer.Option(help="Deliveries of one send (its sendId).")] = None,
    status: Annotated[str | None, typer.Option(help="pending|delivering|delivered|skipped|dead|superseded")] = None,
    channel: Annotated[str | None, typer.Option(help="Email, Webhook, SlackNotificationProcessor …")] = None,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """List deliveries of a notification, of a send, or by status."""
    import asyncio

    if not (notification or send or status):
        typer.secho("give --notification, --send or --status", fg="red", err=True)
        raise typer.Exit(2)
    cfg = _load(config)

    async def run() -> list[Any]:
        ledger = await _ledger(cfg)
        try:
            rows: list[Any] = await ledger.find(notification=notification, send=send, status=status,
                                                channel=channel, limit=limit)
            return rows
        finally:
            await ledger.db.close()

    _print_rows(_guarded(lambda: asyncio.run(run())), as_json)


@deliveries_app.command("dead")
def deliveries_dead(channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
                    limit: LimitOpt = 100, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List dead letters: deliveries that failed permanently or ran out of attempts."""
    import asyncio

    cfg = _load(config)

    async def run() -> list[Any]:
        ledger = await _ledger(cfg)
        try:
            rows: list[Any] = await ledger.find(status="dead", channel=channel, limit=limit)
            return rows
        finally:
            await ledger.db.close()

    _print_rows(asyncio.run(run()), as_json)


@deliveries_app.command("show")
def deliveries_show(id: Annotated[str, typer.Argument(help="Delivery id.")], config: ConfigOpt = None) -> None:
    """One delivery with every attempt (JSON)."""
    import asyncio

    cfg = _load(config)

    async def run() -> dict[str, Any] | None:
        ledger = await _ledger(cfg)
        try:
            record = await ledger.get(id)
            if record is None:
                return None
            body: dict[str, Any] = record.to_json()
            body["attempts"] = [a.to_json() for a in await ledger.attempts(record.id)]
            return body
        finally:
            await ledger.db.close()

    body = asyncio.run(run())
    if body is None:
        typer.secho(f"no delivery with id {id}", fg="red", err=True)
        raise typer.Exit(1)
    json.dump(body, sys.stdout, indent=2)
    sys.stdout.write("\n")


@deliveries_app.command("retry")
def deliveries_retry(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead delivery ids.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Retry every dead letter.")] = False,
    channel: Annotated[str | None, typer.Option(help="With --all-dead: only this channel.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Queue dead letters again, with a fresh budget of attempts (a running worker picks them up)."""
    import asyncio

    from herald.core.clock import SystemClock

    if not ids and not all_dead:
        typer.secho("give delivery ids or --all-dead", fg="red", err=True)
        raise typer.Exit(2)
    cfg = _load(config)

    async def run() -> list[str]:
        ledger = await _ledger(cfg)
        now = SystemClock().now_ms()
        try:
            if all_dead:
                n = await ledger.retry_dead(now=now, channel=channel)
                return [f"queued {n} dead deliveries again"]
            out = []
            for i in ids or []:
                record = await ledger.retry(i, now=now)
                out.append(f"{record.id}  {record.status}")
            return out
        finally:
            await ledger.db.close()

    for line in _guarded(lambda: asyncio.run(run())):
        typer.echo(line)


@deliveries_app.command("stats")
def deliveries_stats(config: ConfigOpt = None) -> None:
    """Number of deliveries per channel and status."""
    import asyncio

    cfg = _load(config)

    async def run() -> dict[str, dict[str, int]]:
        ledger = await _ledger(cfg)
        try:
            counts: dict[str, dict[str, int]] = await ledger.counts()
            return counts
        finally:
            await ledger.db.close()

    counts = asyncio.run(run())
    if not counts:
        typer.echo("no deliveries")
    for channel_name, by_status in counts.items():
        typer.echo(f"{channel_name}: " + ", ".join(f"{k}={v}" for k, v in by_status.items()))


def _guarded(call: Any) -> Any:
    """Run `call`; an expected error (unknown id, not dead …) is printed, exit code 1."""
    from herald.core.errors import HeraldError

    try:
        return call()
    except HeraldError as e:
        typer.secho(e.message, fg="red", err=True)
        raise typer.Exit(1) from None


def run() -> None:
    app()
