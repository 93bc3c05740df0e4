"""One clock for "a birth date in the future": the city's date on ``credo.settings.now`` (so
``CREDO_NOW``), never the process's own date.

The clock is fixed at 01:00 city time on 2 June 2031, which is still 1 June in UTC (and years after
the machine's own date): a resident born on the city's today is a resident like any other, through
the CLI and through the server; one born on the city's tomorrow is refused everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from credo import ids, settings
from tests.cityfactory import POLICY
from tests.conftest import City, running, write_csv

CITY_NOW = "2031-06-02T01:00:00+08:00"
TODAY, TOMORROW = date(2031, 6, 2), date(2031, 6, 3)
NEWBORN = ids.make_resident_id("110105", TODAY, 1)
UNBORN = ids.make_resident_id("110105", TOMORROW, 2)
CREDO = str(Path(sys.executable).with_name("credo"))


def credo(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CREDO, "--db", str(db), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CREDO_NOW": CITY_NOW})


@pytest.fixture(scope="module")
def newborn_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    folder = tmp_path_factory.mktemp("clock")
    db = folder / "city.duckdb"
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    assert credo(db, "init", "--policy", str(folder / "policy.yaml")).returncode == 0
    feed = write_csv(folder / "population.csv", [("resident_id", "name", "district", "status", "status_date"),
                                                  (NEWBORN, "Newborn", "110105", "", ""),
                                                  (UNBORN, "Unborn", "110105", "", "")])
    loaded = credo(db, "ingest", "--agency", "population", str(feed), "--json")
    [batch] = json.loads(loaded.stdout)
    assert (batch["accepted"], batch["reasons"]) == (1, {"id_future": 1})
    yield City(folder, db)


def test_the_clock_is_one_day_ahead_of_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDO_NOW", CITY_NOW)
    assert settings.now("Asia/Shanghai") == datetime(2031, 6, 2, 1, 0)
    assert datetime.fromisoformat(CITY_NOW).astimezone(ZoneInfo("UTC")).date() == date(2031, 6, 1)


@pytest.mark.parametrize("args", [["standing", NEWBORN, "--json"], ["explain", NEWBORN, "--json"],
                                  ["token", "create", "--role", "resident", "--resident", NEWBORN]],
                         ids=["standing", "explain", "token"])
def test_born_on_the_city_today_in_the_cli(newborn_city: City, args: list[str]) -> None:
    done = credo(newborn_city.db, *args)
    assert done.returncode == 0, done.stderr
    if "--json" in args:
        assert json.loads(done.stdout)["resident_id"] == NEWBORN


@pytest.mark.parametrize("command", ["standing", "explain"])
def test_born_on_the_city_tomorrow_is_in_the_future(newborn_city: City, command: str) -> None:
    done = credo(newborn_city.db, command, UNBORN)
    assert (done.returncode, done.stderr) == (2, "error: resident_id: birth date 20310603 is in the future\n")


def test_born_on_the_city_today_through_the_server(newborn_city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """The resident's own token reaches their records; an operator checks them for an action."""
    made = credo(newborn_city.db, "token", "create", "--role", "resident", "--resident", NEWBORN)
    operator = credo(newborn_city.db, "token", "create", "--role", "operator")
    newborn_city.tokens = {"resident": made.stdout.strip(), "operator": operator.stdout.strip()}
    monkeypatch.setenv("CREDO_NOW", CITY_NOW)  # the server's clock (City.env sets the tiny city's NOW)
    monkeypatch.setattr(City, "env", lambda self: {"CREDO_DB": str(self.db), "CREDO_NOW": CITY_NOW,
                                                   "CREDO_RATE_LIMIT": "0"})
    with running(newborn_city) as live, live.client("resident") as mine, live.client("operator") as op:
        for path in ("standing", "records", "explanation"):
            got = mine.get(f"/v1/residents/{NEWBORN}/{path}")
            assert got.status_code == 200, got.text
        unborn = op.get(f"/v1/residents/{UNBORN}/standing", params={"purpose": "check"})
        assert unborn.status_code in (400, 422) and "in the future" in unborn.text
