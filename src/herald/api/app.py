"""The ASGI application: routes, health, and Backstage-shaped 404/405 answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from herald.api.errors import JSON_TYPE, error_body, mount_relative_url
from herald.api.notifications import MOUNT, json_response

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def health_routes(ready: Callable[[], Awaitable[bool]]) -> list[BaseRoute]:
    async def live(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readiness(request: Request) -> Response:
        ok = await ready()
        return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)

    return [
        Route("/healthz", live, methods=["GET"]),
        Route("/readyz", readiness, methods=["GET"]),
        Route("/.backstage/health/v1/liveness", live, methods=["GET"]),
        Route("/.backstage/health/v1/readiness", readiness, methods=["GET"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    name = {404: "NotFoundError", 405: "NotAllowedError"}.get(exc.status_code, "Error")
    message = "Not found" if exc.status_code == 404 else str(exc.detail)
    path = request.url.path
    url = mount_relative_url(request.scope, MOUNT) if path.startswith(MOUNT) else path
    return Response(error_body(name, message, exc.status_code, request.method, url),
                    status_code=exc.status_code, media_type=JSON_TYPE, headers=exc.headers)


def create_app(routes: Sequence[BaseRoute], lifespan: Lifespan | None = None,
               middleware: Sequence[Any] = ()) -> Starlette:
    return Starlette(routes=list(routes), lifespan=lifespan, middleware=list(middleware),
                     exception_handlers={HTTPException: _http_error})
