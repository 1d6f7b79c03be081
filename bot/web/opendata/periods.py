"""Reporting periods of the open data, as labels a person can type in a URL.

``2026-W47`` (ISO week), ``2026-11`` (month), ``2026-Q4`` (quarter), ``2026-S2`` (semester),
``2026`` (year). A period is a range of local dates; its bounds in UTC depend on the agency's
zone, so the same label covers each agency's own local days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_PERIODS = 12
_PATTERNS = (
    ("week", re.compile(r"(\d{4})-W(\d{1,2})")),
    ("quarter", re.compile(r"(\d{4})-Q([1-4])")),
    ("semester", re.compile(r"(\d{4})-S([12])")),
    ("month", re.compile(r"(\d{4})-(\d{1,2})")),
    ("year", re.compile(r"(\d{4})")),
)


@dataclass(frozen=True)
class Period:
    """A label and its local dates: ``first`` included, ``end`` excluded."""

    label: str
    kind: str  # week | month | quarter | semester | year
    first: date
    end: date

    def bounds(self, zone: str) -> tuple[datetime, datetime]:
        """[first 00:00, end 00:00) in ``zone``, as aware UTC datetimes."""
        tz = ZoneInfo(zone)
        return (datetime.combine(self.first, time(0), tzinfo=tz).astimezone(UTC),
                datetime.combine(self.end, time(0), tzinfo=tz).astimezone(UTC))


def _month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def parse(label: str) -> Period:
    """A label -> its period; ValueError naming the accepted forms otherwise."""
    text = label.strip().upper()
    for kind, pattern in _PATTERNS:
        m = pattern.fullmatch(text)
        if not m:
            continue
        year = int(m.group(1))
        n = int(m.group(2)) if m.lastindex and m.lastindex > 1 else 0
        if not 1900 <= year <= 9998:
            break
        if kind == "week":
            try:
                first = date.fromisocalendar(year, n, 1)
            except ValueError:
                raise ValueError(f"{year} has no ISO week {n}") from None
            return Period(f"{year}-W{n:02d}", kind, first, first + timedelta(days=7))
        if kind == "month":
            if not 1 <= n <= 12:
                break
            return Period(f"{year}-{n:02d}", kind, date(year, n, 1), _month_start(year, n + 1))
        if kind == "quarter":
            start = 3 * (n - 1) + 1
            return Period(f"{year}-Q{n}", kind, date(year, start, 1), _month_start(year, start + 3))
        if kind == "semester":
            start = 6 * (n - 1) + 1
            return Period(f"{year}-S{n}", kind, date(year, start, 1), _month_start(year, start + 6))
        return Period(f"{year}", kind, date(year, 1, 1), date(year + 1, 1, 1))
    raise ValueError(
        f"period must look like 2026-W47, 2026-11, 2026-Q4, 2026-S2 or 2026, got {label!r}"
    )


def quarter_of(day: date) -> Period:
    return parse(f"{day.year}-Q{(day.month - 1) // 3 + 1}")


def default_periods(now: datetime, zone: str) -> list[Period]:
    """The current quarter and the previous one, in ``zone``; the previous one first."""
    current = quarter_of(now.astimezone(ZoneInfo(zone)).date())
    return [quarter_of(current.first - timedelta(days=1)), current]


def parse_list(values: list[str]) -> list[Period]:
    """``?period=2026-Q3,2026-Q4`` or the parameter repeated; duplicates once, in given order."""
    labels = [p for v in values for p in v.split(",") if p.strip()]
    out: list[Period] = []
    for label in labels:
        period = parse(label)
        if period not in out:
            out.append(period)
    if len(out) > MAX_PERIODS:
        raise ValueError(f"at most {MAX_PERIODS} periods per request")
    return out
