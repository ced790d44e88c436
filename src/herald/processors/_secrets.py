"""Secrets in processor settings are masked by construction: a `SecretStr` (or `SecretUrl`) field
renders masked in `repr`, `str`, logs, JSON and `redacted()`; only `get_secret_value()` reveals it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

MASK = "**********"


class SecretUrl(SecretStr):
    """A URL whose path, query and credentials are secret (incoming-webhook URLs carry their token
    in the path). Shown as `scheme://host[:port]/****`."""

    def _display(self) -> str:
        try:
            parts = urlsplit(self.get_secret_value())
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return MASK
        if ":" in host:
            host = f"[{host}]"
        return f"{parts.scheme}://{host}{port}/****" if parts.scheme and host else MASK


def redact(value: Any) -> Any:
    """JSON-able data with every secret masked (models use their field aliases)."""
    if isinstance(value, SecretStr):
        return str(value)
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        out: dict[str, Any] = {}
        for name, info in fields.items():
            key = info.alias or name
            out[key] = redact(getattr(value, name))
        return out
    if isinstance(value, dict):
        return {str(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class _SecretLogFilter(logging.Filter):
    """Masks registered secret values in the records of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = message
        for secret in self.secrets:
            if secret in masked:
                masked = masked.replace(secret, "****")
        if masked != message:
            record.msg, record.args = masked, None
        return True


_LIBRARY_LOGGERS = ("httpx", "httpcore")
"""Libraries that log request URLs (httpx logs every request at INFO)."""


def secret_values(value: Any) -> list[str]:
    """Every secret in settings, as it could appear in a library's log line (for a SecretUrl, its
    path, query and credentials)."""
    out: list[str] = []
    if isinstance(value, SecretUrl):
        raw = value.get_secret_value()
        try:
            parts = urlsplit(raw)
        except ValueError:
            return [raw]
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        out += [raw] + ([tail] if len(tail) > 1 else [])
        if parts.password:
            out.append(parts.password)
    elif isinstance(value, SecretStr):
        out.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            out += secret_values(getattr(value, name))
    elif isinstance(value, dict):
        for v in value.values():
            out += secret_values(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            out += secret_values(v)
    return out


def protect_in_logs(settings: BaseModel) -> None:
    """Mask the settings' secrets in the log records of libraries that log URLs."""
    values = {v for v in secret_values(settings) if len(v) >= 4}
    if not values:
        return
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        existing = next((f for f in logger.filters if isinstance(f, _SecretLogFilter)), None)
        if existing is None:
            existing = _SecretLogFilter()
            logger.addFilter(existing)
        existing.secrets |= values
