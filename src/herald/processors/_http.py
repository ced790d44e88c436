"""The HTTP client an HTTP-speaking processor owns: made on first use, closed by `aclose()`."""

from __future__ import annotations

from typing import Any

import httpx


class LazyClient:
    """One `httpx.AsyncClient` per processor. Redirects are never followed and proxy variables from
    the environment are ignored (`trust_env=False`): a processor calls exactly what it was told to."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> None:
        self._transport = transport
        self._options = options
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, follow_redirects=False, trust_env=False,
                                             **self._options)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
