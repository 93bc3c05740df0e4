"""The DuckDB seam: scoring steps become temporary views over the store's tables.

Every step is a view, so one SQL text serves a single resident and the whole city alike. What
differs is only which steps are computed once and kept as temporary tables behind their view:

* a full run keeps ``marks`` and ``hits`` (small, each read by two later steps), so the ledger is
  read once for the score and once for the list memberships, not once per consumer;
* a scoped run (a batch's residents, one resident's page) keeps its residents and its slice of
  the ledger, so the store's tables are scanned once per run and every step after that works on
  a few rows, and the records' ``state``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from credo.engines.dialect import DUCKDB_MACROS
from credo.sql import q, statements

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


class DuckDBScoring:
    """Binds the pipeline's inputs on a connection, then serves its outputs by name."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def bind(self, tables: dict[str, pa.Table], as_of: datetime, scope: np.ndarray | None) -> None:
        con = self.con
        self.release()
        con.execute(DUCKDB_MACROS)
        for name, table in tables.items():
            con.register(name, table)
        con.register("clock_in", pa.table({"t": pa.array([as_of], pa.timestamp("us"))}))
        if scope is not None:
            con.register("scope_in", pa.table({"resident": pa.array(scope, pa.int64())}))
        which = "all" if scope is None else "scoped"
        inputs = {
            "residents_in": q(f"inputs.residents_{which}"),
            "ledger_in": q(f"inputs.ledger_{which}"),
            "revocations_in": q(f"inputs.revocations_{which}"),
            "disputes_in": q(f"inputs.disputes_{which}"),
        }
        kept_steps = KEPT_FULL if scope is None else KEPT_SCOPED
        for name, sql in [*inputs.items(), *statements("score").items()]:
            if name in kept_steps:
                kept = _kept(name)
                con.execute(f"CREATE OR REPLACE TEMP TABLE {kept} AS {sql}")
                sql = f"SELECT * FROM {kept}"
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def release(self) -> None:
        """Drop any kept step's table, of this bind or an earlier one (the next bind replaces the views)."""
        for name in (*KEPT_FULL, *KEPT_SCOPED):
            kept = _kept(name)
            self.con.execute(f"DROP TABLE IF EXISTS {kept}")

    def arrow(self, output: str, where: str = "") -> pa.Table:
        return self.con.sql(f"SELECT * FROM {output} {where}").to_arrow_table()
