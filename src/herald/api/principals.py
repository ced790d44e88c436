"""Who is calling: one place that authenticates a request and enforces the principal kind (spec §2.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

from starlette.requests import Request

from herald.core.errors import AuthenticationError, NotAllowedError
from herald.core.model import Principal


class Authenticate(Protocol):
    async def authenticate(self, authorization: str | None, headers: Mapping[str, str],
                           client_host: str | None) -> Principal | None: ...


async def require_principal(auth: Authenticate, request: Request, kind: Literal["user", "service"]
                            ) -> Principal:
    """The caller; 401 without credentials, 403 when the principal is of the other kind."""
    client = request.client
    principal = await auth.authenticate(request.headers.get("authorization"), request.headers,
                                        client.host if client else None)
    if principal is None:
        raise AuthenticationError("Missing credentials")
    if principal.kind != kind:
        raise NotAllowedError(f"This endpoint does not allow '{principal.kind}' credentials")
    return principal
