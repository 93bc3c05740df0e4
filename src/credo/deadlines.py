"""Deadlines that a policy gives an agency or a provider: calendar durations or working days.

A deadline is either a policy duration (``15d``, ``6m``, ``1y``: calendar arithmetic, as
``credo.times.Duration``) or ``<n>wd``, n working days on China's official calendar: the weekend and
public holidays are not working days, and the weekend days the State Council makes working days in
exchange are. The calendar comes from the ``chinesecalendar`` package, which knows only the years whose
holidays have been announced; a day past them is counted Monday to Friday and the deadline is marked
``estimated``, so that the fallback is visible wherever the deadline is shown, never silent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache

import chinese_calendar

from credo.times import Duration

_WORKING_DAYS = re.compile(r"^([1-9][0-9]{0,3})wd$")


@cache
def calendar_ends() -> date:
    """The last day the official calendar knows (the end of the last year with announced holidays)."""
    return date(max(day.year for day in chinese_calendar.holidays), 12, 31)


def is_working_day(day: date) -> tuple[bool, bool]:
    """Whether ``day`` is a working day, and whether that is an estimate (a day past the calendar,
    counted Monday to Friday)."""
    if calendar_ends() < day or day.year < 2004:
        return day.weekday() < 5, True
    return bool(chinese_calendar.is_workday(day)), False


@dataclass(frozen=True)
class Due:
    """When a deadline falls, and whether a day past the official calendar was counted to get there."""

    at: datetime
    estimated: bool = False


@dataclass(frozen=True)
class Deadline:
    """A calendar duration, or ``working_days`` working days when that is set."""

    duration: Duration = field(default_factory=Duration)
    working_days: int = 0

    @classmethod
    def parse(cls, text: str) -> Deadline:
        m = _WORKING_DAYS.match(text.strip())
        if m:
            return cls(working_days=int(m.group(1)))
        try:
            return cls(duration=Duration.parse(text))
        except ValueError:
            raise ValueError(f"must be a deadline like 15d, 6m, 1y or 3wd, got {text!r}") from None

    def __str__(self) -> str:
        return f"{self.working_days}wd" if self.working_days else str(self.duration)

    def due(self, start: datetime) -> Due:
        """The instant the deadline falls: for working days, the same time of day on the n-th working
        day after ``start``'s day (a start on a holiday counts from the next working day)."""
        if not self.working_days:
            return Due(self.duration.add_to(start))
        day, left, estimated = start.date(), self.working_days, False
        while left:
            day += timedelta(days=1)
            working, guessed = is_working_day(day)
            estimated = estimated or guessed
            if working:
                left -= 1
        return Due(datetime.combine(day, start.time()), estimated)
