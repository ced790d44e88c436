"""Rate limits: at most N starts in any window of `interval` (p-throttle's semantics)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    """A sliding window of start times. `available()` says how many may start now; `acquire()`
    waits for a slot. Not shared between processes: each worker process throttles itself."""

    def __init__(self, per_interval: int, interval_ms: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.per_interval = max(1, per_interval)
        self.interval_s = max(0, interval_ms) / 1000
        self._starts: deque[float] = deque()
        self._now = monotonic
        self._lock = asyncio.Lock()

    def _expire(self, now: float) -> None:
        while self._starts and self._starts[0] <= now - self.interval_s:
            self._starts.popleft()

    def available(self) -> int:
        if self.interval_s == 0:
            return 1 << 30
        self._expire(self._now())
        return self.per_interval - len(self._starts)

    def next_slot_in(self) -> float:
        """Seconds until a start is allowed (0 when one is allowed now)."""
        if self.interval_s == 0:
            return 0.0
        now = self._now()
        self._expire(now)
        if len(self._starts) < self.per_interval:
            return 0.0
        return max(0.0, self._starts[0] + self.interval_s - now)

    def record(self) -> None:
        if self.interval_s:
            self._starts.append(self._now())

    async def acquire(self) -> None:
        async with self._lock:
            wait = self.next_slot_in()
            while wait > 0:  # a slot frees at a known time: sleep until then (nothing to wait on)
                await asyncio.sleep(wait)
                wait = self.next_slot_in()
            self.record()
