"""The retention cleaner (spec §5.2): daily at 00:00 UTC, first run an hour after start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from herald.core.service import NotificationService

_log = logging.getLogger("herald.retention")
DAY_S = 86_400


def seconds_until_midnight_utc(now: float) -> float:
    return DAY_S - (now % DAY_S)


class RetentionJob:
    def __init__(self, service: NotificationService, retention_ms: int | None, *,
                 initial_delay_s: float = 3600.0) -> None:
        self.service = service
        self.retention_ms = retention_ms
        self.initial_delay_s = initial_delay_s

    async def run_once(self) -> int:
        assert self.retention_ms is not None
        _log.info("Starting notification cleaner task")
        try:
            deleted = await self.service.clean(self.retention_ms)
        except Exception:
            _log.exception("Notification cleaner task failed")
            raise
        _log.info("Notification cleaner task completed successfully, deleted %d notifications", deleted)
        return deleted

    async def run_forever(self) -> None:
        if self.retention_ms is None:
            _log.info("Notification retention is disabled, skipping notification cleaner task")
            return
        await asyncio.sleep(self.initial_delay_s)
        while True:
            with contextlib.suppress(Exception):  # logged in run_once; try again tomorrow
                await self.run_once()
            await asyncio.sleep(seconds_until_midnight_utc(time.time()))
