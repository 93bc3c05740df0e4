"""Withdrawal is retroactive (spec §4): a record revoked by its agency, or by an upheld objection,
counts at no T once the revocation is known, before its revocation as after it. Each row of the
table is one way a record leaves (or stays in) the ledger's count, seen at a time before the
correction was made: the standing, its list hits, ``changes_at``, the explanation, a decision at
that time, and the governance reports all say the same.

The city is ``tests.cityfactory.tiny_city``: Li owes tax (tax:x1, 2024-08-01, -50, on the
``tax_defaulter`` list from 2024-08-06, which denies rail); the clock stands at 2024-09-01 10:00.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from credo import decisions, standing
from credo.ids import parse_resident_id
from credo.service import Credo
from tests.cityfactory import LI, RECORD_COLUMNS, tiny_city, write_csv

BEFORE = datetime(2024, 8, 15)
"""A time after Li's record took effect and before any correction below was made."""
LATER = "2024-09-10T10:00:00+08:00"
"""When the corrections are made."""


def settle(credo: Credo, folder: Path) -> None:
    """tax:s1 (2024-08-20) resolves tax:x1."""
    credo.ingest_files("tax", [write_csv(folder / "settled.csv", [
        RECORD_COLUMNS, ("s1", "tax.settled", LI, "2024-08-20", "x1", "")])])


def revoke_x1(credo: Credo, folder: Path) -> None:
    credo.revoke("tax", "x1", "wrong person")


def uphold(credo: Credo, folder: Path) -> None:
    number = credo.open_objection(parse_resident_id(LI), "tax:x1", "not me")
    credo.resolve_objection(number, uphold=True, answer="paid before judgment")


def reject(credo: Credo, folder: Path) -> None:
    number = credo.open_objection(parse_resident_id(LI), "tax:x1", "not me")
    credo.resolve_objection(number, uphold=False, answer="it is you")


def settle_then_withdraw(credo: Credo, folder: Path) -> None:
    settle(credo, folder)
    credo.revoke("tax", "s1", "settled in error")


Step = Callable[[Credo, Path], None]


@dataclass(frozen=True)
class Case:
    name: str
    correction: Step
    at: datetime
    score: int
    lists: tuple[str, ...]
    status: str
    why: str
    decision: str
    changes_at: datetime | None


CASES = [
    Case("revoked by its agency: counts at no T before the revocation", revoke_x1, BEFORE, 1000, (), "revoked",
         "revoked on 2024-09-10 by cli: wrong person", "allow", None),
    Case("revoked by an upheld objection: the same", uphold, BEFORE, 1000, (), "revoked",
         "revoked on 2024-09-10 by cli: objection 1 upheld: paid before judgment", "allow", None),
    Case("before the record occurred, a revoked record is revoked too", revoke_x1, datetime(2024, 7, 1), 1000,
         (), "revoked", "revoked on 2024-09-10 by cli: wrong person", "allow", None),
    Case("an objection rejected: the record counted before it and counts", reject, BEFORE, 950,
         ("tax_defaulter",), "counts", "counts", "deny", datetime(2024, 9, 10, 10)),
    Case("a resolver, at a time after it occurred: resolved", settle, datetime(2024, 8, 25), 1000, (),
         "resolved", "resolved by tax:s1 on 2024-08-20", "allow", None),
    Case("a resolver withdrawn: it never resolved, so the record counted all along", settle_then_withdraw,
         datetime(2024, 8, 25), 950, ("tax_defaulter",), "counts", "counts", "deny", datetime(2027, 8, 1)),
]


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Credo]:
    credo = tiny_city(tmp_path, monkeypatch)
    try:
        yield credo
    finally:
        credo.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_correction_seen_from_before_it(city: Credo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          case: Case) -> None:
    monkeypatch.setenv("CREDO_NOW", LATER)
    case.correction(city, tmp_path)
    li = parse_resident_id(LI)
    s = city.standing(li, case.at)
    assert (s.score, tuple(s.in_force()), s.changes_at) == (case.score, case.lists, case.changes_at)
    assert [h.record_id for h in s.hits] == (["x1"] if case.lists else [])
    x1 = next(r for r in city.explain(li, case.at)["records"] if r["record_id"] == "x1")
    assert (x1["status"], x1["why"], x1["counts"]) == (case.status, case.why, case.status == "counts")
    decided = decisions.decide(city.policy, standing.at(city.con, city.policy, s.resident, case.at),
                               "rail.high_speed.book", case.at)
    assert decided.decision == case.decision
    assert [r["code"] for r in decided.reasons] == (["list:tax_defaulter"] if case.decision == "deny" else [])


@pytest.mark.parametrize("correction", [revoke_x1, uphold], ids=["revoked", "upheld"])
def test_the_reports_at_a_past_time_follow_a_withdrawal(city: Credo, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, correction: Step) -> None:
    """Fairness and what-if at a time before the correction count no one on the list: Li was its only member."""
    from tests.cityfactory import POLICY

    assert city.fairness(BEFORE, min_group=1)["overall"]["black_listed"] == 1
    monkeypatch.setenv("CREDO_NOW", LATER)
    correction(city, tmp_path)
    assert city.fairness(BEFORE, min_group=1)["overall"]["black_listed"] == 0
    report = city.whatif(POLICY.replace("points: -50", "points: -80"), BEFORE)
    assert report["residents_changed_grade"] == 0  # Li's record counts under neither policy
