"""Validation rules for what senders supply (spec §1.2, §3.3)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from herald.core.errors import InputError
from herald.core.model import Payload

MAX_SHORT_FIELD = 255
"""Title, topic, scope and icon are `varchar(255)` upstream; longer values are refused up front."""


def validate_payload(payload: Payload, app_base_url: str) -> None:
    if not payload.title:
        raise InputError("Invalid notification request received: missing title")
    for name in ("title", "topic", "scope", "icon"):
        value = getattr(payload, name)
        if value is not None and len(value) > MAX_SHORT_FIELD:
            raise InputError(f"Invalid notification request received: {name} is longer than "
                             f"{MAX_SHORT_FIELD} characters")
    if payload.link:
        validate_link(payload.link, app_base_url)


class _LinkRejected(Exception):
    pass


def validate_link(link: str, app_base_url: str) -> None:
    """Resolve `link` against the app base URL; only http(s) results are allowed."""
    base = app_base_url if app_base_url.endswith("/") else app_base_url + "/"
    relative = link[1:] if link.startswith("/") else link
    try:
        resolved = urljoin(base, relative)
        parts = urlsplit(resolved)
        _ = parts.port  # raises ValueError for a malformed port
        if parts.scheme not in ("http", "https"):
            raise _LinkRejected("Only HTTP/HTTPS links are allowed")
        if not parts.netloc:
            raise _LinkRejected("Invalid URL")
    except _LinkRejected as e:
        raise InputError("Invalid link provided", cause=e) from None
    except ValueError as e:
        raise InputError("Invalid link provided", cause=e) from None


def absolute_link(link: str | None, app_base_url: str, fallback_path: str = "notifications") -> str:
    """The link made absolute against the app base URL, as the email and Slack modules do."""
    base = app_base_url if app_base_url.endswith("/") else app_base_url + "/"
    if not link:
        return urljoin(base, fallback_path)
    resolved = urljoin(base, link.lstrip("/"))
    parts = urlsplit(resolved)
    if not parts.path:
        resolved += "/"
    return resolved
