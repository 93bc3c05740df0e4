"""City time: instants are stored as naive wall-clock time in the city's zone.

Why naive local time: every rule of the policy is calendar arithmetic in the
city's zone (a record's year, "valid for 5y", "grace 10d"), so storing the
wall clock makes each rule plain SQL on both engines, with no zone functions
whose meaning differs between DuckDB and Spark. The zone is fixed when the
database is created; instants with an offset are converted on the way in and
printed with the zone's offset on the way out.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Shanghai"
_DURATION = re.compile(r"^([1-9][0-9]{0,4})([dmy])$")


@dataclass(frozen=True)
class Duration:
    """A policy duration: whole months (``m``, ``y``) or whole days (``d``)."""

    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        m = _DURATION.match(text.strip())
        if not m:
            raise ValueError(f"must be a duration like 15d, 6m or 2y, got {text!r}")
        n, unit = int(m.group(1)), m.group(2)
        return cls(days=n) if unit == "d" else cls(months=n * (12 if unit == "y" else 1))

    def __str__(self) -> str:
        if self.days:
            return f"{self.days}d"
        return f"{self.months // 12}y" if self.months % 12 == 0 else f"{self.months}m"

    def add_to(self, when: datetime) -> datetime:
        """Calendar addition, the day clamped to the month's end (Jan 31 + 1m = Feb 29)."""
        if self.days:
            return when + timedelta(days=self.days)
        total = when.year * 12 + (when.month - 1) + self.months
        year, month = divmod(total, 12)
        day = min(when.day, calendar.monthrange(year, month + 1)[1])
        return when.replace(year=year, month=month + 1, day=day)


def parse_when(text: str, tz: str = DEFAULT_TZ) -> datetime:
    """An ISO 8601 date or date-time as naive city time; a bare date is local midnight."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time())
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    return value


def iso(when: datetime | None, tz: str = DEFAULT_TZ) -> str | None:
    """Naive city time printed as ISO 8601 with the zone's offset."""
    if when is None:
        return None
    return when.replace(tzinfo=ZoneInfo(tz)).isoformat()
