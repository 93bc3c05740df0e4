"""Deadlines in working days (spec §8): China's official calendar, and a visible estimate past it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from credo.deadlines import Deadline, Due, calendar_ends, is_working_day
from credo.ids import parse_resident_id
from credo.principals import Principal
from credo.times import Duration
from tests.cityfactory import LI, POLICY, tiny_city

D = datetime.fromisoformat
LI_SELF = Principal("resident:li", "resident", resident=int(LI[:17]))

DUE = [
    # National Day 2024: Sun 29 Sep is a working day in exchange, 1-7 Oct are not
    ("over National Day", "2024-09-27T10:00", "3wd", Due(D("2024-10-08T10:00"))),
    ("the day before a holiday week", "2024-09-30T09:00", "1wd", Due(D("2024-10-08T09:00"))),
    ("from a holiday", "2024-10-03T15:30", "1wd", Due(D("2024-10-08T15:30"))),
    ("onto a Saturday made a working day", "2024-10-11T08:00", "1wd", Due(D("2024-10-12T08:00"))),
    ("an ordinary week", "2024-11-04T12:00", "5wd", Due(D("2024-11-11T12:00"))),
    ("Spring Festival 2025", "2025-01-27T09:00", "1wd", Due(D("2025-02-05T09:00"))),
    ("past the calendar's last year", "2026-12-30T12:00", "3wd", Due(D("2027-01-04T12:00"), estimated=True)),
    ("calendar days", "2024-10-01T00:00", "15d", Due(D("2024-10-16T00:00"))),
    ("calendar months, clamped", "2024-01-31T00:00", "1m", Due(D("2024-02-29T00:00"))),
    ("calendar days past the calendar", "2030-01-01T00:00", "10d", Due(D("2030-01-11T00:00"))),
]


@pytest.mark.parametrize(("name", "start", "text", "expected"), DUE, ids=[d[0] for d in DUE])
def test_due(name: str, start: str, text: str, expected: Due) -> None:
    assert Deadline.parse(text).due(D(start)) == expected


@pytest.mark.parametrize("text", ["3wd", "15d", "6m", "1y"])
def test_a_deadline_prints_as_written(text: str) -> None:
    assert str(Deadline.parse(text)) == text


@pytest.mark.parametrize("text", ["0wd", "3w", "wd", "3 wd", "1.5wd", "-2d", "12345wd"])
def test_a_bad_deadline_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be a deadline like"):
        Deadline.parse(text)


def test_the_calendar_is_the_official_one_and_its_end_is_known() -> None:
    assert is_working_day(date(2024, 9, 29)) == (True, False)    # a Sunday made a working day
    assert is_working_day(date(2024, 10, 2)) == (False, False)   # National Day holiday
    assert is_working_day(date(2024, 11, 9)) == (False, False)   # an ordinary Saturday
    end = calendar_ends()
    assert end.month == 12 and end.day == 31 and end.year >= 2026
    after = end + timedelta(days=1)
    assert is_working_day(after) == (after.weekday() < 5, True)


@given(st.datetimes(min_value=datetime(2005, 1, 1), max_value=datetime(2032, 12, 31)), st.integers(1, 30))
def test_working_days_count_exactly_n_working_days(start: datetime, n: int) -> None:
    due = Deadline.parse(f"{n}wd").due(start)
    assert due.at.time() == start.time() and due.at > start
    days = [start.date() + timedelta(days=i) for i in range(1, (due.at.date() - start.date()).days + 1)]
    marks = [is_working_day(d) for d in days]
    assert sum(w for w, _ in marks) == n and marks[-1][0]
    assert due.estimated == any(guess for _, guess in marks)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31)),
       st.sampled_from(["1d", "15d", "1m", "6m", "1y"]))
def test_calendar_deadlines_are_policy_durations(start: datetime, text: str) -> None:
    assert Deadline.parse(text).due(start) == Due(Duration.parse(text).add_to(start))


def test_an_objection_deadline_in_working_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An objection opened the Friday before National Day is due on the third working day after."""
    city = tiny_city(tmp_path, monkeypatch)
    try:
        doc = yaml.safe_load(POLICY)
        doc["objection_deadline"] = "3wd"
        applied = city.apply_policy(yaml.safe_dump(doc, allow_unicode=True))
        assert any("objection_deadline: working days" in str(w) for w in applied.warnings)
        monkeypatch.setenv("CREDO_NOW", "2024-09-27T10:00:00+08:00")
        number = city.open_objection(parse_resident_id(LI), "tax:x1", "paid on time", LI_SELF)
        monkeypatch.setenv("CREDO_NOW", "2024-10-08T09:59:59+08:00")
        assert [(o["id"], o["status"], o["deadline"], o["deadline_estimated"]) for o in city.objections()] == [
            (number, "open", "2024-10-08T10:00:00+08:00", False)]
        monkeypatch.setenv("CREDO_NOW", "2024-10-08T10:00:00+08:00")
        assert [o["status"] for o in city.objections(overdue=True)] == ["overdue"]
    finally:
        city.close()
