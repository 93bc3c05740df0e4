"""Numbered migrations: an empty database and one made by the previous schema both reach the latest."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from credo import store


def tables(con: object) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()  # type: ignore[attr-defined]
    return {r[0] for r in rows}


def test_empty_database_gets_every_migration(tmp_path: Path) -> None:
    con = store.connect(tmp_path / "c.duckdb")
    assert store.schema_version(con) == len(store.MIGRATIONS)
    assert {"ledger", "residents", "phone_links", "rejects", "standings", "standing_hits", "objection_events",
            "audit", "policies", "principals", "notices"} <= tables(con)


def test_previous_schema_is_brought_forward_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    import duckdb

    con = duckdb.connect(str(path))
    store.migrate(con, upto=1)
    con.execute("INSERT INTO residents VALUES (11010119900101001, 'Li', '110101', 'active', NULL, NULL, 1)")
    assert "notices" not in tables(con)
    con.close()
    con = store.connect(path)
    assert store.schema_version(con) == len(store.MIGRATIONS)
    assert "notices" in tables(con)
    assert con.execute("SELECT name FROM residents").fetchall() == [("Li",)]


def test_copied_record_notices_are_dropped_for_the_ledger_to_tell(tmp_path: Path) -> None:
    """Schema 3: "record.added" notices are read from the ledger, so the stored copies go; others stay."""
    import duckdb

    path = tmp_path / "v2.duckdb"
    con = duckdb.connect(str(path))
    store.migrate(con, upto=2)
    con.execute("INSERT INTO notices VALUES (1, TIMESTAMP '2024-01-01', 'record.added', '{}'), "
                "(1, TIMESTAMP '2024-01-01', 'grade.changed', '{}')")
    con.close()
    con = store.connect(path)
    assert con.execute("SELECT kind FROM notices").fetchall() == [("grade.changed",)]


def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    store.connect(tmp_path / "c.duckdb").close()
    con = store.connect(tmp_path / "c.duckdb")
    assert store.schema_version(con) == len(store.MIGRATIONS)


def test_database_file_is_private(tmp_path: Path) -> None:
    store.connect(tmp_path / "c.duckdb").close()
    mode = stat.S_IMODE(os.stat(tmp_path / "c.duckdb").st_mode)
    assert mode & 0o077 == 0, oct(mode)
