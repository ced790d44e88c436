"""Herald's configuration: one typed object, loaded once from YAML and `HERALD_*` variables.

The `notifications:` section of a Backstage `app-config.yaml` is accepted as-is (retention,
defaultSettings, concurrencyLimit, throttleInterval, processors), and so are `app.baseUrl` and
`backend.auth.externalAccess` static tokens. Environment variables override the file:
`HERALD_DATABASE_URL`, `HERALD_SERVER__PORT`, `HERALD_NOTIFICATIONS__RETENTION=false` — a double
underscore descends one level; values are parsed as YAML scalars.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from herald.durations import duration_ms


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=False)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


class _Camel(_Model):
    model_config = ConfigDict(populate_by_name=True, extra="allow", alias_generator=_camel)


class AppConfig(_Camel):
    base_url: str = "http://localhost:7007"


class ServerConfig(_Camel):
    host: str = "127.0.0.1"
    port: int = 7007
    max_body_bytes: int = 100 * 1024
    access_log: bool = False


class DatabaseConfig(_Camel):
    url: str | None = None
    """`sqlite:///path/herald.db` (default, in the data directory) or `postgresql://user@host/db`."""
    pool_size: int = 10
    migrate_on_start: bool = True


class CatalogConfig(_Camel):
    files: list[str] = Field(default_factory=list)
    """Backstage entity YAML files. None configured: the built-in demo org."""
    watch: bool = True
    watch_interval_seconds: float = 2.0


class NotificationsConfig(_Camel):
    """The `notifications:` section of a Backstage app-config (spec §5.1)."""

    concurrency_limit: int = 10
    throttle_interval: Any = None
    default_settings: dict[str, Any] | None = None
    retention: Any = None
    processors: dict[str, Any] = Field(default_factory=dict)

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: Any) -> Any:
        if v is None or v is False:
            return v
        duration_ms(v)
        return v

    @property
    def retention_ms(self) -> int | None:
        """None when retention is disabled (`false`); default one year."""
        if self.retention is False:
            return None
        return duration_ms(self.retention if self.retention is not None else {"years": 1})


class SignalsConfig(_Camel):
    max_connections_per_user: int = 50
    max_subscriptions_per_connection: int = 50
    send_buffer_frames: int = 1000
    ping_interval_seconds: float = 30.0
    event_log_max_age_seconds: int = 24 * 3600
    event_log_max_events: int = 1_000_000


class HeraldConfig(_Camel):
    app: AppConfig = Field(default_factory=AppConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    auth: dict[str, Any] = Field(default_factory=dict)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    signals: SignalsConfig = Field(default_factory=SignalsConfig)
    data_dir: str = "herald-data"
    demo: bool = False
    """The embedded demo: demo org, dev sign-in (loopback only)."""
    backend: dict[str, Any] = Field(default_factory=dict)
    """Accepted from a Backstage app-config: `backend.auth.externalAccess` static tokens."""

    @model_validator(mode="after")
    def _defaults(self) -> HeraldConfig:
        if not self.database.url:
            self.database.url = f"sqlite:///{Path(self.data_dir) / 'herald.db'}"
        return self

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _env_overrides(environ: Mapping[str, str], prefix: str = "HERALD_") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(prefix) or key == prefix + "CONFIG":
            continue
        path = [p.lower() for p in key[len(prefix):].split("__") if p]
        if len(path) == 1 and "_" in path[0] and path[0].split("_", 1)[0] in {
                "database", "server", "app", "catalog", "signals", "auth", "notifications"}:
            path = path[0].split("_", 1)  # HERALD_DATABASE_URL -> database.url
        node = out
        for p in path[:-1]:
            node = node.setdefault(_camel(p), {})
        node[_camel(path[-1])] = _parse_scalar(raw)
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> HeraldConfig:
    """File (or `HERALD_CONFIG`), then environment, then explicit overrides (CLI flags)."""
    env = os.environ if environ is None else environ
    path = path or env.get("HERALD_CONFIG")
    data: dict[str, Any] = {}
    if path:
        text = Path(path).read_text(encoding="utf-8")
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the configuration must be a mapping")
        data = loaded
    _merge(data, _env_overrides(env))
    if overrides:
        _merge(data, overrides)
    return HeraldConfig.model_validate(data)
