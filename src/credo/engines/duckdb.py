"""The DuckDB seam: scoring steps become temporary views over the store's tables."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from credo.engines.dialect import DUCKDB_MACROS
from credo.sql import q, statements


class DuckDBScoring:
    """Binds the pipeline's inputs on a connection, then serves its outputs by name."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def bind(self, tables: dict[str, pa.Table], as_of: datetime, scope: np.ndarray | None) -> None:
        con = self.con
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
            "revocations_in": q("inputs.revocations_all"),
            "disputes_in": q("inputs.disputes_all"),
        }
        for name, sql in [*inputs.items(), *statements("score").items()]:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def arrow(self, output: str, where: str = "") -> pa.Table:
        return self.con.execute(f"SELECT * FROM {output} {where}").to_arrow_table()
