"""Feeds into the store: agency records into the append-only ledger, population and telecom feeds
into residents and phone links.

Validation is vectorised. Every rule about a row alone (required fields, lengths, types of the
policy, resident IDs and phones, ISO 8601 dates, the size of ``attributes``) runs as Arrow and numpy
operations over whole columns, because DuckDB's per-value string functions cost several times more
than the whole ledger write. Only rules that need the store (phone holders, known residents, the
ledger's keys, ``resolves``) run in SQL (``sql/ingest.sql``), as joins of the batch's candidate rows
against the stored tables. Rejected rows are the one place with a Python loop, to phrase an identity
problem the way ``credo.ids`` does. Each row gets the first rule it fails, in the order the rules are
applied, so a row has exactly one reason and one field.

The caller holds the transaction, so a batch lands whole or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from credo.feeds import Feed, Progress
from credo.ingest.records import _records
from credo.ingest.registry import _population, _telecom
from credo.ingest.rejects import _keep_rejects, batch_rows
from credo.ingest.verdicts import DUPLICATE, ID_REASONS, REASONS, STATUSES, BatchResult, Verdicts
from credo.policy import Policy
from credo.store import next_id
from credo.text import Times, clean, distinct, parse_times, repeated

__all__ = ["DUPLICATE", "ID_REASONS", "REASONS", "STATUSES", "BatchResult", "Times", "Verdicts", "batch_rows",
           "clean", "distinct", "ingest", "parse_times", "repeated"]


def ingest(con: duckdb.DuckDBPyConnection, policy: Policy, agency: str, feed: Feed, *,
           principal: str, now: datetime, progress: Progress | None = None) -> BatchResult:
    """Validate and store one feed. Returns counts and the residents whose standing may change."""
    tick: Progress = progress or (lambda phase, done, total: None)
    batch = next_id(con, "batches", "batch")
    result = BatchResult(feed.source, agency, batch, rows=feed.rows)
    for name, table in policy.tables().items():
        con.register(name, table)
    loader = {"population": _population, "telecom": _telecom}.get(agency, _records)
    params: dict[str, Any] = {"agency": agency, "batch": batch, "now": now}
    try:
        verdicts, touched = loader(con, policy, feed, now, params,
                                   lambda share: tick("check", int(feed.rows * share), feed.rows))
        tick("store", 0, feed.rows)
        _keep_rejects(con, feed, verdicts, params, result)
        result.held = int(params.get("held", 0))
        result.accepted -= result.held  # counted as standing rows, but they went to the review queue
        result.overridden = int(params.get("overridden", 0))
        result.model_estimated = bool(params.get("model_estimated", False))
    finally:  # a registered table keeps its Arrow data alive as long as the connection lives
        for name in _INPUTS:
            con.unregister(name)
    result.residents = touched
    con.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [batch, agency, feed.source, principal, now, result.accepted, result.duplicates,
                 sum(result.rejected.values())])
    tick("store", feed.rows, feed.rows)
    return result


_INPUTS = ("json_in", "residents_probe", "phone_in", "cand_in", "again_in", "asking_in", "targets_in",
           "accepted_in", "population_in", "population_ok", "links_in", "telecom_ok", "rejected_in",
           "reasons_in", "seen_in", "held_in", "candidates_in")
"""The Arrow tables a batch registers for its SQL (sql/ingest.sql names them)."""

