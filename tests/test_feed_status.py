"""``credo feed status`` (spec §7, §8): each provider's acknowledged position, lag and overdue changes.

The tiny city's feed holds the changes its build made, recorded on Sunday 2024-09-01 10:00. With
``correction_deadline: 3wd`` (the default) they fall due on the third working day after that day:
Wednesday 2024-09-04 10:00 (the calendar has no holiday that week). Provider ``air`` (every action)
and ``rail`` (``--actions rail.high_speed.book``) each see the changes on their actions only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from credo.principals import Principal
from credo.service import Credo
from tests.conftest import City, fixed_clock, running

CREDO = str(Path(sys.executable).with_name("credo"))
RAIL = "rail.high_speed.book"


def status(city: City, now: str) -> dict[str, Any]:
    done = subprocess.run([CREDO, "feed", "status", "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **city.env(), "CREDO_NOW": now})
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def by_provider(found: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {p["provider"]: (p["actions"], p["acknowledged"], p["lag"], p["overdue"]) for p in found["providers"]}


@pytest.fixture
def fed(city: City) -> City:
    with fixed_clock("2024-09-01T10:00:00+08:00"), closing(Credo.open(city.db)) as credo:
        credo.create_token("provider", provider="rail", actions=[RAIL])
        credo.feed_ack(Principal("provider:air", "provider", provider="air"), 3)
    return city


def test_lag_and_overdue_by_the_working_day_deadline(fed: City) -> None:
    before = status(fed, "2024-09-04T09:59:00+08:00")
    assert before["head"] == 7 and before["deadline"] == "3wd"
    assert by_provider(before) == {"air": (None, 3, 4, 0), "rail": ([RAIL], 0, 6, 0)}
    due = status(fed, "2024-09-04T10:00:00+08:00")
    assert by_provider(due) == {"air": (None, 3, 4, 4), "rail": ([RAIL], 0, 6, 6)}
    [air] = [p for p in due["providers"] if p["provider"] == "air"]
    assert air["oldest_unacknowledged"] == "2024-09-01T10:00:00+08:00" and air["deadline_estimated"] is False


def test_a_deadline_past_the_official_calendar_says_it_is_estimated(fed: City) -> None:
    with fixed_clock("2031-09-01T10:00:00+08:00"), closing(Credo.open(fed.db)) as credo:
        credo.score()  # every tax record has expired: changes recorded in 2031
    [rail] = [p for p in status(fed, "2031-09-10T10:00:00+08:00")["providers"] if p["provider"] == "rail"]
    assert rail["overdue"] == rail["lag"] > 6 and rail["deadline_estimated"] is True


def test_the_status_comes_from_the_server_while_it_holds_the_database(fed: City) -> None:
    with running(fed) as live:
        env = {**os.environ, **fed.env(), "CREDO_TOKEN": fed.tokens["operator"],
               "CREDO_PORT": live.url.rsplit(":", 1)[1]}
        done = subprocess.run([CREDO, "feed", "status"], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        assert "rail.high_speed.book" in done.stdout and "every action" in done.stdout
