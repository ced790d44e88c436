"""The composition root: builds every part from the configuration. The only module that imports
all adapters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from herald.api.admin import AdminApi
from herald.api.app import create_app, health_routes
from herald.api.deliveries import DeliveriesApi
from herald.api.herald_routes import HeraldApi
from herald.api.notifications import NotificationsApi
from herald.api.openapi import openapi_document
from herald.auth.authenticator import Authenticator
from herald.auth.config import AuthConfig, service_tokens_from_backstage
from herald.auth.keys import load_or_create_signing_key
from herald.catalog.file_catalog import FileCatalog
from herald.config import HeraldConfig
from herald.core.clock import SystemClock
from herald.core.errors import AuthenticationError
from herald.core.model import WEB_CHANNEL, Principal
from herald.core.ports import SignalPublisher
from herald.core.service import NotificationService
from herald.core.settings_model import (
    ChannelSetting,
    OriginSetting,
    SettingsDocument,
    SettingsPolicy,
    TopicSetting,
)
from herald.core.tasks import spawn
from herald.processors import Processor
from herald.processors.runtime import (
    DeliveryRuntime,
    DeliverySettings,
    delivery_settings,
    load_configured_processors,
)
from herald.retention import RetentionJob
from herald.signals import Signals, SignalsWsProtocol
from herald.store import migrate
from herald.store.database import Database, connect
from herald.store.sql_store import SqlNotificationStore
from herald.web import web_routes

_log = logging.getLogger("herald")


def default_settings(raw: dict[str, Any] | None) -> SettingsDocument | None:
    """`notifications.defaultSettings` (channel `enabled` and `origins` optional)."""
    if not raw:
        return None
    doc = SettingsDocument()
    for ch in raw.get("channels") or []:
        channel = ChannelSetting(str(ch["id"]), [], ch.get("enabled"))
        for o in ch.get("origins") or []:
            origin = OriginSetting(str(o["id"]), bool(o.get("enabled", True)), [])
            for t in o.get("topics") or []:
                origin.topics.append(TopicSetting(str(t["id"]), bool(t.get("enabled", True))))
            channel.origins.append(origin)
        doc.channels.append(channel)
    return doc


def auth_config(config: HeraldConfig) -> AuthConfig:
    raw = dict(config.auth)
    external = ((config.backend.get("auth") or {}).get("externalAccess")) or []
    auth = AuthConfig.model_validate(raw)
    extra = service_tokens_from_backstage(external) if external else []
    updates: dict[str, Any] = {}
    if extra:
        updates["service_tokens"] = (*auth.service_tokens, *extra)
    if config.demo and "dev" not in raw:
        updates["dev"] = True
    return auth.model_copy(update=updates) if updates else auth


@dataclass
class Herald:
    """Everything one process runs, wired."""

    config: HeraldConfig
    db: Database
    catalog: FileCatalog
    authenticator: Authenticator
    service: NotificationService
    signals: Signals
    routes: list[BaseRoute]
    deliveries: DeliveryRuntime | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self) -> None:
        if self.config.catalog.watch and self.catalog.paths:
            self._tasks.append(spawn(self.catalog.watch(self.config.catalog.watch_interval_seconds),
                                     name="catalog-watch"))
        retention = RetentionJob(self.service, self.config.notifications.retention_ms)
        self._tasks.append(spawn(retention.run_forever(), name="retention"))
        await self.signals.start()
        if self.deliveries is not None:
            await self.deliveries.start()

    async def close_connections(self) -> None:
        """Before the server drains: end WebSockets and SSE streams (streams never end by themselves)."""
        await self.signals.close_connections()

    async def reload_catalog(self) -> dict[str, Any]:
        swapped = await self.catalog.reload()
        users, groups, others = self.catalog.snapshot.counts()
        return {"reloaded": swapped, "users": users, "groups": groups, "entities": others,
                "errors": [str(e) for e in self.catalog.errors]}

    async def stop(self) -> None:
        if self.deliveries is not None:
            await self.deliveries.stop()
        await self.signals.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await t
        await self.authenticator.aclose()
        await self.db.close()


def _catalog(config: HeraldConfig) -> FileCatalog:
    return FileCatalog.from_files(config.catalog.files) if config.catalog.files else FileCatalog.demo()


def _processing(config: HeraldConfig, catalog: FileCatalog, clock: SystemClock
                ) -> tuple[list[Processor[Any]], SettingsPolicy, DeliverySettings]:
    """The configured processors, the settings policy over `Web` + their channels, delivery settings."""
    processors = load_configured_processors(config.notifications.processors, app_base_url=config.app.base_url,
                                            directory=catalog, data_dir=config.data_path, clock=clock)
    delivery = delivery_settings((config.notifications.model_extra or {}).get("delivery"))
    policy = SettingsPolicy(default_settings(config.notifications.default_settings),
                            [WEB_CHANNEL, *(p.name for p in processors)])
    return processors, policy, delivery


async def _open(config: HeraldConfig) -> tuple[Database, FileCatalog, SystemClock, list[Processor[Any]],
                                             SettingsPolicy, DeliverySettings]:
    """Migrate, load the org and the processors (a bad one stops start-up before anything opens), connect."""
    url = config.database.url
    assert url is not None
    if config.database.migrate_on_start:
        await migrate.upgrade_async(url)
    catalog = _catalog(config)
    clock = SystemClock()
    processors, policy, delivery = _processing(config, catalog, clock)
    return await connect(url), catalog, clock, processors, policy, delivery


async def build(config: HeraldConfig, *, ws_protocol_class: type[SignalsWsProtocol] | None = None) -> Herald:
    data = config.data_path
    data.mkdir(parents=True, exist_ok=True)
    db, catalog, clock, processors, policy, delivery = await _open(config)
    authenticator = Authenticator(auth_config(config), load_or_create_signing_key(data))
    deliveries = DeliveryRuntime.create(processors, db, policy, delivery, clock)

    async def authenticate_request(request: Request) -> Principal:
        client = request.client
        principal = await authenticator.authenticate(request.headers.get("authorization"), request.headers,
                                                     client.host if client else None)
        if principal is None:
            raise AuthenticationError("Missing credentials")
        return principal

    signals = Signals(config.signals, db, authenticate_token=authenticator.authenticate_token,
                      authenticate_request=authenticate_request, ws_protocol_class=ws_protocol_class)
    publisher: SignalPublisher = signals.publisher
    service = NotificationService(
        store=SqlNotificationStore(db), resolver=catalog, signals=publisher, policy=policy,
        clock=clock, app_base_url=config.app.base_url, hooks=deliveries.hooks,
    )
    api = NotificationsApi(service, authenticator, max_body_bytes=config.server.max_body_bytes,
                           openapi=openapi_document)

    def directory() -> list[dict[str, Any]]:
        return [{"ref": u.ref, "displayName": u.display_name, "email": u.email} for u in catalog.users()]

    herald_api = HeraldApi(jwks=authenticator.jwks, issue_dev_token=authenticator.issue_dev_token,
                           users=directory, dev=authenticator.config.dev,
                           authenticate=authenticator.authenticate,
                           issue_user_token=authenticator.issue_user_token,
                           app_base_url=config.app.base_url,
                           proxy=authenticator.config.proxy is not None)

    async def ready() -> bool:
        try:
            await db.fetchrow("SELECT 1")
            return True
        except Exception:
            return False

    herald = Herald(config=config, db=db, catalog=catalog, authenticator=authenticator, service=service,
                    signals=signals, routes=[], deliveries=deliveries)
    herald.routes = [
        *health_routes(ready), *api.routes(), *signals.routes(), *herald_api.routes(),
        *DeliveriesApi(deliveries, authenticator, clock).routes(),
        *AdminApi(authenticator, herald.reload_catalog).routes(),
        *web_routes(),  # last: it serves `/`
    ]
    return herald


async def build_worker(config: HeraldConfig) -> tuple[DeliveryRuntime, Database, FileCatalog]:
    """What `herald worker` runs: the configured processors and the delivery worker, no HTTP.

    The caller starts `runtime.start(run_worker=True)`, and stops the runtime and closes the
    database when done."""
    db, catalog, clock, processors, policy, delivery = await _open(config)
    return DeliveryRuntime.create(processors, db, policy, delivery, clock), db, catalog


def asgi_app(config: HeraldConfig, *, ws_protocol_class: type[SignalsWsProtocol] | None = None) -> Starlette:
    """The whole service as one ASGI app; parts are built in the lifespan (no work at import)."""
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        herald = await build(config, ws_protocol_class=ws_protocol_class)
        app.router.routes.extend(herald.routes)
        app.state.herald = herald
        await herald.start()
        try:
            yield
        finally:
            await herald.stop()

    return create_app([], lifespan=lifespan)


def run_server(config: HeraldConfig) -> None:
    """Serve until interrupted: uvicorn with Herald's signals WebSocket protocol (spec §4.3)."""
    import uvicorn

    from herald.signals import make_ws_protocol, uvicorn_ws_options

    ws_protocol = make_ws_protocol()
    app = asgi_app(config, ws_protocol_class=ws_protocol)

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            herald: Herald | None = getattr(app.state, "herald", None)
            if herald is not None:
                await herald.close_connections()
            await super().shutdown(sockets)

    uv = uvicorn.Config(
        app, host=config.server.host, port=config.server.port, log_level="info",
        access_log=config.server.access_log, lifespan="on", timeout_graceful_shutdown=10,
        server_header=False,
        **uvicorn_ws_options(ws_protocol, ping_interval_seconds=config.signals.ping_interval_seconds),
    )
    _Server(uv).run()
