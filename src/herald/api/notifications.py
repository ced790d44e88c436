"""The notifications REST API under `/api/notifications` (spec §2.4), current and legacy paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from herald.api import wire
from herald.api.errors import JSON_TYPE, error_response
from herald.api.principals import Authenticate, require_principal
from herald.api.query import parse_list_query, parse_topics_query, require_no_params
from herald.core.errors import HeraldError, InputError
from herald.core.model import Principal
from herald.core.service import NotificationService

MOUNT = "/api/notifications"
Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON_TYPE)


class NotificationsApi:
    def __init__(self, service: NotificationService, auth: Authenticate, *, max_body_bytes: int,
                 openapi: Callable[[], dict[str, Any]]) -> None:
        self.service = service
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self._openapi = openapi

    # -- plumbing -----------------------------------------------------------------------------

    async def _principal(self, request: Request, kind: Literal["user", "service"]) -> Principal:
        return await require_principal(self.auth, request, kind)

    async def _json(self, request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise InputError("request entity too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise InputError("request entity too large")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise InputError(f"Malformed JSON body: {e.msg} at position {e.pos}") from None

    def _guard(self, handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except HeraldError as e:
                return error_response(request, e, MOUNT)
            except Exception as e:
                return error_response(request, e, MOUNT)

        return endpoint

    # -- handlers -----------------------------------------------------------------------------

    async def list_notifications(self, request: Request) -> Response:
        user = (await self._principal(request, "user")).subject
        query = parse_list_query(request.scope["query_string"])
        page = await self.service.list_page(user, query)
        return json_response({"totalCount": page.total_count,
                              "notifications": [wire.db_shape(n) for n in page.notifications]})

    async def get(self, request: Request) -> Response:
        user = (await self._principal(request, "user")).subject
        require_no_params(request.scope["query_string"])
        n = await self.service.get(user, request.path_params["id"])
        return json_response(wire.db_shape(n))

    async def send(self, request: Request) -> Response:
        principal = await self._principal(request, "service")
        send = wire.parse_send(await self._json(request))
        sent = await self.service.send(principal, send)
        return json_response(wire.send_answer(sent, send.payload))

    async def update(self, request: Request) -> Response:
        user = (await self._principal(request, "user")).subject
        ids, read, saved = wire.parse_update(await self._json(request))
        rows = await self.service.update(user, ids, read=read, saved=saved)
        return json_response([wire.db_shape(n) for n in rows])

    async def status(self, request: Request) -> Response:
        user = (await self._principal(request, "user")).subject
        require_no_params(request.scope["query_string"])
        s = await self.service.status(user)
        return json_response({"unread": s.unread, "read": s.read})

    async def get_settings(self, request: Request) -> Response:
        user = (await self._principal(request, "user")).subject
        require_no_params(request.scope["query_string"])
        return json_response(wire.settings_shape(await self.service.settings(user)))

    async def post_settings(self, request: Request) -> Response:
        user = (await self._principal(request, "user")).subject
        doc = wire.parse_settings(await self._json(request))
        return json_response(wire.settings_shape(await self.service.save_settings(user, doc)))

    async def topics(self, request: Request) -> Response:
        user = (await self._principal(request, "user")).subject
        f = parse_topics_query(request.scope["query_string"])
        return json_response({"topics": await self.service.topics(user, f)})

    async def openapi(self, request: Request) -> Response:
        return json_response(self._openapi())

    # -- routes -------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        g = self._guard
        m = MOUNT
        return [
            Route(f"{m}/openapi.json", g(self.openapi), methods=["GET"]),
            Route(f"{m}/notifications", g(self.list_notifications), methods=["GET"]),
            Route(f"{m}/notifications", g(self.send), methods=["POST"]),
            Route(f"{m}/notifications/update", g(self.update), methods=["POST"]),
            Route(f"{m}/notifications/{{id}}", g(self.get), methods=["GET"]),
            Route(f"{m}/status", g(self.status), methods=["GET"]),
            Route(f"{m}/settings", g(self.get_settings), methods=["GET"]),
            Route(f"{m}/settings", g(self.post_settings), methods=["POST"]),
            Route(f"{m}/topics", g(self.topics), methods=["GET"]),
            Route(f"{m}/update", g(self.update), methods=["POST"]),
            Route(m, g(self.list_notifications), methods=["GET"]),
            Route(m, g(self.send), methods=["POST"]),
            Route(f"{m}/", g(self.list_notifications), methods=["GET"]),
            Route(f"{m}/", g(self.send), methods=["POST"]),
            Route(f"{m}/{{id}}", g(self.get), methods=["GET"]),
        ]
