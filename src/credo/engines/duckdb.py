"""The DuckDB seam: scoring steps become temporary views over the store's tables.

Every step is a view, so one SQL text serves a single resident and the whole city alike. What
differs is only which steps are computed once and kept as temporary tables behind their view:

* a full run keeps ``marks`` and ``hits`` (small, each read by two later steps), so the ledger is
  read once for the score and once for the list memberships, not once per consumer;
* a scoped run (a batch's residents, one resident's page) keeps its residents and its slice of
  the ledger, so the store's tables are scanned once per run and every step after that works on
  a few rows, and the records' ``state``.

The governance reports run here too (``DuckDBGovernance``), on a cursor the caller owns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from credo.engines.base import Engine, Reports
from credo.engines.dialect import DUCKDB_MACROS

KEPT_FULL = ("marks", "hits")
"""Steps a full run computes once and keeps (see the module docstring)."""
KEPT_SCOPED = ("residents_in", "ledger_in", "state")
"""What a scoped run computes once and keeps: its residents (a view of them would scan the
residents table again for each of the five steps and two deletes that read it), its slice of the
ledger, and the records' state (read by three later steps; keeping it also spares planning the
whole tree three times)."""


def _kept(name: str) -> str:
    return f"credo_kept_{name}"


@contextmanager
def unordered(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Let DuckDB write rows in any order while inside: standings are sets, and a sink that keeps
    insertion order runs on one thread (a full run's wall time nearly doubles on two cores)."""
    old = bool(con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0])
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = ?", [old])


class DuckDBScoring(Engine):
    """Binds the pipeline's inputs on a connection, then serves its outputs by name."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def kept(self, scoped: bool) -> tuple[str, ...]:
        return KEPT_SCOPED if scoped else KEPT_FULL

    def release(self) -> None:
        """Drop any kept step's table, of this bind or an earlier one (the next bind replaces the views)."""
        for name in (*KEPT_FULL, *KEPT_SCOPED):
            kept = _kept(name)
            self.con.execute(f"DROP TABLE IF EXISTS {kept}")

    def _prepare(self) -> None:
        self.con.execute(DUCKDB_MACROS)

    def _register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def _view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def _keep(self, name: str, sql: str) -> None:
        kept = _kept(name)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {kept} AS {sql}")
        self._view(name, f"SELECT * FROM {kept}")

    def _fetch(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        """Rows as dicts; sums come back as Python ints (DuckDB sums integers as HUGEINT)."""
        cur = self.con.execute(sql)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class DuckDBGovernance(DuckDBScoring, Reports):
    """The governance reports on DuckDB, on a cursor the caller owns (everything made is temporary)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, params: pa.Table) -> None:
        super().__init__(cur)
        self._made: set[str] = set()
        self._register("params_in", params)

    def _capture(self, name: str, sql: str, side: int) -> None:
        target = f"gov_{name}"
        if target in self._made:
            self.con.execute(f"INSERT INTO {target} SELECT ?, c.* FROM ({sql}) c", [side])
        else:
            self.con.execute(f"CREATE TEMP TABLE {target} AS SELECT CAST(? AS INTEGER) AS side, c.* "
                             f"FROM ({sql}) c", [side])
            self._made.add(target)
