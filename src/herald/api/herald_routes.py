"""Herald's own endpoints beside the Backstage API: public keys, dev sign-in, the user directory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from herald.api.errors import error_response
from herald.api.notifications import json_response
from herald.auth.authenticator import is_loopback
from herald.core.errors import HeraldError, InputError

MOUNT = "/api/herald"


class HeraldApi:
    def __init__(self, *, jwks: Callable[[], dict[str, Any]],
                 issue_dev_token: Callable[[str, str | None], str],
                 users: Callable[[], list[dict[str, Any]]], dev: bool) -> None:
        self._jwks = jwks
        self._issue_dev_token = issue_dev_token
        self._users = users
        self.dev = dev

    async def jwks(self, request: Request) -> Response:
        return json_response(self._jwks())

    async def dev_token(self, request: Request) -> Response:
        try:
            try:
                body = await request.json()
            except ValueError:
                raise InputError("Malformed JSON body") from None
            user = body.get("user") if isinstance(body, dict) else None
            if not isinstance(user, str) or not user:
                raise InputError("request/body must have required property 'user'")
            client = request.client
            token = self._issue_dev_token(user, client.host if client else None)
            return json_response({"token": token})
        except HeraldError as e:
            return error_response(request, e, MOUNT)

    async def info(self, request: Request) -> Response:
        return json_response({"dev": self.dev})

    async def users(self, request: Request) -> Response:
        """The catalog's users, for the demo sign-in picker (dev mode, loopback callers only)."""
        client = request.client
        if not self.dev or not is_loopback(client.host if client else None):
            return json_response({"users": []})
        return json_response({"users": self._users()})

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{MOUNT}/.well-known/jwks.json", self.jwks, methods=["GET"]),
            Route(f"{MOUNT}/info", self.info, methods=["GET"]),
            Route(f"{MOUNT}/dev/token", self.dev_token, methods=["POST"]),
            Route(f"{MOUNT}/dev/users", self.users, methods=["GET"]),
        ]
