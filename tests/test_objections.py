"""Objections (spec §5): every transition, the standing before, during and after, overdue with a fixed clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from credo.errors import Conflict, NotFound
from credo.ids import parse_resident_id
from credo.principals import Principal
from credo.service import Credo
from tests.cityfactory import LI, WANG, tiny_city

TAX = Principal("agency:tax", "agency", agency="tax")
BLOOD = Principal("agency:blood-centre", "agency", agency="blood-centre")
LI_SELF = Principal("resident:li", "resident", resident=int(LI[:17]))


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Credo:
    return tiny_city(tmp_path, monkeypatch)


def test_standing_before_during_and_after_a_rejected_objection(city: Credo) -> None:
    assert city.standing(parse_resident_id(LI)).score == 950
    assert city.check(parse_resident_id(LI), "rail.high_speed.book").decision == "deny"
    number = city.open_objection(parse_resident_id(LI), "tax:x1", "paid on time", LI_SELF)
    during = city.standing(parse_resident_id(LI))
    assert (during.score, during.in_force()) == (1000, [])
    assert city.check(parse_resident_id(LI), "rail.high_speed.book").decision == "allow"
    city.resolve_objection(number, uphold=False, answer="no payment received", who=TAX)
    after = city.standing(parse_resident_id(LI))
    assert (after.score, after.in_force()) == (950, ["tax_defaulter"])
    [row] = city.objections(resident_id=parse_resident_id(LI))
    assert (row["status"], row["answer"]) == ("rejected", "no payment received")


def test_upheld_objection_revokes_the_record(city: Credo) -> None:
    number = city.open_objection(parse_resident_id(LI), "tax:x1", "not my debt", LI_SELF)
    city.resolve_objection(number, uphold=True, answer="wrong person", who=TAX)
    assert city.standing(parse_resident_id(LI)).score == 1000
    explained = city.explain(parse_resident_id(LI))
    [rec] = explained["records"]
    assert rec["status"] == "revoked" and "objection 1 upheld: wrong person" in rec["why"]
    with pytest.raises(Conflict, match="already revoked"):
        city.open_objection(parse_resident_id(LI), "tax:x1", "again", LI_SELF)


def test_reopen_after_rejection_is_allowed_but_not_while_open(city: Credo) -> None:
    first = city.open_objection(parse_resident_id(LI), "tax:x1", "paid", LI_SELF)
    with pytest.raises(Conflict, match="still open"):
        city.open_objection(parse_resident_id(LI), "tax:x1", "paid!", LI_SELF)
    city.resolve_objection(first, uphold=False, answer="no", who=TAX)
    second = city.open_objection(parse_resident_id(LI), "tax:x1", "here is the receipt", LI_SELF)
    assert second == first + 1
    with pytest.raises(Conflict, match="already rejected"):
        city.resolve_objection(first, uphold=True, answer="late", who=TAX)


def test_objection_by_someone_else_and_resolution_by_the_wrong_agency(city: Credo) -> None:
    """Someone else's record, or another agency's objection, is answered as a missing one (no oracle)."""
    with pytest.raises(NotFound, match="no record tax:x1 of this resident"):
        city.open_objection(parse_resident_id(WANG), "tax:x1", "not mine either",
                            Principal("r", "resident", resident=int(WANG[:17])))
    with pytest.raises(NotFound, match="no record tax:x1 of this resident"):
        city.open_objection(parse_resident_id(WANG), "tax:x1", "not mine", Principal("cli", "operator"))
    number = city.open_objection(parse_resident_id(LI), "tax:x1", "paid", LI_SELF)
    with pytest.raises(NotFound, match=f"no objection {number} against a record of blood-centre"):
        city.resolve_objection(number, uphold=True, answer="sure", who=BLOOD)
    with pytest.raises(NotFound, match="no record tax:nope of this resident"):
        city.open_objection(parse_resident_id(LI), "tax:nope", "?", LI_SELF)


def test_overdue_with_a_fixed_clock(city: Credo, monkeypatch: pytest.MonkeyPatch) -> None:
    city.open_objection(parse_resident_id(LI), "tax:x1", "paid", LI_SELF)
    assert [o["status"] for o in city.objections()] == ["open"]
    monkeypatch.setenv("CREDO_NOW", "2024-09-16T10:00:00+08:00")  # opened 09-01 10:00 + 15d
    assert [o["status"] for o in city.objections(overdue=True)] == ["overdue"]
    monkeypatch.setenv("CREDO_NOW", "2024-09-16T09:59:59+08:00")
    assert city.objections(overdue=True) == []


def test_every_step_is_kept(city: Credo) -> None:
    number = city.open_objection(parse_resident_id(LI), "tax:x1", "paid", LI_SELF)
    city.resolve_objection(number, uphold=False, answer="no", who=TAX)
    steps = city.con.execute("SELECT step, principal FROM objection_events ORDER BY happened_at, step").fetchall()
    assert steps == [("opened", "resident:li"), ("rejected", "agency:tax")]


def test_notices_tell_the_resident_each_change(city: Credo) -> None:
    kinds = [n["kind"] for n in city.notices(parse_resident_id(LI))]
    assert {"record.added", "list.in_force", "grade.changed"} <= set(kinds)
    city.open_objection(parse_resident_id(LI), "tax:x1", "paid", LI_SELF)
    latest = {n["kind"]: n["detail"] for n in city.notices(parse_resident_id(LI))}
    assert latest["objection.opened"] == {"objection": 1, "record": "tax:x1"}
    assert latest["list.left"] == {"list": "tax_defaulter"}


def test_pending_notice_names_the_date_the_list_takes_effect(city: Credo, tmp_path: Path) -> None:
    from tests.cityfactory import RECORD_COLUMNS, write_csv

    city.ingest_files("tax", [write_csv(tmp_path / "late.csv", [
        RECORD_COLUMNS, ("x9", "tax.arrears", WANG, "2024-08-30", "", "")])])
    pending = [n["detail"] for n in city.notices(parse_resident_id(WANG)) if n["kind"] == "list.pending"]
    assert pending == [{"list": "tax_defaulter", "takes_effect": "2024-09-04T00:00:00+08:00"}]
    added = [n["detail"] for n in city.notices(parse_resident_id(WANG))
             if n["kind"] == "record.added" and n["detail"]["record"] == "tax:x9"]
    assert added == [{"record": "tax:x9", "type": "tax.arrears", "occurred_at": "2024-08-30T00:00:00+08:00"}]


def test_the_way_out_of_every_penalty(city: Credo) -> None:
    [way] = city.explain(parse_resident_id(LI))["ways_out"]
    assert way["record"] == "tax:x1" and way["resolved_by"] == ["tax.settled"]
    assert way["expires_at"] == "2027-08-01T00:00:00+08:00"
    assert way["score_after_expiry"] == 1000 and way["lists"][0]["list"] == "tax_defaulter"


def test_a_wide_batch_rescored_whole_tells_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch touching most of the city is rescored as a full run (``scoring.better_whole``): the
    standings and notices are those of the scoped path, and a record added is told from the ledger."""
    import numpy as np

    from credo import scoring

    def stored(city: Credo) -> tuple[list[tuple[object, ...]], ...]:
        return tuple(sorted(city.con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                     for t in ("standings", "standing_hits", "notices"))

    (tmp_path / "scoped").mkdir()
    (tmp_path / "whole").mkdir()
    scoped = stored(tiny_city(tmp_path / "scoped", monkeypatch))
    monkeypatch.setattr(scoring, "WHOLE_MIN", 1)
    whole = tiny_city(tmp_path / "whole", monkeypatch)
    assert scoring.better_whole(whole.con, np.array([1]))
    assert stored(whole) == scoped
    added = [n["detail"] for n in whole.notices(parse_resident_id(LI)) if n["kind"] == "record.added"]
    assert added == [{"record": "tax:x1", "type": "tax.arrears", "occurred_at": "2024-08-01T00:00:00+08:00"}]
