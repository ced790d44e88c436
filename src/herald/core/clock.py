"""Time as the core sees it: integer milliseconds since the epoch (UTC), like JavaScript."""

from __future__ import annotations

import datetime as _dt
import email.utils
import re
import time
from typing import Protocol

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def iso_ms(ms: int) -> str:
    """Render like JavaScript `Date.toJSON()`: `YYYY-MM-DDTHH:mm:ss.sssZ`."""
    secs, milli = divmod(ms, 1000)
    t = time.gmtime(secs)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{milli:03d}Z"
    )


def iso_ms_or_none(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def to_ms(d: _dt.datetime) -> int:
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.UTC)
    delta = d - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_DATE_ONLY = re.compile(r"^[+-]?\d{4,6}(-\d{2}(-\d{2})?)?$")


def parse_date_ms(text: str) -> int | None:
    """Parse a date the way JavaScript's `Date.parse` accepts the common forms; None if unparseable.

    ISO-8601 (date-only forms are UTC, as in JavaScript; a date-time without offset is UTC here
    because a server has no meaningful local zone) and RFC 2822 dates are accepted.
    """
    s = text.strip()
    if not s:
        return None
    try:
        if _DATE_ONLY.match(s):
            parts = [int(p) for p in s.split("-") if p]
            year, month, day = [*parts, 1, 1][:3]
            return to_ms(_dt.datetime(year, month, day, tzinfo=_dt.UTC))
        return to_ms(_dt.datetime.fromisoformat(s.replace("z", "Z")))
    except (ValueError, OverflowError):
        pass
    try:
        return to_ms(email.utils.parsedate_to_datetime(s))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
