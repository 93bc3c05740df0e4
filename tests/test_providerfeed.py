"""The provider feed as the one rescoring path writes it (spec §8): each change of a decision, whatever
caused it, numbered without a gap, and folding the feed gives every decision the service would make.

The tiny city of ``conftest`` (A..I on ``tax_defaulter`` or pending, B green channel by grade). Each
case makes one change through the service, then checks the rows it appended (cause, decision,
effective_at) and that the whole feed, folded (the last row of each resident and action; none: a
plain allow), equals ``Credo.check`` for every resident and measured action.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from credo.ids import parse_resident_id
from credo.service import Credo
from tests.cityfactory import POLICY
from tests.conftest import PEOPLE, RECORD_COLUMNS, City, fixed_clock, rid, write_csv

RAIL, ADMIN = "rail.high_speed.book", "admin.approval"
AFTER_GRACE = "2024-09-05T10:00:00+08:00"


def rows(credo: Credo, after: int = 0) -> list[tuple[Any, ...]]:
    return credo.con.execute("SELECT seq, resident, action, decision, benefits, reasons, effective_at, cause "
                             "FROM feed WHERE seq > ? ORDER BY seq", [after]).fetchall()


def folded(credo: Credo) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """Every (resident, measured action) as the feed last said it; none said: a plain allow."""
    out = {(rid(p), a): ("allow", []) for p in PEOPLE for a in (RAIL, ADMIN)}
    for _, resident, action, decision, benefits, *_ in rows(credo):
        out[(rid_of(resident), action)] = (decision, list(benefits))
    return out


def rid_of(key: int) -> str:
    return next(rid(p) for p, (first, _) in PEOPLE.items() if int(first) == key)


def decided(credo: Credo) -> dict[tuple[str, str], tuple[str, list[str]]]:
    out = {}
    for p in PEOPLE:
        for action in (RAIL, ADMIN):
            d = credo.check(parse_resident_id(rid(p)), action, purpose="feed test")
            out[(rid(p), action)] = (d.decision, d.benefits)
    return out


def assert_gap_free(credo: Credo) -> None:
    seqs = [r[0] for r in rows(credo)]
    assert seqs == list(range(1, len(seqs) + 1))


@dataclass(frozen=True)
class Case:
    change: Callable[[Credo, City], None]
    expect: list[tuple[str, str, str, str]]
    """(resident letter, action, decision, cause) of each row the change appends, in seq order."""
    at: str = "2024-09-01T10:00:00+08:00"


def _ingest(credo: Credo, city: City) -> None:
    credo.ingest_files("tax", [write_csv(city.folder / "more.csv", [
        RECORD_COLUMNS, ("x20", "tax.arrears", rid("C"), "2024-07-01", "", "")])])


def _donation_of_d(credo: Credo, city: City) -> None:
    """A write about D after D's grace end, which the write changes nothing of itself."""
    credo.ingest_files("blood-centre", [write_csv(city.folder / "d.csv", [
        RECORD_COLUMNS, ("d20", "civic.donation", rid("D"), "2024-09-02", "", "")])])


def _policy(credo: Credo, city: City) -> None:
    credo.apply_policy(POLICY.replace("policy: tiny-1", "policy: tiny-2").replace("grades: [AA]", "grades: [AA, A]"))


CASES: dict[str, Case] = {
    "a record": Case(_ingest, [("C", RAIL, "deny", "record")]),
    "a revocation": Case(lambda c, _: c.revoke("tax", "x3", "paid"), [("E", RAIL, "allow", "revocation")]),
    "an objection opened": Case(lambda c, _: c.open_objection(parse_resident_id(rid("F")), "tax:x4", "not mine"),
                                [("F", RAIL, "allow", "objection")]),
    "a policy": Case(_policy, [("C", ADMIN, "allow", "policy"), ("J", ADMIN, "allow", "policy")]),
    "a grace period ended": Case(lambda c, _: c.score(), [("D", RAIL, "deny", "grace_ended")], AFTER_GRACE),
    "a grace end found by a write": Case(_donation_of_d, [("D", RAIL, "deny", "grace_ended")], AFTER_GRACE),
    "records expired": Case(lambda c, _: c.score(), [*[(p, RAIL, "allow", "expired") for p in "EFGHIA"],
                                                    ("B", ADMIN, "allow", "expired")], "2027-09-01T10:00:00+08:00"),
}


@pytest.mark.parametrize("name", CASES)
def test_each_change_is_in_the_feed_with_its_cause(city: City, name: str) -> None:
    case = CASES[name]
    with fixed_clock(case.at), closing(Credo.open(city.db)) as credo:
        head = rows(credo)[-1][0]
        case.change(credo, city)
        made = rows(credo, head)
        assert [(rid_of(r[1]), r[2], r[3], r[7]) for r in made] == [(rid(p), a, d, c) for p, a, d, c in case.expect]
        assert_gap_free(credo)
        assert folded(credo) == decided(credo)


def test_a_change_by_time_takes_effect_when_time_made_it(city: City) -> None:
    """A grace end is dated at its end, not when the feed noticed it; a write's change at the write."""
    with fixed_clock(AFTER_GRACE), closing(Credo.open(city.db)) as credo:
        head = rows(credo)[-1][0]
        _donation_of_d(credo, city)
        credo.revoke("tax", "x4", "paid")
        effective = {rid_of(r[1]): r[6].isoformat() for r in rows(credo, head)}
    assert effective == {rid("D"): "2024-09-04T00:00:00", rid("F"): "2024-09-05T10:00:00"}


def test_a_rescoring_that_changes_no_decision_adds_nothing(city: City) -> None:
    with closing(Credo.open(city.db)) as credo:
        head = rows(credo)[-1][0]
        credo.score()
        credo.ingest_files("blood-centre", [write_csv(city.folder / "b.csv", [
            RECORD_COLUMNS, ("d9", "civic.donation", rid("A"), "2024-05-01", "", "")])])
        assert rows(credo, head) == []


def test_the_city_built_is_in_the_feed(city: City) -> None:
    with closing(Credo.open(city.db)) as credo:
        assert_gap_free(credo)
        assert folded(credo) == decided(credo)
        assert {r[7] for r in rows(credo)} == {"record"}


def test_a_page_made_by_the_database_names_residents_as_credo_ids_does() -> None:
    """The page's JSON computes each resident ID's check character in SQL: it must be ``credo.ids``'s,
    for every key (the X among them), and the page must read as ``page`` gives it."""
    import duckdb
    import numpy as np
    import orjson

    from credo import ids, providerfeed, store

    con = duckdb.connect()
    store.migrate(con)
    rng = np.random.default_rng(16)
    keys = [ids.resident_key(ids.make_resident_id("110101", date(1950, 1, 1) + timedelta(days=int(d)), int(s)))
            for d, s in zip(rng.integers(0, 25_000, 2_000), rng.integers(0, 1000, 2_000), strict=True)]
    keys.append(int(PEOPLE["J"][0]))  # check character X
    con.execute("INSERT INTO feed SELECT row_number() OVER (), resident, 'rail.high_speed.book', 'deny', [], "
                "['list:tax_defaulter'], TIMESTAMP '2024-09-04 00:00:00', 'grace_ended', 'tiny-1@1', "
                "TIMESTAMP '2024-09-05 10:00:00' FROM (SELECT unnest(?::BIGINT[]) AS resident)", [keys])
    page = providerfeed.page_json(con, "Asia/Shanghai", None, 0, 10_000)
    made = orjson.loads(f"[{page.changes}]")
    assert [c["resident_id"] for c in made] == [ids.resident_id_from_key(k) for k in keys]
    assert made == providerfeed.page(con, "Asia/Shanghai", None, 0, 10_000)
    assert made[-1]["resident_id"].endswith("X") and made[0]["effective_at"] == "2024-09-04T00:00:00+08:00"
    assert (page.count, page.last) == (len(keys), len(keys))
