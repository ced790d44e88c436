"""Herald's own endpoints beside the Backstage API: public keys, dev sign-in, the user directory,
and the browser session of the inbox page."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from herald.api.errors import error_response
from herald.api.notifications import json_response
from herald.auth.authenticator import is_loopback
from herald.core.errors import AuthenticationError, HeraldError, InputError, NotAllowedError, NotFoundError
from herald.core.model import Principal

MOUNT = "/api/herald"

SESSION_TTL_S = 3600
"""Lifetime of a browser session token; the page renews it well before it runs out."""
MIN_SESSION_TTL_S = 30
"""A presented token with less life left than this is not exchanged: sign in again."""
_BEARER = re.compile(r"^\s*Bearer +(\S+)\s*$", re.IGNORECASE)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class AuthenticateRequest(Protocol):
    async def __call__(self, authorization: str | None, headers: Mapping[str, str],
                       client_host: str | None) -> Principal | None: ...


class IssueUserToken(Protocol):
    def __call__(self, user_ref: str, *, ownership_refs: Sequence[str] | None = None,
                 ttl_s: int | None = None) -> str: ...


class HeraldApi:
    """`authenticate` and `issue_user_token` (the `Authenticator`'s methods) enable
    `POST /api/herald/session`; without them it answers 404. `app_base_url` is where relative
    notification links point (the Backstage app) and `proxy` whether a trusted reverse proxy may
    name the user (the page then asks for a session without a token); both are told to the page by
    `GET /api/herald/info`."""

    def __init__(self, *, jwks: Callable[[], dict[str, Any]],
                 issue_dev_token: Callable[[str, str | None], str],
                 users: Callable[[], list[dict[str, Any]]], dev: bool,
                 authenticate: AuthenticateRequest | None = None,
                 issue_user_token: IssueUserToken | None = None,
                 app_base_url: str | None = None,
                 proxy: bool = False,
                 session_ttl_s: int = SESSION_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._jwks = jwks
        self._issue_dev_token = issue_dev_token
        self._users = users
        self.dev = dev
        self._authenticate = authenticate
        self._issue_user_token = issue_user_token
        self.app_base_url = app_base_url
        self.proxy = proxy
        self.session_ttl_s = session_ttl_s
        self._clock = clock

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
            response = json_response({"token": token})
            response.headers.update(_NO_STORE)
            return response
        except HeraldError as e:
            return error_response(request, e, MOUNT)

    async def info(self, request: Request) -> Response:
        return json_response({"dev": self.dev, "session": self._sessions_enabled,
                              "proxy": self.proxy and self._sessions_enabled, "appBaseUrl": self.app_base_url})

    async def users(self, request: Request) -> Response:
        """The catalog's users, for the demo sign-in picker (dev mode, loopback callers only)."""
        client = request.client
        if not self.dev or not is_loopback(client.host if client else None):
            return json_response({"users": []})
        return json_response({"users": self._users()})

    @property
    def _sessions_enabled(self) -> bool:
        return self._authenticate is not None and self._issue_user_token is not None

    async def session(self, request: Request) -> Response:
        """Turn an authenticated request into a short-lived Herald user token for the page.

        The caller is authenticated as the API does it: a bearer user token (the dev sign-in's,
        a Backstage one, or an earlier session token), or the user header of a trusted reverse
        proxy. The answer is a Herald-signed user token for the same user and ownership refs, for
        the API and as the WebSocket subprotocol of `/api/signals`. It never outlives a presented
        bearer token, so renewing a session cannot extend a credential. The request must be JSON
        (a cross-site form cannot send that without a CORS preflight, which Herald never grants);
        the response is `no-store` and the token is never logged.
        """
        try:
            if self._authenticate is None or self._issue_user_token is None:
                return error_response(request, NotFoundError("Not found"), MOUNT)
            content_type = request.headers.get("content-type", "")
            if content_type.split(";", 1)[0].strip().lower() != "application/json":
                raise InputError("The session request must have Content-Type: application/json")
            authorization = request.headers.get("authorization")
            client = request.client
            principal = await self._authenticate(authorization, request.headers,
                                                 client.host if client else None)
            if principal is None:
                raise AuthenticationError("Missing credentials")
            if principal.kind != "user":
                raise NotAllowedError(f"This endpoint does not allow '{principal.kind}' credentials")
            now = self._clock()
            ttl = self.session_ttl_s
            bearer = _BEARER.match(authorization or "")
            via = "bearer" if bearer else "proxy"
            if bearer is not None:
                exp = _expiry(bearer.group(1))
                if exp is not None:
                    ttl = min(ttl, int(exp - now))
                if ttl < MIN_SESSION_TTL_S:
                    raise AuthenticationError("The token is about to expire; sign in again")
            token = self._issue_user_token(principal.subject, ownership_refs=principal.refs, ttl_s=ttl)
            expires = datetime.fromtimestamp(int(now) + ttl, UTC)
            body = {
                "token": token,
                "user": principal.subject,
                "displayName": self._display_name(principal.subject),
                "expiresAt": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "expiresInSeconds": ttl,
                "via": via,
            }
            response = json_response(body)
            response.headers.update(_NO_STORE)
            return response
        except HeraldError as e:
            return error_response(request, e, MOUNT)

    def _display_name(self, ref: str) -> str | None:
        wanted = ref.lower()
        for user in self._users():
            if str(user.get("ref", "")).lower() == wanted:
                name = user.get("displayName")
                return str(name) if name else None
        return None

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{MOUNT}/.well-known/jwks.json", self.jwks, methods=["GET"]),
            Route(f"{MOUNT}/info", self.info, methods=["GET"]),
            Route(f"{MOUNT}/dev/token", self.dev_token, methods=["POST"]),
            Route(f"{MOUNT}/dev/users", self.users, methods=["GET"]),
            Route(f"{MOUNT}/session", self.session, methods=["POST"]),
        ]


def _expiry(token: str) -> float | None:
    """The `exp` claim of a bearer token the authenticator has already verified (None when it is
    not a JWT, e.g. a static token, which cannot name a user anyway)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
