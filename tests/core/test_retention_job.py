from __future__ import annotations

import logging
from typing import Any

import pytest

from herald.retention import RetentionJob, seconds_until_midnight_utc


class _Service:
    def __init__(self) -> None:
        self.calls: list[int] = []

    async def clean(self, retention_ms: int) -> int:
        self.calls.append(retention_ms)
        return 3


async def test_run_once_logs_like_upstream(caplog: pytest.LogCaptureFixture) -> None:
    service = _Service()
    caplog.set_level(logging.INFO, logger="herald.retention")
    assert await RetentionJob(service, 1000).run_once() == 3  # type: ignore[arg-type]
    assert service.calls == [1000]
    assert "Starting notification cleaner task" in caplog.text
    assert "Notification cleaner task completed successfully, deleted 3 notifications" in caplog.text


async def test_disabled_retention_schedules_nothing(caplog: pytest.LogCaptureFixture) -> None:
    service: Any = _Service()
    caplog.set_level(logging.INFO, logger="herald.retention")
    await RetentionJob(service, None, initial_delay_s=0).run_forever()  # returns at once
    assert service.calls == []
    assert "Notification retention is disabled, skipping notification cleaner task" in caplog.text


def test_next_run_is_midnight_utc() -> None:
    assert seconds_until_midnight_utc(86_400 * 10 + 3600) == 86_400 - 3600
