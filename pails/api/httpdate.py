"""RFC 7231 IMF-fixdate formatting, without email.utils' generality (it is on every GET/HEAD)."""

from __future__ import annotations

import time
from functools import lru_cache

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(ts: float) -> str:
    """Wed, 25 Nov 2026 13:14:24 GMT"""
    return _http_date(int(ts))


@lru_cache(maxsize=4096)  # objects written in the same second share their Last-Modified
def _http_date(ts: int) -> str:
    t = time.gmtime(ts)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )
