"""Weeks in agency-local time: ISO week labels, their Monday-to-Monday bounds in UTC.

Every digest figure belongs to one agency-local week, so the week arithmetic lives apart from
the queries that use it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_week(week: str) -> tuple[int, int]:
    """``2026-W47`` -> (2026, 47); raises ValueError with a clear message."""
    m = re.fullmatch(r"(\d{4})-?W(\d{1,2})", week.strip().upper())
    if not m:
        raise ValueError(f"week must look like 2026-W47, got {week!r}")
    year, num = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, num, 1)
    except ValueError:
        raise ValueError(f"{year} has no ISO week {num}") from None
    return year, num


def week_label(monday: date) -> str:
    year, num, _ = monday.isocalendar()
    return f"{year}-W{num:02d}"


def week_monday(week: str) -> date:
    year, num = parse_week(week)
    return date.fromisocalendar(year, num, 1)


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def week_bounds(week: str, tz: str) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in the agency's zone, as aware UTC datetimes."""
    zone = ZoneInfo(tz)
    monday = week_monday(week)
    return local_midnight_utc(monday, zone), local_midnight_utc(monday + timedelta(days=7), zone)


def previous_week(now: datetime, tz: str) -> str:
    """The last complete week (Monday-Sunday) before ``now`` in the agency's zone."""
    today = now.astimezone(ZoneInfo(tz)).date()
    monday = today - timedelta(days=today.weekday())
    return week_label(monday - timedelta(days=7))
