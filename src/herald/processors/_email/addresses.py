"""Which addresses may receive mail (spec §5.4 steps 2-3), and a small TTL cache for lookups."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

_FORBIDDEN = re.compile(r"[\s\"',;<>:]")

T = TypeVar("T")


def is_valid_address(address: str) -> bool:
    """`isValidNotificationEmail`: non-empty, no surrounding space, none of whitespace `" ' , ; < > :`,
    exactly one `@`, not at either end."""
    if not address or address != address.strip() or _FORBIDDEN.search(address):
        return False
    if address.count("@") != 1:
        return False
    return not (address.startswith("@") or address.endswith("@"))


class AddressPolicy:
    """`allowlistEmailAddresses` keeps an address; else `allowedEmailDomains` (when set) must list its
    domain; else an allowlist without domains drops it (closed mode); `denylistEmailAddresses`
    is applied last. Comparisons are case-insensitive, list entries trimmed."""

    def __init__(self, *, allowed_domains: Sequence[str] | None, allowlist: Sequence[str] | None,
                 denylist: Sequence[str] | None) -> None:
        self.allowed_domains = None if allowed_domains is None else {d.strip().lower() for d in allowed_domains}
        self.allowlist = None if allowlist is None else {a.strip().lower() for a in allowlist}
        self.denylist = {a.strip().lower() for a in denylist or ()}

    def allows(self, address: str) -> bool:
        if not is_valid_address(address):
            return False
        lowered = address.lower()
        if self.allowlist is not None and lowered in self.allowlist:
            keep = True
        elif self.allowed_domains is not None:
            keep = lowered.rsplit("@", 1)[1] in self.allowed_domains
        else:
            keep = self.allowlist is None
        return keep and lowered not in self.denylist

    def filter(self, addresses: Iterable[str]) -> list[str]:
        """Allowed addresses, de-duplicated case-insensitively, in order."""
        seen: set[str] = set()
        out: list[str] = []
        for a in addresses:
            if self.allows(a) and a.lower() not in seen:
                seen.add(a.lower())
                out.append(a)
        return out


class TtlCache(Generic[T]):
    """Values by key for `ttl_ms` (`cache.ttl`, default one hour); misses are cached too."""

    def __init__(self, ttl_ms: int, now_ms: Callable[[], int], max_entries: int = 100_000) -> None:
        self.ttl_ms = ttl_ms
        self._now = now_ms
        self._max = max_entries
        self._data: dict[str, tuple[int, T]] = {}

    def lookup(self, key: str) -> tuple[bool, T | None]:
        """(True, value) for a fresh entry, (False, None) otherwise."""
        hit = self._data.get(key)
        if hit is not None and hit[0] > self._now():
            return True, hit[1]
        return False, None

    def set(self, key: str, value: T) -> None:
        if len(self._data) >= self._max:
            self._data.clear()
        self._data[key] = (self._now() + self.ttl_ms, value)

    def get_or_set(self, key: str, load: Callable[[], T]) -> T:
        hit = self._data.get(key)
        if hit is not None and hit[0] > self._now():
            return hit[1]
        value = load()
        self.set(key, value)
        return value
