"""Durations as people write them: seconds, or a number with a unit ("90s", "15m", "12h", "7d").

One parser for the keeper's configuration and the CLI's options (`log --since`), and one way
of showing a time left ("13d 23h"), never raw seconds.
"""

from __future__ import annotations

import math
import re
from typing import Any

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
EXAMPLES = "a duration such as 90s, 15m, 12h or 7d"


def parse_duration(value: Any) -> float | None:
    """Seconds, or None when `value` is not a non-negative finite duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        seconds = float(m.group(1)) * UNITS[m.group(2) or "s"]
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def human_left(seconds: float) -> str:
    """'13d 23h', '5h 02m', '42s' or 'expired 3h ago': short enough for a table cell."""
    if seconds <= 0:
        return f"expired {human_left(-seconds)} ago" if seconds < 0 else "expired"
    s = int(seconds)
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
