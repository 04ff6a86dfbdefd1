"""The registry's clock: instants in UTC, calendar dates in Beijing time.

Legal dates (filing, grant, expiry, due dates) are Chinese calendar days, so "today" is the
date in UTC+8 whatever the server's time zone. China has no daylight saving time, so a fixed
offset is exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return datetime.now(BEIJING).date()
