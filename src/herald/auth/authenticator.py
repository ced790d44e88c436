"""Turn request credentials into a `Principal` (spec §2.2, §4.3).

Bearer tokens are tried in this order:

1. a static service token (`auth.serviceTokens`) → `Principal("service", subject)`;
2. a user token signed by Herald's own key (`kid` = Herald's) → `Principal("user", sub, ent)`;
3. a Backstage user token verified against `auth.jwks` → `Principal("user", sub, ent or (sub,))`.

Without a bearer token, a trusted reverse proxy may name the user in `auth.proxy.header`; that
header is believed only when the connecting address is in `auth.proxy.trustedProxies`.

Verified JWTs are remembered (token → principal, expiry) in a bounded LRU, so a repeated token costs
a dictionary lookup instead of a signature check. Nothing here ever logs or echoes a token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from herald.auth.config import AuthConfig, ProxyConfig
from herald.auth.jwks import RemoteKeySet
from herald.auth.keys import SigningKey
from herald.auth.tokens import (
    AUDIENCE,
    ISSUER,
    LIMITED_USER_TOKEN_TYP,
    PLUGIN_TOKEN_TYP,
    USER_TOKEN_TYP,
    issue_user_token,
)
from herald.core.entity_ref import is_user_ref, parse_entity_ref
from herald.core.errors import AuthenticationError, InputError, NotAllowedError
from herald.core.model import Principal

_log = logging.getLogger("herald.auth")

LEEWAY_S = 30
"""Clock skew tolerated on `exp`, `nbf` and `iat`."""
DEFAULT_CACHE_SIZE = 10_000
DEFAULT_PREFIX = "user:default/"
_BEARER = re.compile(r"^\s*Bearer +(\S+)\s*$", re.IGNORECASE)
_FAILED = "Failed user token verification"
_REQUIRED_CLAIMS = ["exp", "iat", "sub"]
_JWT_OPTIONS: Any = {"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False, "verify_aud": False, "verify_iss": False}
_IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class _StaticEntry:
    token: bytes
    principal: Principal


class Authenticator:
    """Authenticates requests. Build one per process at the composition root; `aclose()` on shutdown.

    `http_client` fetches the JWK set; when omitted and `config.jwks` is set, an own client is
    created (and closed by `aclose`). `clock` (epoch seconds) and `monotonic` are for tests.
    """

    def __init__(self, config: AuthConfig, signing_key: SigningKey, *,
                 http_client: httpx.AsyncClient | None = None, cache_size: int = DEFAULT_CACHE_SIZE,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.config = config
        self.signing_key = signing_key
        self._clock = clock
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._own_public_key = signing_key.public_key
        self._static: dict[bytes, _StaticEntry] = {}
        for entry in config.service_tokens:
            raw = entry.token.get_secret_value().encode()
            principal = Principal("service", entry.subject)
            self._static[hashlib.sha256(raw).digest()] = _StaticEntry(raw, principal)
        self._owns_client = False
        self._remote: RemoteKeySet | None = None
        if config.jwks is not None:
            if http_client is None:
                http_client = httpx.AsyncClient(timeout=10.0, follow_redirects=True)
                self._owns_client = True
            self._remote = RemoteKeySet(config.jwks, http_client, monotonic=monotonic)
        self._http_client = http_client
        self._proxy: ProxyConfig | None = config.proxy
        self._proxy_header = config.proxy.header.lower() if config.proxy else ""
        self._trusted_hosts: dict[str, bool] = {}
        self._proxy_refs: dict[str, str] = {}

    async def aclose(self) -> None:
        if self._owns_client and self._http_client is not None:
            await self._http_client.aclose()

    # -- requests ---------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None, headers: Mapping[str, str],
                           client_host: str | None) -> Principal | None:
        """The caller, or None when no credentials were presented; AuthenticationError when bad.

        `authorization` is the raw `Authorization` header. A non-Bearer scheme counts as no
        credentials (as in Backstage); a Bearer header without exactly one token is refused.
        `headers` is looked up with the lower-cased proxy header name first (ASGI / starlette
        `Headers`), then as configured.
        """
        if authorization:
            m = _BEARER.match(authorization)
            if m is not None:
                return await self.authenticate_token(m.group(1))
            scheme = authorization.lstrip()[:7].lower()
            if scheme == "bearer" or (scheme.startswith("bearer") and scheme[6:].isspace()):
                raise AuthenticationError("Malformed bearer token")
        if self._proxy is not None:
            return self._from_proxy(headers, client_host)
        return None

    async def authenticate_token(self, token: str) -> Principal:
        """The principal of a bearer token (also the WebSocket subprotocol token); raise if invalid."""
        token_bytes = token.encode("utf-8", "surrogatepass")
        entry = self._static.get(hashlib.sha256(token_bytes).digest())
        if entry is not None and hmac.compare_digest(entry.token, token_bytes):
            return entry.principal
        cached = self._cache.get(token)
        if cached is not None:
            if cached[1] + LEEWAY_S > self._clock():
                self._cache.move_to_end(token)
                return cached[0]
            del self._cache[token]
        principal, exp = await self._verify_jwt(token)
        self._cache[token] = (principal, exp)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    # -- JWTs -------------------------------------------------------------------------------------

    async def _verify_jwt(self, token: str) -> tuple[Principal, float]:
        if token.count(".") != 2:
            raise AuthenticationError("Illegal token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("Illegal token") from None
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if typ == PLUGIN_TOKEN_TYP:
            raise AuthenticationError("Illegal token: Backstage plugin tokens are not accepted")
        if not isinstance(alg, str) or alg == "none":
            raise AuthenticationError(f"{_FAILED}: unsigned or malformed token")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("Illegal token")

        if kid == self.signing_key.kid:
            if typ != USER_TOKEN_TYP:
                raise AuthenticationError(f"{_FAILED}: wrong token type")
            claims = self._decode(token, self._own_public_key, alg, {self.signing_key.algorithm})
            self._check_claims(claims, audience=AUDIENCE, issuer=ISSUER, require_aud=True)
        elif self._remote is not None:
            jwks = self.config.jwks
            assert jwks is not None
            key = await self._remote.get(kid)
            claims = self._decode(token, key.key, alg, key.algorithms)
            # Full user tokens carry `aud: backstage`; limited user tokens (cookie auth) carry none.
            self._check_claims(claims, audience=jwks.audience, issuer=jwks.issuer,
                               require_aud=typ != LIMITED_USER_TOKEN_TYP)
        else:
            raise AuthenticationError(f"{_FAILED}: unknown signing key")

        sub = claims["sub"]
        if not isinstance(sub, str) or not is_user_ref(sub):
            raise AuthenticationError(f"{_FAILED}: the subject is not a user entity reference")
        ent = claims.get("ent")
        if ent is None:
            ownership: tuple[str, ...] = (sub,)
        elif isinstance(ent, list) and all(isinstance(r, str) for r in ent):
            ownership = tuple(ent) or (sub,)
        else:
            raise AuthenticationError(f"{_FAILED}: malformed ownership claim")
        return Principal("user", sub, ownership), float(claims["exp"])

    @staticmethod
    def _decode(token: str, key: Any, alg: str, allowed: set[str] | frozenset[str]) -> dict[str, Any]:
        if alg not in allowed:
            raise AuthenticationError(f"{_FAILED}: algorithm not allowed")
        try:
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], options=_JWT_OPTIONS)
        except jwt.MissingRequiredClaimError as e:
            raise AuthenticationError(f"{_FAILED}: missing claim '{e.claim}'") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError(f"{_FAILED}: bad signature") from None
        except jwt.PyJWTError:
            raise AuthenticationError(_FAILED) from None
        return claims

    def _check_claims(self, claims: dict[str, Any], *, audience: str, issuer: str | None,
                      require_aud: bool) -> None:
        now = self._clock()
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf")
        if not _is_number(exp) or not _is_number(iat) or (nbf is not None and not _is_number(nbf)):
            raise AuthenticationError(f"{_FAILED}: malformed time claims")
        if exp + LEEWAY_S <= now:
            raise AuthenticationError(f"{_FAILED}: token expired")
        if iat - LEEWAY_S > now or (nbf is not None and nbf - LEEWAY_S > now):
            raise AuthenticationError(f"{_FAILED}: token not yet valid")
        aud = claims.get("aud")
        if aud is None:
            if require_aud:
                raise AuthenticationError(f"{_FAILED}: missing audience")
        elif not (aud == audience or (isinstance(aud, list) and audience in aud)):
            raise AuthenticationError(f"{_FAILED}: wrong audience")
        if issuer is not None and claims.get("iss") != issuer:
            raise AuthenticationError(f"{_FAILED}: wrong issuer")

    # -- trusted proxy ----------------------------------------------------------------------------

    def _from_proxy(self, headers: Mapping[str, str], client_host: str | None) -> Principal | None:
        proxy = self._proxy
        assert proxy is not None
        value = headers.get(self._proxy_header)
        if value is None and proxy.header != self._proxy_header:
            value = headers.get(proxy.header)
        if value is None:
            return None
        if not self._is_trusted(client_host):
            _log.debug("ignoring %s from untrusted address %s", proxy.header, client_host)
            return None
        ref = self._proxy_refs.get(value)
        if ref is None:
            try:
                ref = parse_user_ref(value, prefix=proxy.user_ref_prefix)
            except ValueError:
                raise AuthenticationError(f"The {proxy.header} header does not name a user") from None
            if len(self._proxy_refs) >= 4096:
                self._proxy_refs.clear()
            self._proxy_refs[value] = ref
        return Principal("user", ref, (ref,))

    def _is_trusted(self, client_host: str | None) -> bool:
        if client_host is None or self._proxy is None:
            return False
        trusted = self._trusted_hosts.get(client_host)
        if trusted is None:
            address = _parse_ip(client_host)
            trusted = address is not None and any(
                address.version == net.version and address in net for net in self._proxy.trusted_proxies)
            if len(self._trusted_hosts) >= 4096:
                self._trusted_hosts.clear()
            self._trusted_hosts[client_host] = trusted
        return trusted

    # -- issuing ------------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """Herald's public JWK set (serve at `/api/herald/.well-known/jwks.json`)."""
        return self.signing_key.jwks()

    def issue_user_token(self, user_ref: str, *, ownership_refs: Sequence[str] | None = None,
                         ttl_s: int | None = None) -> str:
        """A user token signed by Herald (CLI, demo sign-in); `user_ref` may omit kind/namespace
        (`jane` → `user:default/jane`). InputError when it is not a user reference."""
        try:
            prefix = self._proxy.user_ref_prefix if self._proxy else DEFAULT_PREFIX
            ref = parse_user_ref(user_ref, prefix=prefix)
        except ValueError as e:
            raise InputError(str(e)) from None
        return issue_user_token(self.signing_key, ref, ttl_s=ttl_s or self.config.user_token_ttl_seconds,
                                ownership_refs=ownership_refs, now=self._clock())

    def issue_dev_token(self, user_ref: str, client_host: str | None, *,
                        ownership_refs: Sequence[str] | None = None) -> str:
        """Dev sign-in: a user token for anyone, but only in dev mode and only from loopback."""
        if not self.config.dev:
            raise NotAllowedError("Dev sign-in is disabled")
        if not is_loopback(client_host):
            raise NotAllowedError("Dev sign-in is only available from a loopback address")
        return self.issue_user_token(user_ref, ownership_refs=ownership_refs)


def parse_user_ref(value: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """A user entity ref from `value`: `jane` → prefix + `jane`, `ns/jane` → `user:ns/jane`,
    `user:ns/jane` as is. ValueError for anything else (another kind, spaces, commas, empty)."""
    v = value.strip()
    if not v or "," in v or any(c.isspace() for c in v):
        raise ValueError("not a user entity reference")
    if ":" not in v:  # no kind: `ns/jane` → `user:ns/jane`, `jane` → prefix + `jane`
        v = f"user:{v}" if "/" in v else prefix + v
    try:
        ref = parse_entity_ref(v)
    except ValueError:
        raise ValueError(f"{value!r} is not a user entity reference") from None
    if ref.kind.lower() != "user":
        raise ValueError(f"{value!r} is not a user entity reference")
    return str(ref)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _parse_ip(host: str) -> _IpAddress | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(client_host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for names and unknown peers."""
    if client_host is None:
        return False
    address = _parse_ip(client_host)
    return address is not None and address.is_loopback
