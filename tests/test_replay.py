"""Replay (spec §8): every logged decision, recomputed at T = K = the time it was made, comes out
the same: outcome, benefits, reason codes and the records behind each.

A random history runs through the library on the tiny city: records arrive (arrears, their
settlement, donations), are revoked, contested, upheld or rejected, policies are applied, and
decisions are made one at a time and in batches (several logged together, as a manifest is),
with the clock standing still between steps as often as it moves (so writes and decisions share
instants and only the log's order tells them apart). Then every decision in the log replays the
same, whatever happened after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credo import decisions
from credo.errors import CredoError
from credo.ids import parse_resident_id
from credo.principals import OPERATOR_CLI
from credo.service import Credo
from tests.cityfactory import LI, POLICY, RECORD_COLUMNS, WANG, tiny_city, write_csv

ACTIONS = ("rail.high_speed.book", "admin.approval")
POLICIES = [POLICY, POLICY.replace("tiny-1", "tiny-2").replace("points: 30", "points: 10")
            .replace("grace: 5d", "grace: 2d")]
PEOPLE = (LI, WANG)
START = datetime(2024, 9, 1, 10)

Step = tuple[str, int, int]
"""(what, a number choosing among things, a second one); read by ``run``."""
STEPS = st.lists(st.tuples(st.sampled_from(["record", "settle", "donate", "revoke", "open", "uphold", "reject",
                                             "policy", "check", "batch", "tick"]),
                           st.integers(0, 50), st.integers(0, 7 * 24 * 60)), min_size=3, max_size=25)


def run(credo: Credo, folder: Path, steps: list[Step], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The history; the decisions it logged, by id."""
    now = START
    made: list[str] = []
    records: list[tuple[str, str]] = [("tax", "x1"), ("blood-centre", "d1")]
    for n, (what, pick, minutes) in enumerate(steps):
        resident = PEOPLE[pick % 2]
        try:
            if what == "tick":
                now += timedelta(minutes=minutes)
                monkeypatch.setenv("CREDO_NOW", now.isoformat() + "+08:00")
            elif what in ("record", "settle", "donate"):
                agency, code = {"record": ("tax", "tax.arrears"), "settle": ("tax", "tax.settled"),
                                "donate": ("blood-centre", "civic.donation")}[what]
                resolves = next((r for a, r in reversed(records) if a == "tax"), "") if what == "settle" else ""
                occurred = (now - timedelta(minutes=minutes)).isoformat() + "+08:00"
                credo.ingest_files(agency, [write_csv(folder / f"b{n}.csv", [
                    RECORD_COLUMNS, (f"n{n}", code, resident, occurred, resolves, "")])])
                records.append((agency, f"n{n}"))
            elif what == "revoke":
                agency, record_id = records[pick % len(records)]
                credo.revoke(agency, record_id, "entered in error")
            elif what == "open":
                agency, record_id = records[pick % len(records)]
                owner = LI if credo.records(parse_resident_id(LI)) and any(
                    r["record_id"] == record_id for r in credo.records(parse_resident_id(LI))) else WANG
                credo.open_objection(parse_resident_id(owner), f"{agency}:{record_id}", "not mine")
            elif what in ("uphold", "reject"):
                credo.resolve_objection(1 + pick % 5, uphold=what == "uphold", answer="answered")
            elif what == "policy":
                credo.apply_policy(POLICIES[pick % 2])
            elif what == "check":
                made.append(credo.check(parse_resident_id(resident), ACTIONS[pick % 2]).decision_id)
            else:  # a batch: every resident decided on one action and logged together
                action = ACTIONS[pick % 2]
                at = credo.now()
                batch = [(credo.resident(parse_resident_id(p)), p) for p in PEOPLE]
                decided = [(key, decisions.decide(credo.policy, credo._current(key, at), action, at))
                           for key, _ in batch]
                credo.log_decisions(OPERATOR_CLI, decided, "manifest", at)
                made += [d.decision_id for _, d in decided]
        except CredoError:
            pass  # a step the state refuses (already revoked, no such objection): the history goes on
    return made


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Credo]:
    credo = tiny_city(tmp_path, monkeypatch)
    try:
        yield credo
    finally:
        credo.close()


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(STEPS)
def test_every_logged_decision_replays_the_same(tmp_path_factory: pytest.TempPathFactory,
                                                monkeypatch: pytest.MonkeyPatch, steps: list[Step]) -> None:
    folder = tmp_path_factory.mktemp("replay")
    credo = tiny_city(folder, monkeypatch)
    try:
        made = run(credo, folder, steps, monkeypatch)
        for decision_id in made:
            r = credo.replay(decision_id)
            assert r["same"], r
    finally:
        credo.close()


def test_a_record_revoked_after_the_decision_still_replays_the_same(city: Credo,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The denial rested on tax:x1; withdrawn a week later, x1 counts at no T now, yet the decision
    replays as it was made: at K = its time Credo did not know of the withdrawal."""
    denied = city.check(parse_resident_id(LI), "rail.high_speed.book")
    assert denied.decision == "deny"
    monkeypatch.setenv("CREDO_NOW", "2024-09-08T10:00:00+08:00")
    city.revoke("tax", "x1", "paid before judgment")
    assert city.check(parse_resident_id(LI), "rail.high_speed.book").decision == "allow"
    assert city.standing(parse_resident_id(LI), START).score == 1000  # retroactive, from what is known now
    r = city.replay(denied.decision_id)
    assert r["same"] and r["replayed"]["decision"] == "deny" and r["replayed"]["records"] == [["tax:x1"]]
    assert (r["at"], r["known_at"]) == ("2024-09-01T10:00:00+08:00", "2024-09-01T10:00:00+08:00")


def test_a_decision_made_at_the_instant_of_a_write_replays_on_the_right_side_of_it(
        city: Credo, tmp_path: Path) -> None:
    """Under a clock that stands still, a revocation and the decisions around it share one instant:
    the log's order says which knew of it."""
    before = city.check(parse_resident_id(LI), "rail.high_speed.book")
    city.revoke("tax", "x1", "wrong person")
    after = city.check(parse_resident_id(LI), "rail.high_speed.book")
    assert (before.decision, after.decision) == ("deny", "allow")
    assert [city.replay(d.decision_id)["replayed"]["decision"] for d in (before, after)] == ["deny", "allow"]
