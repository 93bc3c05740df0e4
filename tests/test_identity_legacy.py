"""First-generation 15-digit IDs (spec §10): resolved as the 18-digit ID they became, in a feed and at
every edge that takes an ID."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from credo import ids
from credo.ids import parse_resident_id
from credo.service import Credo
from tests.fixtures.ingest_city import (
    LI,
    RECORD_HEADER,
    WANG,
    ledger_rows,
    write_csv,
)

LI_LEGACY = LI[:6] + LI[8:17]
WANG_LEGACY = WANG[:6] + WANG[8:17]


def test_a_legacy_subject_is_the_resident_it_names(town: Credo, tmp_path: Path) -> None:
    rows = [RECORD_HEADER, ("r1", "tax.arrears", LI_LEGACY, "2024-08-01", "", ""),
            ("r2", "tax.arrears", f" {WANG_LEGACY} ", "2024-08-02", "", ""),
            ("r3", "tax.arrears", LI, "2024-08-03", "", "")]
    result = town.ingest_files("tax", [write_csv(tmp_path / "a.csv", rows)])[0]
    assert (result.accepted, result.rejected) == (3, Counter())
    residents = {r[0]: r[2] for r in ledger_rows(town)}
    assert residents == {"r1": ids.resident_key(LI), "r2": ids.resident_key(WANG), "r3": ids.resident_key(LI)}
    assert town.standing(parse_resident_id(LI_LEGACY)) == town.standing(parse_resident_id(LI))
    assert town.standing(parse_resident_id(LI)).score < 1000


def test_a_legacy_resend_is_a_duplicate_of_itself(town: Credo, tmp_path: Path) -> None:
    rows = [RECORD_HEADER, ("r1", "tax.arrears", LI_LEGACY, "2024-08-01", "", "")]
    town.ingest_files("tax", [write_csv(tmp_path / "a.csv", rows)])
    again = town.ingest_files("tax", [write_csv(tmp_path / "b.csv", rows)])[0]
    assert (again.accepted, again.duplicates, again.rejected) == (0, 1, Counter())


def test_parse_at_the_edge_takes_a_legacy_id() -> None:
    assert parse_resident_id(LI_LEGACY) == parse_resident_id(LI)
    with pytest.raises(ids.IdError) as info:
        parse_resident_id("11010587022812X")
    assert (info.value.field, info.value.reason) == ("resident_id", ids.BAD_FORMAT)


def test_the_registry_takes_a_legacy_id_as_the_resident_it_became(town: Credo, tmp_path: Path) -> None:
    from tests.fixtures.ingest_city import POPULATION_HEADER

    newcomer = ids.make_resident_id("110108", __import__("datetime").date(1961, 3, 4), 77)
    rows = [POPULATION_HEADER, (newcomer[:6] + newcomer[8:17], "Sun Li", "110108", "", "")]
    result = town.ingest_files("population", [write_csv(tmp_path / "p.csv", rows)])[0]
    assert (result.accepted, result.rejected) == (1, Counter())
    assert town.con.execute("SELECT count(*) FROM residents WHERE resident = ?",
                            [ids.resident_key(newcomer)]).fetchall() == [(1,)]
