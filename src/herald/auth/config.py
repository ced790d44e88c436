"""Authentication settings: static service tokens, a JWKS for Backstage user tokens, a trusted proxy.

Every model accepts Backstage-style camelCase keys (`serviceTokens`, `cacheSeconds`, ...) and the
Python names. Secrets are `SecretStr` and the models hide input values in validation errors, so a
token never reaches a repr, a log line or an error message.

Example (YAML)::

    auth:
      serviceTokens:
        - token: ${HERALD_SERVICE_TOKEN}
          subject: external:ci
      jwks:
        url: http://backstage:7007/api/auth/.well-known/jwks.json
      proxy:
        header: X-Forwarded-User
        trustedProxies: [127.0.0.1, 10.0.0.0/8]
      userTokenTtlSeconds: 43200

Backstage's own `backend.auth.externalAccess` list can be reused as it is through
`service_tokens_from_backstage`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_log = logging.getLogger("herald.auth")

MIN_TOKEN_LENGTH = 8
"""As Backstage's static token handler: shorter tokens are refused at start-up."""

DEFAULT_USER_TOKEN_TTL_S = 12 * 3600
"""Lifetime of the user tokens Herald issues itself (dev sign-in, CLI): one working day.

Backstage's own user tokens live one hour and are refreshed silently by the frontend; Herald's
tokens are handed to people and scripts that cannot refresh, so they live longer, but not so long
that a leaked demo token stays useful for weeks."""

SUPPORTED_ALGORITHMS = frozenset({
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
})
"""Asymmetric algorithms only: `none` and the HMAC family never verify a user token."""

_NO_SPACE = re.compile(r"\S+")
_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Model(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True, extra="forbid", frozen=True, hide_input_in_errors=True,
    )


class ServiceToken(_Model):
    """A static bearer token of a service principal; `subject` becomes the notification origin."""

    token: SecretStr
    subject: str

    @model_validator(mode="before")
    @classmethod
    def _unwrap_backstage_form(cls, data: Any) -> Any:
        # Also accept one `backend.auth.externalAccess` entry: {type: static, options: {...}}.
        if isinstance(data, Mapping) and "options" in data and "token" not in data:
            kind = data.get("type", "static")
            if kind != "static":
                raise ValueError(f"only externalAccess entries of type 'static' are supported, got {kind!r}")
            options = data["options"]
            if not isinstance(options, Mapping):
                raise ValueError("externalAccess 'options' must be a mapping")
            return {"token": options.get("token"), "subject": options.get("subject")}
        return data

    @field_validator("token")
    @classmethod
    def _check_token(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not _NO_SPACE.fullmatch(raw):
            raise ValueError("Illegal token, must be a set of non-space characters")
        if len(raw) < MIN_TOKEN_LENGTH:
            raise ValueError(f"Illegal token, must be at least {MIN_TOKEN_LENGTH} characters length")
        return v

    @field_validator("subject")
    @classmethod
    def _check_subject(cls, v: str) -> str:
        if not _NO_SPACE.fullmatch(v):
            raise ValueError("Illegal subject, must be a set of non-space characters")
        return v


class JwksConfig(_Model):
    """Where to fetch the public keys of Backstage user tokens (`/api/auth/.well-known/jwks.json`)."""

    url: str
    issuer: str | None = None
    """When set, the token's `iss` must equal it (Backstage: `<backend.baseUrl>/api/auth`)."""
    audience: str = "backstage"
    algorithms: tuple[str, ...] = ("ES256", "RS256", "EdDSA")
    cache_seconds: int = Field(default=600, alias="cacheSeconds", ge=0, le=86_400)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("jwks.url must be an http:// or https:// URL")
        return v

    @field_validator("algorithms")
    @classmethod
    def _check_algorithms(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("jwks.algorithms must not be empty")
        unsupported = sorted(set(v) - SUPPORTED_ALGORITHMS)
        if unsupported:
            raise ValueError(f"unsupported jwks.algorithms {unsupported}; use asymmetric ones from "
                             f"{sorted(SUPPORTED_ALGORITHMS)}")
        return v


class ProxyConfig(_Model):
    """A header set by an authenticating reverse proxy, believed only from `trusted_proxies`."""

    header: str
    trusted_proxies: tuple[_IpNetwork, ...] = Field(alias="trustedProxies")
    user_ref_prefix: str = Field(default="user:default/", alias="userRefPrefix")
    """Prepended when the header value names no kind (`jane` → `user:default/jane`)."""

    @field_validator("header")
    @classmethod
    def _check_header(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", v):
            raise ValueError("proxy.header must be a valid HTTP header name")
        return v

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, Iterable) or not v:
            raise ValueError("proxy.trustedProxies must list at least one IP address or CIDR")
        out: list[_IpNetwork] = []
        for item in v:
            try:
                out.append(ipaddress.ip_network(str(item).strip(), strict=False))
            except ValueError as e:
                raise ValueError(f"proxy.trustedProxies: {item!r} is not an IP address or CIDR") from e
        return tuple(out)

    @field_validator("user_ref_prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        if not v.lower().startswith("user:") or not v.endswith("/") or v.count("/") != 1:
            raise ValueError("proxy.userRefPrefix must look like 'user:<namespace>/'")
        return v


class AuthConfig(_Model):
    """The whole `auth` section."""

    service_tokens: tuple[ServiceToken, ...] = Field(default=(), alias="serviceTokens")
    jwks: JwksConfig | None = None
    proxy: ProxyConfig | None = None
    dev: bool = False
    """Dev mode: a caller on a loopback address may obtain a user token for any user."""
    user_token_ttl_seconds: int = Field(
        default=DEFAULT_USER_TOKEN_TTL_S, alias="userTokenTtlSeconds", ge=60, le=30 * 86_400,
    )

    @model_validator(mode="after")
    def _unique_tokens(self) -> AuthConfig:
        seen: set[str] = set()
        for entry in self.service_tokens:
            raw = entry.token.get_secret_value()
            if raw in seen:
                raise ValueError("Static service token was declared more than once")
            seen.add(raw)
        return self


def service_tokens_from_backstage(external_access: Iterable[Mapping[str, Any]]) -> list[ServiceToken]:
    """The static tokens of a Backstage `backend.auth.externalAccess` list.

    Entries of other types (`legacy`, `jwks`) are skipped with a warning; `accessRestrictions` are
    ignored (Herald only serves the notifications and signals plugins).
    """
    out: list[ServiceToken] = []
    for index, entry in enumerate(external_access):
        kind = entry.get("type")
        if kind != "static":
            _log.warning("backend.auth.externalAccess[%d]: type %r is not supported by Herald; skipped",
                         index, kind)
            continue
        out.append(ServiceToken.model_validate(entry))
    return out
