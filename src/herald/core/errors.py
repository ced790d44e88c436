"""The few errors the core raises. Each names what the caller can do about it.

    HeraldError
    ├── InputError            the request is wrong: fix it (HTTP 400)
    ├── AuthenticationError   no or bad credentials: sign in (HTTP 401)
    ├── NotAllowedError       right credentials, wrong kind: use another principal (HTTP 403)
    └── NotFoundError         nothing visible under that id (HTTP 404)

The API layer maps them to Backstage's error body in one place (`herald.api.errors`).
"""

from __future__ import annotations


class HeraldError(Exception):
    """Base of every expected error. `name` is the Backstage error name on the wire."""

    name = "Error"
    status = 500

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause


class InputError(HeraldError):
    name = "InputError"
    status = 400


class AuthenticationError(HeraldError):
    name = "AuthenticationError"
    status = 401


class NotAllowedError(HeraldError):
    name = "NotAllowedError"
    status = 403


class NotFoundError(HeraldError):
    name = "NotFoundError"
    status = 404
