"""Standings from the ledger: the scoring pipeline run for everyone or for a set of residents.

A full recompute and the incremental update of touched residents run the same
SQL over the same inputs; only the scope differs, which is why they agree
(and a property test holds them to it). Standings are stored with the time
they were computed for and the policy version, and are recomputed before
being served past their ``changes_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from credo.engines.duckdb import DuckDBScoring
from credo.policy import Policy


def _engine(con: duckdb.DuckDBPyConnection, policy: Policy, as_of: datetime,
            scope: np.ndarray | None) -> DuckDBScoring:
    engine = DuckDBScoring(con)
    engine.bind(policy.tables(), as_of, scope)
    return engine


def rescore(con: duckdb.DuckDBPyConnection, policy: Policy, as_of: datetime,
            residents: Iterable[int] | np.ndarray | None = None) -> int:
    """Recompute and store standings (everyone when ``residents`` is None).

    The caller holds the transaction, so a batch and its standings land together.
    Returns the number of standings written.
    """
    scope = None if residents is None else np.unique(np.fromiter(residents, np.int64))
    if scope is not None and len(scope) == 0:
        return 0
    _engine(con, policy, as_of, scope)
    write_standings(con, policy, as_of, full=scope is None)
    return int(con.execute("SELECT count(*) FROM residents_in").fetchall()[0][0])


def write_standings(con: duckdb.DuckDBPyConnection, policy: Policy, as_of: datetime, *, full: bool) -> None:
    """Store the bound pipeline's standings; a full run replaces the tables whole."""
    params = [as_of, policy.version]
    if full:
        con.execute("DELETE FROM standings")
        con.execute("DELETE FROM standing_hits")
    else:
        con.execute("DELETE FROM standings WHERE resident IN (SELECT resident FROM residents_in)")
        con.execute("DELETE FROM standing_hits WHERE resident IN (SELECT resident FROM residents_in)")
    con.execute("INSERT INTO standings SELECT resident, score, grade, changes_at, ?, ? FROM scored", params)
    con.execute("INSERT INTO standing_hits SELECT resident, list, agency, record_id, type, occurred_at, "
                "takes_effect, expires_at FROM hits")


def compute(con: duckdb.DuckDBPyConnection, policy: Policy, as_of: datetime,
            residents: Iterable[int], *, records: bool = False) -> dict[str, pa.Table]:
    """Standings, list hits and (with ``records``) each record's part, at any time; nothing stored."""
    engine = _engine(con, policy, as_of, np.fromiter(residents, np.int64))
    out = {"scored": engine.arrow("scored"), "hits": engine.arrow("hits")}
    if records:
        out["explained"] = engine.arrow("explained", "ORDER BY resident, occurred_at, agency, record_id")
    return out
