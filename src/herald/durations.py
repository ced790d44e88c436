"""Backstage duration values: `{days: 5}`, ISO-8601 (`P1Y`, `PT0.05S`) or ms-style (`50ms`, `1y`)."""

from __future__ import annotations

import re
from typing import Any

_UNIT_MS = {
    "years": 365.25 * 86_400_000, "months": 30.4375 * 86_400_000, "weeks": 7 * 86_400_000,
    "days": 86_400_000, "hours": 3_600_000, "minutes": 60_000, "seconds": 1000, "milliseconds": 1,
}
_MS_STYLE = re.compile(
    r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|msecs?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|"
    r"d|days?|w|weeks?|y|yrs?|years?)?\s*$", re.I)
_MS_UNIT = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000,
            "y": 365.25 * 86_400_000}
_ISO = re.compile(r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
                  r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def duration_ms(value: Any) -> int:
    """Milliseconds of a Backstage duration; raises ValueError with a clear message."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, dict):
        unknown = set(value) - set(_UNIT_MS)
        if unknown or not value:
            raise ValueError(f"duration object keys must be among {sorted(_UNIT_MS)}, got {sorted(value)}")
        return int(sum(float(v) * _UNIT_MS[k] for k, v in value.items()))
    if isinstance(value, str):
        m = _ISO.match(value.strip())
        if m and any(m.groups()):
            y, mo, w, d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return int(y * _UNIT_MS["years"] + mo * _UNIT_MS["months"] + w * _UNIT_MS["weeks"]
                       + d * _UNIT_MS["days"] + h * 3_600_000 + mi * 60_000 + s * 1000)
        m = _MS_STYLE.match(value)
        if m:
            unit = (m.group(2) or "ms").lower()
            key = "ms" if unit.startswith("ms") or unit.startswith("milli") else unit[0]
            return int(float(m.group(1)) * _MS_UNIT[key])
    raise ValueError(f"not a duration: {value!r}")
