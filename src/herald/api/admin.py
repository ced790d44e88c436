"""Operator endpoints for service principals: reload the org catalog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from herald.api.errors import error_response
from herald.api.notifications import json_response
from herald.api.principals import Authenticate, require_principal
from herald.core.errors import HeraldError

MOUNT = "/api/herald"


class AdminApi:
    def __init__(self, auth: Authenticate, reload_catalog: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.auth = auth
        self._reload_catalog = reload_catalog

    async def reload(self, request: Request) -> Response:
        try:
            await require_principal(self.auth, request, "service")
            return json_response(await self._reload_catalog())
        except HeraldError as e:
            return error_response(request, e, MOUNT)

    def routes(self) -> list[BaseRoute]:
        return [Route(f"{MOUNT}/catalog/reload", self.reload, methods=["POST"])]
