"""The one place where engine dialects differ.

Scoring SQL is written in DuckDB's dialect with one portable extension,
``ADD_DURATION(ts, months, days)``. DuckDB gets it as a macro; for Spark,
sqlglot translates the text and the extension is rewritten to interval
arithmetic (Spark clamps the day to the month's end as DuckDB does).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

DUCKDB_MACROS = (
    "CREATE OR REPLACE TEMP MACRO add_duration(ts, m, d) AS "
    "ts + to_months(CAST(m AS INTEGER)) + to_days(CAST(d AS INTEGER))"
)


def _spark_durations(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.upper() == "ADD_DURATION":
        ts, months, days = node.expressions
        return sqlglot.parse_one(
            f"({ts.sql('spark')} + make_ym_interval(0, CAST({months.sql('spark')} AS INT)) "
            f"+ make_dt_interval(CAST({days.sql('spark')} AS INT), 0, 0, 0))",
            read="spark",
        )
    return node


def to_spark(sql: str) -> str:
    """DuckDB scoring SQL as Spark SQL."""
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_spark_durations)
    return tree.sql(dialect="spark")
