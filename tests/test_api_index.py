"""The decision index (``credo.index``) against the store, in-process: same decisions, kept in step.

Every decision the index gives must be the one ``Credo.check`` (which reads the
store) gives; a write through the service must show in the index once synced;
an entry past its due time must be recomputed before use.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest

from credo import ids
from credo.decisions import Decision
from credo.errors import NotFound
from credo.ids import parse_resident_id
from credo.index import DecisionIds, micros
from credo.principals import OPERATOR_CLI
from credo.service import Credo
from credo.serving.core import Core
from credo.serving.runtime import Runtime
from tests.conftest import PEOPLE, City, rid

ACTIONS = ("rail.high_speed.book", "admin.approval")
TODAY = date(2024, 9, 1)


@pytest.fixture
def rt(city: City) -> Iterator[Runtime]:
    runtime = Runtime(Core(city.db))
    yield runtime
    runtime.close()


def index_decision(rt: Runtime, resident_id: str, action: str) -> dict[str, object]:
    now = rt.now()
    key, due, normalised = rt.index.locate(resident_id, now.date())
    if due <= micros(now):
        rt.refresh(np.array([key], np.int64))
    return rt.index.decide(key, action, now, normalised).to_json()


def store_decision(rt: Runtime, resident_id: str, action: str) -> dict[str, object]:
    decision: Decision = rt.hub.service(Credo.check, parse_resident_id(resident_id), action, OPERATOR_CLI, "test")
    return decision.to_json()


def same(a: dict[str, object], b: dict[str, object]) -> bool:
    def strip(d: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in d.items() if k != "decision_id"}

    return strip(a) == strip(b)


@pytest.mark.parametrize("action", ACTIONS)
def test_every_decision_equals_the_stores(rt: Runtime, action: str) -> None:
    for letter in PEOPLE:
        assert same(index_decision(rt, rid(letter), action), store_decision(rt, rid(letter), action)), letter


def test_only_residents_with_a_measure_have_an_entry(rt: Runtime) -> None:
    # A, D..I are on (or pending on) the measured black list, B has the measured grade AA.
    assert rt.index.registered == len(PEOPLE)
    assert rt.index.measured == len(PEOPLE) - 2  # not C, not J
    assert index_decision(rt, rid("C"), "rail.high_speed.book")["reasons"] == []


def test_a_pending_list_comes_into_force_when_its_due_time_passes(rt: Runtime,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert index_decision(rt, rid("D"), "rail.high_speed.book")["decision"] == "allow"
    monkeypatch.setenv("CREDO_NOW", "2024-09-05T00:00:00+08:00")
    key = ids.resident_key(rid("D"))
    assert list(rt.index.stale(np.array([key]), rt.now())) == [key]
    after = index_decision(rt, rid("D"), "rail.high_speed.book")
    assert after["decision"] == "deny"
    assert same(after, store_decision(rt, rid("D"), "rail.high_speed.book"))
    assert len(rt.index.stale(np.array([key]), rt.now())) == 0


def test_writes_reach_the_index_through_the_change_feed(rt: Runtime) -> None:
    row = {"record_id": "n1", "type": "tax.arrears", "subject": rid("C"), "occurred_at": "2024-08-01"}
    rt.hub.ingest_rows("tax", [row], OPERATOR_CLI, "test")
    assert rt.behind()
    rt.sync()
    assert not rt.behind()
    assert index_decision(rt, rid("C"), "rail.high_speed.book")["decision"] == "deny"
    rt.hub.revoke("tax", "n1", "entered in error", OPERATOR_CLI)
    rt.sync()
    assert index_decision(rt, rid("C"), "rail.high_speed.book")["decision"] == "allow"


def test_a_new_resident_is_registered_once_synced(rt: Runtime) -> None:
    newcomer = ids.make_resident_id("110101", date(2001, 2, 3), 11)
    with pytest.raises(NotFound):
        rt.index.locate(newcomer, TODAY)
    rt.hub.ingest_rows("population", [{"resident_id": newcomer, "name": "New", "district": "110101"}],
                OPERATOR_CLI, "test")
    rt.sync()
    assert rt.index.locate(newcomer, TODAY)[0] == ids.resident_key(newcomer)
    assert rt.index.registered == len(PEOPLE) + 1
    for letter in PEOPLE:  # the others did not move
        assert rt.index.locate(rid(letter), TODAY)[0] == ids.resident_key(rid(letter))


def test_a_new_policy_reloads_everything(rt: Runtime) -> None:
    from tests.conftest import POLICY

    rt.hub.apply_policy(POLICY.replace("policy: tiny-1", "policy: tiny-2").replace(
        "- {grades: [AA], action: admin.approval, effect: green_channel}",
        "- {grades: [AA, A], action: admin.approval, effect: green_channel}"), OPERATOR_CLI)
    rt.sync()
    assert rt.index.policy.label == "tiny-2@2"
    assert index_decision(rt, rid("C"), "admin.approval")["benefits"] == ["green_channel"]  # C is grade A


# (input, error code or None, normalised)
LOCATE: list[tuple[str, str | None, str | None]] = [
    (rid("A"), None, rid("A")),
    (rid("J").lower(), None, rid("J")),
    (f"  {rid('A')}\t", None, rid("A")),
    (rid("A")[:-1], "id_length", None),
    (rid("A")[:-1] + "0", "id_check", None),
    ("11011219871312101" + "0", "id_date", None),
    ("1101121987061210ab", "id_format", None),
    (ids.make_resident_id("110101", date(1999, 1, 1), 1), "unknown_resident", None),
]


@pytest.mark.parametrize(("given", "code", "normalised"), LOCATE)
def test_locate_fast_and_slow_paths_agree_with_credo_ids(rt: Runtime, given: str, code: str | None,
                                                         normalised: str | None) -> None:
    if code is None:
        assert rt.index.locate(given, TODAY)[2] == normalised
    else:
        with pytest.raises((ids.IdError, NotFound)) as caught:
            rt.index.locate(given, TODAY)
        err = caught.value
        assert (err.reason if isinstance(err, ids.IdError) else err.code) == code
    _, ok, errors = rt.index.locate_many([given], TODAY)
    assert bool(ok[0]) == (code is None)
    if code is not None:
        assert errors[0]["code"] == code


def test_decision_ids_are_unique() -> None:
    made = DecisionIds()
    other = DecisionIds()
    taken = [made.one() for _ in range(100)] + made.take(1000) + other.take(10)
    assert len(set(taken)) == len(taken)
    assert all(len(t) == 34 and t.startswith("d-") for t in taken)
