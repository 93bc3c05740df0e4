"""Replay through the CLI: a random history of ``credo`` commands (checks, revocations, objections,
new records, the clock moving or standing still), then ``credo audit replay`` of every decision
the history logged exits 0 and says the same. Few examples: each command is a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RECORD_COLUMNS, build_city, rid, write_csv

CREDO = str(Path(sys.executable).parent / "credo")
START = datetime(2024, 9, 1, 10)
PEOPLE = "ADEFG"
STEPS = st.lists(st.tuples(st.sampled_from(["check", "check", "revoke", "record", "open", "uphold", "tick"]),
                           st.integers(0, 20), st.integers(0, 6 * 24 * 60)), min_size=4, max_size=9)


def credo(db: Path, now: datetime, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDO_DB": str(db), "CREDO_NOW": now.isoformat() + "+08:00"}
    return subprocess.run([CREDO, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


@settings(max_examples=3, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(STEPS)
def test_every_decision_made_on_the_cli_replays_the_same(tmp_path_factory: pytest.TempPathFactory,
                                                         steps: list[tuple[str, int, int]]) -> None:
    city = build_city(tmp_path_factory.mktemp("cli-replay"))
    now, made, records = START, [], [f"x{i}" for i in range(1, 8)]
    for n, (what, pick, minutes) in enumerate(steps):
        who = rid(PEOPLE[pick % len(PEOPLE)])
        if what == "tick":
            now += timedelta(minutes=minutes)
        elif what == "check":
            done = credo(city.db, now, "check", who, "rail.high_speed.book", "--json")
            assert done.returncode == 0, done.stderr
            made.append(json.loads(done.stdout)["decision_id"])
        elif what == "revoke":
            credo(city.db, now, "revoke", "--agency", "tax", records[pick % len(records)], "--reason", "error")
        elif what == "record":
            occurred = (now - timedelta(minutes=minutes)).isoformat() + "+08:00"
            feed = write_csv(city.folder / f"n{n}.csv",
                             [RECORD_COLUMNS, (f"n{n}", "tax.arrears", who, occurred, "", "")])
            assert credo(city.db, now, "ingest", "--agency", "tax", str(feed)).returncode == 0
            records.append(f"n{n}")
        elif what == "open":
            credo(city.db, now, "objection", "open", who, f"tax:{records[pick % len(records)]}", "--reason", "no")
        else:
            credo(city.db, now, "objection", "resolve", str(1 + pick % 3), "--uphold", "--answer", "our error")
    later = now + timedelta(days=30)  # replayed well after: time alone changes nothing either
    for decision_id in made:
        done = credo(city.db, later, "audit", "replay", decision_id, "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["same"], done.stdout + done.stderr
