"""Redress (spec §8): every logged decision that a withdrawn record made worse, and nothing else.

One table of causes, each a small history on the tiny city (Li owes tax since 2024-08-01, on the tax
defaulters' list from 08-06, which denies high-speed rail; AA grades get a green channel for
administrative approval), with the redress it must give.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from credo.errors import Forbidden
from credo.ids import parse_resident_id
from credo.principals import Principal
from credo.service import Credo
from tests.cityfactory import LI, RECORD_COLUMNS, WANG, tiny_city, write_csv

RAIL = Principal("provider:rail", "provider", provider="rail")
HALL = Principal("provider:hall", "provider", provider="hall")
TAX = Principal("agency:tax", "agency", agency="tax")
LI_SELF = Principal(f"resident:{LI}", "resident", resident=int(LI[:17]))
TRAIN = "rail.high_speed.book"
APPROVAL = "admin.approval"

CREDO = str(Path(sys.executable).with_name("credo"))
Step = Callable[[Credo, pytest.MonkeyPatch, Path], None]


def at(when: str) -> Step:
    return lambda city, mp, _: mp.setenv("CREDO_NOW", when)


def check(action: str, who: Principal = RAIL) -> Step:
    def step(city: Credo, mp: pytest.MonkeyPatch, _: Path) -> None:
        city.check(parse_resident_id(LI), action, who)
    return step


def revoke(record: str = "x1") -> Step:
    def step(city: Credo, mp: pytest.MonkeyPatch, _: Path) -> None:
        city.revoke("tax", record, "paid before judgment", TAX)
    return step


def uphold() -> Step:
    def step(city: Credo, mp: pytest.MonkeyPatch, _: Path) -> None:
        number = city.open_objection(parse_resident_id(LI), "tax:x1", "not my debt", LI_SELF)
        city.resolve_objection(number, uphold=True, answer="wrong person", who=TAX)
    return step


def tax(record: str, occurred: str) -> Step:
    def step(city: Credo, mp: pytest.MonkeyPatch, tmp: Path) -> None:
        city.ingest_files("tax", [write_csv(tmp / f"{record}.csv", [
            RECORD_COLUMNS, (record, "tax.arrears", LI, occurred, "", "")])])
    return step


def donation() -> Step:
    def step(city: Credo, mp: pytest.MonkeyPatch, tmp: Path) -> None:
        city.ingest_files("blood-centre", [write_csv(tmp / "li-blood.csv", [
            RECORD_COLUMNS, ("d9", "civic.donation", LI, "2024-07-01", "", "")])])
    return step


@dataclass
class Case:
    name: str
    steps: list[Step]
    expected: list[tuple[str, str, str, str, list[str]]]
    """(provider, action, said, holds now, withdrawn records) of each item, oldest first."""


CASES = [
    Case("a denial resting on a revoked record", [check(TRAIN), at("2024-09-02T10:00:00+08:00"), revoke()],
         [("rail", TRAIN, "deny", "allow", ["tax:x1"])]),
    Case("a denial resting on a record withdrawn by an upheld objection",
         [check(TRAIN), at("2024-09-02T10:00:00+08:00"), uphold()], [("rail", TRAIN, "deny", "allow", ["tax:x1"])]),
    Case("a benefit the record cost", [donation(), check(APPROVAL, HALL), revoke()],
         [("hall", APPROVAL, "allow", "allow (green_channel)", ["tax:x1"])]),
    Case("every provider told", [check(TRAIN), check(TRAIN, HALL), revoke()],
         [("rail", TRAIN, "deny", "allow", ["tax:x1"]), ("hall", TRAIN, "deny", "allow", ["tax:x1"])]),
    Case("a decision made after the withdrawal", [revoke(), check(TRAIN)], []),
    Case("a denial that another record still holds",
         [tax("x2", "2024-08-15"), check(TRAIN), revoke()], []),
    Case("an allow that the record did not change", [check(APPROVAL, HALL), revoke()], []),
    Case("a record that occurred after the decision's time",
         [check(TRAIN), at("2024-09-30T10:00:00+08:00"), tax("x3", "2024-09-20"), revoke("x3")], []),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_redress_causes(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    city = tiny_city(tmp_path, monkeypatch)
    try:
        for step in case.steps:
            step(city, monkeypatch, tmp_path)
        items = city.redress()
        got = [(i["provider"], i["action"], _shown(i["said"]), _shown(i["holds"]),
                [w["record"] for w in i["withdrawn"]]) for i in items]
        assert got == case.expected
        told = [n for n in city.notices(parse_resident_id(LI)) if n["kind"] == "redress"]
        assert sorted(n["detail"]["decision_id"] for n in told) == sorted(i["decision_id"] for i in items)
    finally:
        city.close()


def _shown(d: dict[str, object]) -> str:
    benefits = d["benefits"]
    assert isinstance(benefits, list)
    return str(d["decision"]) + (f" ({', '.join(benefits)})" if benefits else "")


def test_an_item_names_the_decision_and_the_withdrawal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    city = tiny_city(tmp_path, monkeypatch)
    try:
        decision = city.check(parse_resident_id(LI), TRAIN, RAIL)
        monkeypatch.setenv("CREDO_NOW", "2024-09-05T10:00:00+08:00")
        city.revoke("tax", "x1", "paid before judgment", TAX)
        [item] = city.redress()
        assert {k: item[k] for k in ("decision_id", "resident_id", "provider", "principal", "decided_at",
                                     "found_at", "age_days")} == {
            "decision_id": decision.decision_id, "resident_id": LI, "provider": "rail", "principal": "provider:rail",
            "decided_at": "2024-09-01T10:00:00+08:00", "found_at": "2024-09-05T10:00:00+08:00", "age_days": 0}
        assert item["withdrawn"] == [{"record": "tax:x1", "withdrawn_at": "2024-09-05T10:00:00+08:00",
                                      "reason": "paid before judgment", "by": "agency:tax", "objection": None}]
        monkeypatch.setenv("CREDO_NOW", "2024-09-12T11:00:00+08:00")
        assert city.redress()[0]["age_days"] == 7
    finally:
        city.close()


def test_each_decision_is_examined_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second withdrawal looks again only at decisions the first did not make better."""
    city = tiny_city(tmp_path, monkeypatch)
    try:
        tax("x2", "2024-08-15")(city, monkeypatch, tmp_path)
        city.check(parse_resident_id(LI), TRAIN, RAIL)
        city.revoke("tax", "x1", "paid", TAX)
        assert city.redress() == []
        city.revoke("tax", "x2", "paid too", TAX)
        [item] = city.redress()
        assert [w["record"] for w in item["withdrawn"]] == ["tax:x1", "tax:x2"]
        assert city.con.execute("SELECT needed FROM redress ORDER BY found_at, needed").fetchall() == [
            (False,), (True,)]
        city.ingest_files("tax", [write_csv(tmp_path / "x4.csv", [RECORD_COLUMNS, ("x4", "tax.arrears", LI,
                                                                                  "2024-08-20", "", "")])])
        city.revoke("tax", "x4", "a later one, not known then", TAX)
        assert len(city.redress()) == 1 and city.con.execute("SELECT count(*) FROM redress").fetchall() == [(2,)]
    finally:
        city.close()


def test_who_sees_which_items(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    city = tiny_city(tmp_path, monkeypatch)
    try:
        city.check(parse_resident_id(LI), TRAIN, RAIL)
        city.check(parse_resident_id(LI), TRAIN, HALL)
        city.revoke("tax", "x1", "paid", TAX)
        assert [i["provider"] for i in city.redress(RAIL)] == ["rail"]
        assert [i["provider"] for i in city.redress(provider="hall")] == ["hall"]
        assert len(city.redress(LI_SELF)) == 2
        assert city.redress(resident_id=parse_resident_id(WANG)) == []
        with pytest.raises(Forbidden):
            city.redress(RAIL, provider="hall")
        with pytest.raises(Forbidden):
            city.redress(TAX)
        wang = Principal(f"resident:{WANG}", "resident", resident=int(WANG[:17]))
        assert city.redress(wang) == []
        with pytest.raises(Forbidden):
            city.redress(wang, resident_id=parse_resident_id(LI))
    finally:
        city.close()


def test_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``credo revoke`` finds the decision a withdrawal made wrong; ``credo redress`` lists it, as JSON too."""
    city = tiny_city(tmp_path, monkeypatch)
    decision = city.check(parse_resident_id(LI), TRAIN, RAIL)
    city.close()
    env = {**os.environ, "CREDO_NOW": "2024-09-03T09:00:00+08:00"}
    db = str(tmp_path / "city.duckdb")

    def credo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CREDO, "--db", db, *args], capture_output=True, text=True, timeout=120, env=env)

    assert credo("revoke", "--agency", "tax", "x1", "--reason", "paid before judgment").returncode == 0
    listed = credo("redress", "--json", "--provider", "rail")
    [item] = json.loads(listed.stdout)
    assert (item["decision_id"], item["said"]["decision"], item["holds"]["decision"]) == (
        decision.decision_id, "deny", "allow")
    table = credo("redress")
    assert table.returncode == 0 and "tax:x1 (paid before judgment)" in table.stdout and "rail" in table.stdout
    assert json.loads(credo("redress", "--json", "--provider", "hall").stdout) == []
    assert json.loads(credo("redress", "--json", "--resident", WANG).stdout) == []


def test_the_provider_is_told_on_its_feed_and_acknowledges_it_there(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    city = tiny_city(tmp_path, monkeypatch)
    try:
        decision = city.check(parse_resident_id(LI), TRAIN, RAIL)
        city.check(parse_resident_id(LI), TRAIN, HALL)
        before = city.feed_page(RAIL)["next"]
        city.revoke("tax", "x1", "paid before judgment", TAX)
        page = city.feed_page(RAIL, after=before)
        changes = json.loads(page["changes"])
        assert [(c["action"], c["decision"], c["cause"]) for c in changes] == [(TRAIN, "allow", "revocation")]
        [item] = page["redress"]
        assert (item["decision_id"], item["provider"], item["feed_seq"], item["acknowledged"]) == (
            decision.decision_id, "rail", changes[-1]["seq"], False)
        assert city.feed_page(RAIL, after=page["next"])["redress"] == []
        assert city.dashboard()["redress"]["open"] == 2
        city.feed_ack(RAIL, page["next"])
        assert [i["acknowledged"] for i in city.redress(provider="rail")] == [True]
        assert [i["acknowledged"] for i in city.redress(provider="hall")] == [False]
        board = city.dashboard()["redress"]
        assert (board["open"], [r["told"] for r in board["by_provider"]]) == (1, ["hall"])
    finally:
        city.close()
