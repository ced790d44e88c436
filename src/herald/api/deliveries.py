"""Deliveries under `/api/herald`, for service principals only (operators and sending services):

    GET  /api/herald/deliveries?notification=<id>|send=<id>&status=&channel=&limit=&offset=
    GET  /api/herald/deliveries/dead?channel=&limit=&offset=
    POST /api/herald/deliveries/dead/retry?channel=        retry every dead letter (of a channel)
    GET  /api/herald/deliveries/{id}                        one delivery with its attempts
    POST /api/herald/deliveries/{id}/retry                  retry one dead letter
    GET  /api/herald/processors                             the processors, settings redacted

User tokens get 403: deliveries show other users' addresses and destinations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from herald.api.errors import error_response
from herald.api.notifications import json_response
from herald.api.principals import Authenticate, require_principal
from herald.core.clock import Clock
from herald.core.errors import InputError, NotFoundError
from herald.processors.runtime import DeliveryRuntime

MOUNT = "/api/herald"
Endpoint = Callable[[Request], Awaitable[Response]]
_MAX_LIMIT = 1000


def _query(request: Request, allowed: set[str]) -> dict[str, str]:
    raw = parse_qs(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
    out: dict[str, str] = {}
    for key, values in raw.items():
        if key not in allowed:
            raise InputError(f"Unknown query parameter '{key}' (allowed: {', '.join(sorted(allowed))})")
        if len(values) != 1:
            raise InputError(f"Query parameter '{key}' must be given once")
        out[key] = values[0]
    return out


def _int(q: dict[str, str], key: str, default: int, maximum: int) -> int:
    value = q.get(key)
    if value is None:
        return default
    if not value.isdigit() or int(value) > maximum:
        raise InputError(f"Query parameter '{key}' must be an integer between 0 and {maximum}")
    return int(value)


class DeliveriesApi:
    def __init__(self, runtime: DeliveryRuntime, auth: Authenticate, clock: Clock) -> None:
        self.runtime = runtime
        self.ledger = runtime.ledger
        self.auth = auth
        self.clock = clock

    async def _service(self, request: Request) -> None:
        await require_principal(self.auth, request, "service")

    def _guard(self, handler: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                await self._service(request)
                return await handler(request)
            except Exception as e:
                return error_response(request, e, MOUNT)

        return endpoint

    async def list_deliveries(self, request: Request) -> Response:
        q = _query(request, {"notification", "send", "status", "channel", "limit", "offset"})
        if "notification" not in q and "send" not in q and "status" not in q:
            raise InputError("Give at least one of the query parameters notification, send or status")
        rows = await self.ledger.find(notification=q.get("notification"), send=q.get("send"),
                                      status=q.get("status"), channel=q.get("channel"),
                                      limit=_int(q, "limit", 100, _MAX_LIMIT),
                                      offset=_int(q, "offset", 0, 10**9))
        return json_response({"deliveries": [r.to_json() for r in rows]})

    async def dead(self, request: Request) -> Response:
        q = _query(request, {"channel", "limit", "offset"})
        rows = await self.ledger.find(status="dead", channel=q.get("channel"),
                                      limit=_int(q, "limit", 100, _MAX_LIMIT), offset=_int(q, "offset", 0, 10**9))
        return json_response({"deliveries": [r.to_json() for r in rows]})

    async def retry_dead(self, request: Request) -> Response:
        q = _query(request, {"channel"})
        n = await self.ledger.retry_dead(now=self.clock.now_ms(), channel=q.get("channel"))
        self.runtime.worker.wake()
        return json_response({"retried": n})

    async def get(self, request: Request) -> Response:
        _query(request, set())
        record = await self.ledger.get(request.path_params["id"])
        if record is None:
            raise NotFoundError(f"No delivery with id {request.path_params['id']}")
        body = record.to_json()
        body["attempts"] = [a.to_json() for a in await self.ledger.attempts(record.id)]
        return json_response(body)

    async def retry(self, request: Request) -> Response:
        _query(request, set())
        record = await self.ledger.retry(request.path_params["id"], now=self.clock.now_ms())
        self.runtime.worker.wake()
        return json_response(record.to_json())

    async def processors(self, request: Request) -> Response:
        _query(request, set())
        return json_response({"processors": self.runtime.describe(),
                              "counts": await self.ledger.counts()})

    def routes(self) -> list[BaseRoute]:
        g = self._guard
        m = MOUNT
        return [
            Route(f"{m}/deliveries", g(self.list_deliveries), methods=["GET"]),
            Route(f"{m}/deliveries/dead", g(self.dead), methods=["GET"]),
            Route(f"{m}/deliveries/dead/retry", g(self.retry_dead), methods=["POST"]),
            Route(f"{m}/deliveries/{{id}}", g(self.get), methods=["GET"]),
            Route(f"{m}/deliveries/{{id}}/retry", g(self.retry), methods=["POST"]),
            Route(f"{m}/processors", g(self.processors), methods=["GET"]),
        ]
