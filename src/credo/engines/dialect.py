"""The one place where engine dialects differ.

Scoring SQL is written in DuckDB's dialect with one portable extension,
``ADD_DURATION(ts, months, days)``. DuckDB gets it as a macro; for Spark,
sqlglot translates the text and the extension is rewritten to interval
arithmetic. What was checked, construct by construct (``tests/test_spark.py``
holds each on both engines):

* ``ADD_DURATION``: ``ts + make_ym_interval(0, m) + make_dt_interval(d, 0, 0, 0)``.
  Both engines clamp the day to the month's end (2024-01-31 + 1 month =
  2024-02-29, 2024-02-29 + 12 months = 2025-02-28) and add days on the calendar,
  given Spark's session settings (``TIMESTAMP_NTZ``, UTC: no zone shifts).
* ``least``/``greatest`` skip NULLs on both (NULL only when every argument is).
* ``year(ts)`` of naive wall-clock time is the city's year on both.
* Window ``ORDER BY``: DuckDB puts NULLs last, Spark first; sqlglot writes
  ``NULLS LAST`` explicitly. ``ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW``
  and a boolean in ``PARTITION BY`` mean the same on both.
* ``CAST(x AS INTEGER)`` becomes ``INT``; ``VARCHAR`` becomes ``STRING``;
  ``TIMESTAMP`` stays, and means ``TIMESTAMP_NTZ`` in the session.
* ``WITH x AS MATERIALIZED``: DuckDB computes such a CTE once for all its readers;
  Spark has no such keyword (it reuses identical exchanges by itself), so it is dropped.
* ``min_by`` is not used: on ties it may pick different rows on the two engines,
  so the pipeline ranks with ``row_number()`` and an explicit tie-break instead.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

DUCKDB_MACROS = (
    "CREATE OR REPLACE TEMP MACRO add_duration(ts, m, d) AS "
    "ts + (to_months(CAST(m AS INTEGER)) + to_days(CAST(d AS INTEGER)))"
)
"""One interval (months, then days) added once: a policy duration has either part, never both."""


def _spark(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node.set("materialized", None)
        return node
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
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_spark)
    return tree.sql(dialect="spark")
