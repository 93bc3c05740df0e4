"""Identity review (spec §10): rows about a described person are matched and held, count nowhere until
a person confirms a candidate, and a confirmed row counts exactly as if it had named its subject.

Each reject reason of a described row is a case of tests/test_ingest.py's ``CASES``; here: the held
row, the summary, the three formats, duplicates and conflicts in the queue, judgements, scopes, the
explanation's mark, the model file and the never-scored-before-confirmation property.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credo import ids, review
from credo.errors import Conflict, Forbidden, NotFound
from credo.ids import parse_resident_id
from credo.principals import Principal
from credo.service import Credo
from tests.fixtures.ingest_city import (
    LI,
    NOW,
    RECORD_HEADER,
    WANG,
    ZHAO,
    copy_of,
    ledger_rows,
    write_csv,
)

HEADER = (*RECORD_HEADER, "subject_name", "subject_birth_date", "subject_district")
PEOPLE = {LI: ("Li Wei", "1987-06-12", "110112"), WANG: ("Wang Fang", "1993-03-18", "110115"),
          ZHAO: ("Zhao Lei", "1979-11-02", "110105")}
TAX = Principal("tax-desk", "agency", agency="tax")
DONORS = Principal("donor-desk", "agency", agency="blood-centre")


def drow(record_id: str, person: str = LI, *, subject: str = "", type_: str = "tax.arrears",
         when: str = "2024-08-01", name: str | None = None, born: str | None = None) -> tuple[str, ...]:
    n, b, d = PEOPLE[person]
    return (record_id, type_, subject, when, "", "", name or n, born or b, d)


def held(town: Credo, tmp_path: Path, *rows: tuple[str, ...], name: str = "d.csv") -> Counter[str]:
    result = town.ingest_files("tax", [write_csv(tmp_path / name, [HEADER, *rows])])[0]
    return Counter({"accepted": result.accepted, "held": result.held, "duplicates": result.duplicates,
                    "overridden": result.overridden, **result.rejected})


def test_a_described_row_is_held_not_ledgered(town: Credo, tmp_path: Path) -> None:
    before = town.standing(parse_resident_id(LI))
    assert held(town, tmp_path, drow("d1")) == Counter({"held": 1})
    assert ledger_rows(town) == []
    assert town.standing(parse_resident_id(LI)) == before
    [item] = town.review_items()
    assert (item["id"], item["status"], item["record"]) == (1, "pending", "tax:d1")
    assert item["subject"] == {"name": "Li Wei", "birth_date": "1987-06-12", "district": "110112"}
    assert item["row"]["subject_name"] == "Li Wei" and item["line"] == 2
    [best] = item["candidates"]
    assert best["resident_id"] == LI and best["rank"] == 1 and best["probability"] > 0.99
    assert {k: v["level"] for k, v in best["comparisons"].items()} == {
        "name": "same name", "birth_date": "same birth date", "district": "same district"}


def test_a_subject_beats_a_description_and_the_summary_says_so(town: Credo, tmp_path: Path) -> None:
    counts = held(town, tmp_path, drow("d1", subject=WANG))
    assert counts == Counter({"accepted": 1, "overridden": 1})
    assert [r[2] for r in ledger_rows(town)] == [ids.resident_key(WANG)]
    assert town.review_items() == []
    result = town.ingest_files("tax", [write_csv(tmp_path / "e.csv", [HEADER, drow("d2", subject=WANG)])])[0]
    assert result.to_json()["subject_over_description"] == 1 and result.to_json()["held_for_review"] == 0


def test_formats_agree(town: Credo, tmp_path: Path) -> None:
    """The same described row as CSV, JSON Lines, Parquet and an API batch: held once, then duplicates."""
    row = dict(zip(HEADER, drow("d1"), strict=True))
    write_csv(tmp_path / "a.csv", [HEADER, tuple(row.values())])
    (tmp_path / "a.jsonl").write_text(json.dumps({k: v for k, v in row.items() if v}) + "\n")
    pq.write_table(pa.table({k: pa.array([v or None], pa.string()) for k, v in row.items() if v or k == "subject"}),
                   tmp_path / "a.parquet")
    results = town.ingest_files("tax", [tmp_path / p for p in ("a.csv", "a.jsonl", "a.parquet")])
    api = town.ingest_rows("tax", [{k: v for k, v in row.items() if v}], TAX, "api:request-1")
    assert [(r.held, r.duplicates, sum(r.rejected.values())) for r in [*results, api]] == [
        (1, 0, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0)]


def test_an_api_batch_says_which_rows_are_held(town: Credo) -> None:
    rows = [dict(zip(HEADER, drow("d1"), strict=True)), dict(zip(HEADER, drow("r2", subject=LI), strict=True))]
    result = town.ingest_rows("tax", rows, TAX, "api:request-1")
    assert [(r["status"], r.get("review_item")) for r in town.batch_rows(result, ["d1", "r2"])] == [
        ("held", 1), ("accepted", None)]
    again = town.ingest_rows("tax", rows, TAX, "api:request-2")
    assert [r["status"] for r in town.batch_rows(again, ["d1", "r2"])] == ["duplicate", "duplicate"]


def test_not_me_withdraws_a_record_matched_by_review(town: Credo, tmp_path: Path) -> None:
    held(town, tmp_path, drow("d1"))
    town.confirm_review(1, parse_resident_id(LI), "same name and birth date")
    assert town.standing(parse_resident_id(LI)).score == 950
    number = town.open_objection(parse_resident_id(LI), "tax:d1", "not me: I never lived in that district")
    town.resolve_objection(number, uphold=True, answer="the match was wrong", who=TAX)
    assert town.standing(parse_resident_id(LI)).score == 1000
    [record] = [r for r in town.explain(parse_resident_id(LI))["records"] if r["record_id"] == "d1"]
    assert record["counts"] is False and record["matched_by_review"]["item"] == 1


def test_a_csv_without_the_description_columns_still_loads(town: Credo, tmp_path: Path) -> None:
    result = town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [
        RECORD_HEADER, ("r1", "tax.arrears", LI, "2024-08-01", "", "")])])[0]
    assert (result.accepted, result.held) == (1, 0)


def test_a_changed_resend_of_a_held_key_is_a_conflict(town: Credo, tmp_path: Path) -> None:
    held(town, tmp_path, drow("d1"))
    assert held(town, tmp_path, drow("d1", when="2024-08-02"), name="e.csv") == Counter({"conflict": 1})
    town.ingest_files("tax", [write_csv(tmp_path / "f.csv", [HEADER, drow("r9", subject=LI)])])
    assert held(town, tmp_path, drow("r9"), name="g.csv") == Counter({"conflict": 1})  # a ledger key


def test_confirm_enters_the_ledger_and_rescores(town: Credo, tmp_path: Path) -> None:
    held(town, tmp_path, drow("d1"))
    assert town.standing(parse_resident_id(LI)).score == 1000
    item = town.confirm_review(1, parse_resident_id(LI), "checked against the tax file")
    assert item["status"] == "confirmed"
    assert item["judgement"] == {"step": "confirmed", "resident_id": LI, "reason": "checked against the tax file",
                                 "by": "cli", "role": "operator", "at": "2024-09-01T10:00:00+08:00"}
    [(record_id, _type, resident, subject, occurred, *_)] = ledger_rows(town)
    assert (record_id, resident, subject, str(occurred)) == ("d1", ids.resident_key(LI), "review:1",
                                                             "2024-08-01 00:00:00")
    assert town.standing(parse_resident_id(LI)).score == 950
    assert any(n["kind"] == "record.added" for n in town.notices(parse_resident_id(LI)))
    [mark] = [r["matched_by_review"] for r in town.explain(parse_resident_id(LI))["records"]]
    assert mark == {"item": 1, "confirmed_by": "cli", "confirmed_at": "2024-09-01T10:00:00+08:00",
                    "reason": "checked against the tax file"}
    events = town.con.execute("SELECT event, detail FROM audit WHERE event LIKE 'review.%'").fetchall()
    assert [(e, json.loads(d)["item"]) for e, d in events] == [("review.confirmed", 1)]
    with pytest.raises(Conflict, match="already confirmed"):
        town.decline_review(1, "changed my mind")
    assert held(town, tmp_path, drow("d1"), name="again.csv") == Counter({"duplicates": 1})


def test_decline_makes_a_reject_that_can_be_resent(town: Credo, tmp_path: Path) -> None:
    held(town, tmp_path, drow("d1", name="Li Wie"))
    item = town.decline_review(1, "the tax file names another man", TAX)
    assert (item["status"], item["judgement"]["by"], item["judgement"]["role"]) == ("declined", "tax-desk", "agency")
    [kept] = town.rejects("tax")["rejects"]
    assert (kept["reason"], kept["field"], kept["record"]) == (review.DECLINED, "subject", "tax:d1")
    assert "declined by tax-desk: the tax file names another man" in kept["message"]
    assert json.loads(kept["row_text"])["subject_name"] == "Li Wie"
    with pytest.raises(Conflict, match="already declined"):
        town.confirm_review(1, parse_resident_id(LI), "after all")
    assert held(town, tmp_path, drow("d1", subject=LI), name="fixed.csv") == Counter({"accepted": 1, "overridden": 1})
    assert town.standing(parse_resident_id(LI)).score == 950
    [event] = town.con.execute("SELECT principal FROM audit WHERE event = 'review.declined'").fetchall()
    assert event == ("tax-desk",)


def test_judging_needs_a_reason_a_candidate_and_the_right_agency(town: Credo, tmp_path: Path) -> None:
    held(town, tmp_path, drow("d1"))
    with pytest.raises(Conflict, match="needs a reason"):
        town.confirm_review(1, parse_resident_id(LI), "  ")
    with pytest.raises(Conflict, match="not a candidate") as info:
        town.confirm_review(1, parse_resident_id(WANG), "looks like him")
    assert info.value.details == {"candidates": [LI]}
    with pytest.raises(NotFound, match="no review item 1 of blood-centre"):
        town.confirm_review(1, parse_resident_id(LI), "mine now", DONORS)
    with pytest.raises(NotFound):
        town.confirm_review(7, parse_resident_id(LI), "no such item")
    assert town.review_items(DONORS) == [] and len(town.review_items(TAX)) == 1
    with pytest.raises(Forbidden):
        town.review_items(Principal("airline", "provider", provider="airline"))
    assert town.review_items()[0]["status"] == "pending"  # nothing was written by the refusals
    assert town.con.execute("SELECT count(*) FROM review_judgements").fetchall() == [(0,)]


def test_an_item_waiting_past_the_deadline_is_overdue(town: Credo, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    held(town, tmp_path, drow("d1"))
    assert town.review_items()[0]["deadline"] == "2024-09-15T10:00:00+08:00"
    monkeypatch.setenv("CREDO_NOW", "2024-09-15T10:00:00+08:00")
    assert town.review_items()[0]["status"] == "overdue"


def test_the_model_file_says_where_each_parameter_came_from(town: Credo, tmp_path: Path) -> None:
    held(town, tmp_path, drow("d1"))
    path = town.identity_model_path()
    assert path is not None and path.name == "city.duckdb.identity-model.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["credo"]["residents"] == 3 and "priors" in doc["credo"]["m"] and "random pairs" in doc["credo"]["u"]
    names = [c["output_column_name"] for c in doc["splink"]["comparisons"]]
    assert names == ["name", "birth_date", "district"] and doc["splink"]["link_type"] == "link_only"
    m = [lvl["m_probability"] for lvl in doc["splink"]["comparisons"][1]["comparison_levels"] if "m_probability" in lvl]
    assert m == [0.95, 0.045, 0.005]


# -- the property: nothing counts while held; a confirmed row counts as if it had named its subject ---
_ROW = st.tuples(st.sampled_from(sorted(PEOPLE)), st.sampled_from(["tax.arrears", "tax.filing"]),
                 st.sampled_from(["2024-06-01", "2024-08-01", "2024-08-30"]), st.booleans())


def _state(town: Credo) -> list[object]:
    return [(town.standing(parse_resident_id(p)), town.check(parse_resident_id(p), "rail.high_speed.book").reasons,
             town.notices(parse_resident_id(p))) for p in sorted(PEOPLE)]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_ROW, min_size=1, max_size=4))
def test_held_rows_count_nowhere_until_confirmed(template: Path, tmp_path_factory: pytest.TempPathFactory,
                                                 rows: list[tuple[str, str, str, bool]]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDO_NOW", NOW)
        here = tmp_path_factory.mktemp("held")
        (here / "a").mkdir()
        (here / "b").mkdir()
        queued, direct = copy_of(template, here / "a"), copy_of(template, here / "b")
        try:
            described = [drow(f"d{i}", p, type_=t, when=w, born=_swapped(PEOPLE[p][1]) if swap else None)
                         for i, (p, t, w, swap) in enumerate(rows)]
            before = _state(queued)
            queued.ingest_files("tax", [write_csv(here / "d.csv", [HEADER, *described])])
            assert _state(queued) == before
            assert queued.con.execute("SELECT count(*) FROM ledger WHERE agency = 'tax'").fetchall() == [(0,)]
            for item, (person, *_rest) in zip(queued.review_items(), rows, strict=True):
                queued.confirm_review(item["id"], parse_resident_id(person), "checked")
            named = [(r[0], r[1], p, *r[3:6]) for r, (p, *_x) in zip(described, rows, strict=True)]
            direct.ingest_files("tax", [write_csv(here / "n.csv", [RECORD_HEADER, *named])])
            for p in sorted(PEOPLE):
                a, b = queued.standing(parse_resident_id(p)), direct.standing(parse_resident_id(p))
                assert (a.score, a.grade, a.changes_at, sorted(h.record_id for h in a.hits)) == (
                    b.score, b.grade, b.changes_at, sorted(h.record_id for h in b.hits))
        finally:
            queued.close()
            direct.close()


def _swapped(born: str) -> str:
    """The birth date with its month and day swapped, where that is still a date (a usual slip)."""
    y, m, d = born.split("-")
    return f"{y}-{d}-{m}" if int(d) <= 12 else born
