"""One place that turns errors into Backstage's error body (spec §2.3)."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from herald.core.errors import HeraldError

_log = logging.getLogger("herald.api")
JSON_TYPE = "application/json; charset=utf-8"


def mount_relative_url(scope: MutableMapping[str, Any], mount: str) -> str:
    """Path and raw query below the plugin mount, as Backstage reports it (`/`, `/?foo=bar`)."""
    raw: bytes = scope.get("raw_path") or str(scope.get("path", "")).encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    if path.startswith(mount):
        path = path[len(mount):]
    if not path.startswith("/"):
        path = "/" + path
    qs: bytes = scope.get("query_string", b"")
    return path + ("?" + qs.decode("latin-1") if qs else "")


def error_body(name: str, message: str, status: int, method: str, url: str,
               cause: BaseException | None = None) -> bytes:
    err: dict[str, Any] = {"name": name, "message": message}
    if cause is not None:
        err["cause"] = {"name": _cause_name(cause), "message": str(cause)}
    return orjson.dumps({"error": err, "request": {"method": method, "url": url},
                         "response": {"statusCode": status}})


def _cause_name(e: BaseException) -> str:
    return e.name if isinstance(e, HeraldError) else "Error"


def error_response(request: Request, exc: BaseException, mount: str) -> Response:
    url = mount_relative_url(request.scope, mount)
    if isinstance(exc, HeraldError):
        return Response(error_body(exc.name, exc.message, exc.status, request.method, url, exc.cause),
                        status_code=exc.status, media_type=JSON_TYPE)
    _log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(error_body("Error", "Internal server error", 500, request.method, url),
                    status_code=500, media_type=JSON_TYPE)
