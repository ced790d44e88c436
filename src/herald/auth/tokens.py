"""User tokens Herald issues itself, shaped like Backstage's (`typ: vnd.backstage.user`, ES256)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt

from herald.auth.keys import SigningKey

USER_TOKEN_TYP = "vnd.backstage.user"
LIMITED_USER_TOKEN_TYP = "vnd.backstage.limited-user"
PLUGIN_TOKEN_TYP = "vnd.backstage.plugin"
AUDIENCE = "backstage"
ISSUER = "herald"


def issue_user_token(key: SigningKey, user_ref: str, *, ttl_s: int,
                     ownership_refs: Sequence[str] | None = None, now: float | None = None) -> str:
    """A signed user token: `sub` = `user_ref`, `ent` = `ownership_refs` (default `[user_ref]`).

    The caller validates `user_ref`; this only signs. `now` (epoch seconds) is for tests.
    """
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    iat = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "sub": user_ref,
        "ent": list(ownership_refs) if ownership_refs is not None else [user_ref],
        "aud": AUDIENCE,
        "iat": iat,
        "exp": iat + ttl_s,
    }
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm,
                      headers={"typ": USER_TOKEN_TYP, "kid": key.kid})
