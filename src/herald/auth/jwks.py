"""A remote JWK set (Backstage's `/api/auth/.well-known/jwks.json`), cached and refetched sparingly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from herald.auth.config import JwksConfig
from herald.core.errors import AuthenticationError

_log = logging.getLogger("herald.auth")

REFETCH_INTERVAL_S = 30.0
"""An unknown `kid` (or a failed fetch) triggers at most one fetch per this many seconds."""
MAX_JWKS_BYTES = 1 << 20
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})


class KeysUnavailableError(AuthenticationError):
    """The JWK set could not be fetched and no earlier copy is at hand (still a 401, like Backstage)."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key and the algorithms it may verify (its `alg` if declared, else its type's)."""

    key: Any
    algorithms: frozenset[str]


class RemoteKeySet:
    """kid → public key, fetched with `client` and kept for `config.cache_seconds`.

    A token whose `kid` is unknown causes a refetch, at most once per `REFETCH_INTERVAL_S`, so key
    rotation is picked up promptly while a flood of forged kids cannot hammer the auth backend.
    When a refetch fails the previous keys stay in use.
    """

    def __init__(self, config: JwksConfig, client: httpx.AsyncClient, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._client = client
        self._monotonic = monotonic
        self._allowed = frozenset(config.algorithms)
        self._keys: dict[str, VerificationKey] = {}
        self._unnamed: list[VerificationKey] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    def _since(self, t: float | None) -> float:
        return float("inf") if t is None else self._monotonic() - t

    def _stale(self) -> bool:
        return self._since(self._fetched_at) >= self._config.cache_seconds

    def _may_refetch(self) -> bool:
        return self._since(self._attempted_at) >= REFETCH_INTERVAL_S

    def _lookup(self, kid: str | None) -> VerificationKey | None:
        if kid is not None:
            return self._keys.get(kid)
        keys = self._unnamed or list(self._keys.values())
        return keys[0] if len(keys) == 1 else None

    async def get(self, kid: str | None) -> VerificationKey:
        """The key for `kid`; raise AuthenticationError when there is none."""
        key = None if self._stale() else self._lookup(kid)
        if key is not None:
            return key
        async with self._lock:
            # Re-check: another request may have refreshed while this one waited.
            key = self._lookup(kid)
            must = self._fetched_at is None or self._stale()
            if (key is None or must) and self._may_refetch():
                await self._refresh()
                key = self._lookup(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise KeysUnavailableError("Failed user token verification: signing keys are unavailable")
        raise AuthenticationError("Failed user token verification: unknown signing key")

    async def _refresh(self) -> None:
        self._attempted_at = self._monotonic()
        try:
            response = await self._client.get(self._config.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError("JWK set larger than 1 MiB")
            keys, unnamed = self._parse(response.json())
        except (httpx.HTTPError, ValueError) as e:
            _log.warning("could not fetch the JWK set from %s: %s", self._config.url, e)
            return
        self._keys, self._unnamed = keys, unnamed
        self._fetched_at = self._monotonic()
        _log.debug("fetched %d signing keys from %s", len(keys) + len(unnamed), self._config.url)

    def _parse(self, document: Any) -> tuple[dict[str, VerificationKey], list[VerificationKey]]:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK set (no 'keys' list)")
        keys: dict[str, VerificationKey] = {}
        unnamed: list[VerificationKey] = []
        for raw in document["keys"]:
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
                continue
            try:
                jwk = PyJWK(raw)
            except PyJWKError as e:
                _log.debug("skipping an unusable JWK (kid %r): %s", raw.get("kid"), e)
                continue
            if "alg" not in raw and jwk.algorithm_name in _RSA_ALGORITHMS:
                algorithms = _RSA_ALGORITHMS & self._allowed
            else:
                algorithms = frozenset({jwk.algorithm_name}) & self._allowed
            if not algorithms:
                continue
            key = VerificationKey(jwk.key, algorithms)
            kid = raw.get("kid")
            if isinstance(kid, str):
                keys[kid] = key
            else:
                unnamed.append(key)
        return keys, unnamed
