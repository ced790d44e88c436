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
from starlette.routing import BaseRoute

from herald.api.app import create_app, health_routes
from herald.api.herald_routes import HeraldApi
from herald.api.notifications import NotificationsApi
from herald.api.openapi import openapi_document
from herald.auth.authenticator import Authenticator
from herald.auth.config import AuthConfig, service_tokens_from_backstage
from herald.auth.keys import load_or_create_signing_key
from herald.catalog.file_catalog import FileCatalog
from herald.config import HeraldConfig
from herald.core.clock import SystemClock
from herald.core.model import WEB_CHANNEL
from herald.core.ports import SignalPublisher
from herald.core.service import NotificationService
from herald.core.settings_model import ChannelSetting, OriginSetting, SettingsDocument, TopicSetting
from herald.core.tasks import spawn
from herald.retention import RetentionJob
from herald.store import migrate
from herald.store.database import Database, connect
from herald.store.sql_store import SqlNotificationStore

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


class _NoSignals:
    async def publish(self, signals: Any) -> None:
        return None


@dataclass
class Herald:
    """Everything one process runs, wired."""

    config: HeraldConfig
    db: Database
    catalog: FileCatalog
    authenticator: Authenticator
    service: NotificationService
    signals: SignalPublisher
    routes: list[BaseRoute]
    background: list[Any] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self) -> None:
        if self.config.catalog.watch and self.catalog.paths:
            self._tasks.append(spawn(self.catalog.watch(self.config.catalog.watch_interval_seconds),
                                     name="catalog-watch"))
        retention = RetentionJob(self.service, self.config.notifications.retention_ms)
        self._tasks.append(spawn(retention.run_forever(), name="retention"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await t
        await self.authenticator.aclose()
        await self.db.close()


async def build(config: HeraldConfig) -> Herald:
    data = config.data_path
    data.mkdir(parents=True, exist_ok=True)
    url = config.database.url
    assert url is not None
    if config.database.migrate_on_start:
        await migrate.upgrade_async(url)
    db = await connect(url)
    catalog = FileCatalog.from_files(config.catalog.files) if config.catalog.files else FileCatalog.demo()
    authenticator = Authenticator(auth_config(config), load_or_create_signing_key(data))
    from herald.core.settings_model import SettingsPolicy

    channels = [WEB_CHANNEL]
    policy = SettingsPolicy(default_settings(config.notifications.default_settings), channels)
    signals: SignalPublisher = _NoSignals()
    service = NotificationService(
        store=SqlNotificationStore(db), resolver=catalog, signals=signals, policy=policy,
        clock=SystemClock(), app_base_url=config.app.base_url,
    )
    api = NotificationsApi(service, authenticator, max_body_bytes=config.server.max_body_bytes,
                           openapi=openapi_document)

    def directory() -> list[dict[str, Any]]:
        return [{"ref": u.ref, "displayName": u.display_name, "email": u.email} for u in catalog.users()]

    herald_api = HeraldApi(jwks=authenticator.jwks, issue_dev_token=authenticator.issue_dev_token,
                           users=directory, dev=authenticator.config.dev)

    async def ready() -> bool:
        try:
            await db.fetchrow("SELECT 1")
            return True
        except Exception:
            return False

    routes: list[BaseRoute] = [*health_routes(ready), *api.routes(), *herald_api.routes()]
    return Herald(config=config, db=db, catalog=catalog, authenticator=authenticator, service=service,
                  signals=signals, routes=routes)


def asgi_app(config: HeraldConfig) -> Starlette:
    """The whole service as one ASGI app; parts are built in the lifespan (no work at import)."""
    holder: dict[str, Herald] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        herald = await build(config)
        holder["herald"] = herald
        app.router.routes.extend(herald.routes)
        app.state.herald = herald
        await herald.start()
        try:
            yield
        finally:
            await herald.stop()

    return create_app([], lifespan=lifespan)
