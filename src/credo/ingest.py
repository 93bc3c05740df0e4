"""Feeds into the store: agency records into the append-only ledger, population and telecom feeds
into residents and phone links.

Validation is vectorised: identity checks run in numpy over whole columns
(``credo.ids``) and every other rule is one SQL pass (``sql/ingest.sql``); only
rejected rows get a Python loop, to write a message a person can act on. The
caller holds the transaction, so a batch lands whole or not at all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credo import ids
from credo.feeds import Feed
from credo.policy import Policy
from credo.sql import pipeline, q
from credo.store import next_id

REASONS: dict[str, tuple[str, str]] = {
    "malformed_row": ("(row)", "the row could not be split into the feed's columns"),
    "missing_record_id": ("record_id", "is required"),
    "record_id_too_long": ("record_id", "must be 1 to 64 characters"),
    "missing_type": ("type", "is required"),
    "unknown_type": ("type", "is not a record type of the policy"),
    "type_not_allowed": ("type", "belongs to another agency under the policy"),
    "missing_subject": ("subject", "is required"),
    "missing_date": ("occurred_at", "is required"),
    "bad_date": ("occurred_at", "is not an ISO 8601 date or date-time"),
    "date_too_early": ("occurred_at", "is before 1900"),
    "future_date": ("occurred_at", "is more than one day in the future"),
    "bad_attributes": ("attributes", "must be a JSON object"),
    "attributes_too_large": ("attributes", "must be at most 4 KiB"),
    "unresolved_phone": ("subject", "no resident held this phone at occurred_at"),
    "unknown_resident": ("subject", "is not a registered resident"),
    "conflict": ("record_id", "already used by this agency for a record with different content"),
    "unknown_resolves": ("resolves", "names no record of this agency in the ledger or earlier in the batch"),
    "bad_resolves": ("resolves", "names a record this type may not resolve, or another resident's"),
    "missing_name": ("name", "is required"),
    "bad_district": ("district", "must be a 6-digit region code"),
    "bad_status": ("status", "must be active, deceased or moved_out"),
    "bad_period": ("valid_to", "is before valid_from"),
    "overlapping_holder": ("phone", "overlaps another holder's period for this number"),
}
"""Reason code -> (field, explanation). Identity reasons take their message from credo.ids."""


@dataclass
class BatchResult:
    """What became of one feed: counted, never silent."""

    source: str
    agency: str
    batch: int
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    residents: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "agency": self.agency, "batch": self.batch, "rows": self.rows,
                "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": sum(self.rejected.values()), "reasons": dict(sorted(self.rejected.items()))}


def ingest(con: duckdb.DuckDBPyConnection, policy: Policy, agency: str, feed: Feed, *,
           principal: str, now: datetime) -> BatchResult:
    """Validate and store one feed. Returns counts and the residents whose standing may change."""
    batch = next_id(con, "batches", "batch")
    result = BatchResult(feed.source, agency, batch, rows=feed.table.num_rows + len(feed.broken))
    con.execute(f"SET TimeZone = '{policy.tz}'") if policy.tz.replace("/", "").replace("_", "").isalnum() else None
    for name, table in policy.tables().items():
        con.register(name, table)
    loader = {"population": _population, "telecom": _telecom}.get(agency, _records)
    params = {"agency": agency, "batch": batch, "now": now}
    classified = loader(con, feed, now, params)
    _keep_rejects(con, feed, classified, params, result)
    con.execute(
        "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [batch, agency, feed.source, principal, now, result.accepted, result.duplicates,
         sum(result.rejected.values())],
    )
    con.execute("SET TimeZone = 'UTC'")
    return result


def _identity_columns(table: pa.Table, column: str, today: date) -> dict[str, pa.Array]:
    keys, reasons = ids.check_resident_ids(table.column(column), today)
    return {"key": keys, "id_reason": reasons}


def _records(con: duckdb.DuckDBPyConnection, feed: Feed, now: datetime, params: dict[str, Any]) -> str:
    table = feed.table
    subject = pc.utf8_trim_whitespace(table.column("subject"))
    is_phone = pc.fill_null(pc.match_substring_regex(subject, r"^[0-9]{11}$"), False)
    keys, id_reasons = ids.check_resident_ids(table.column("subject"), now.date())
    phones, phone_reasons = ids.check_phones(table.column("subject"))
    batch = table.append_column("key", pc.if_else(is_phone, pa.nulls(len(table), pa.int64()), keys))
    batch = batch.append_column("phone", pc.if_else(is_phone, phones, pa.nulls(len(table), pa.int64())))
    batch = batch.append_column("id_reason", pc.if_else(is_phone, phone_reasons, id_reasons))
    con.register("batch_in", batch)
    steps = ["records_parsed", "records_resolved", "records_targets"]
    query = pipeline("ingest", steps, f"SELECT * FROM ({q('ingest.records_classified')})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {query}",
                {"agency": params["agency"], "latest": now + timedelta(days=1)})
    con.execute(q("ingest.records_append"), {"agency": params["agency"], "batch": params["batch"]})
    return "classified"


def _population(con: duckdb.DuckDBPyConnection, feed: Feed, now: datetime, params: dict[str, Any]) -> str:
    cols = _identity_columns(feed.table, "resident_id", now.date())
    batch = feed.table
    for name, values in cols.items():
        batch = batch.append_column(name, values)
    con.register("batch_in", batch)
    con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {q('ingest.population_classified')}")
    con.execute("CREATE OR REPLACE TEMP VIEW population_ok AS SELECT * FROM classified "
                "WHERE reason IS NULL QUALIFY row_number() OVER (PARTITION BY key ORDER BY _line DESC) = 1")
    for statement in q("ingest.population_upsert").split(";"):
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
    return "classified"


def _telecom(con: duckdb.DuckDBPyConnection, feed: Feed, now: datetime, params: dict[str, Any]) -> str:
    batch = feed.table
    for name, values in _identity_columns(batch, "resident_id", now.date()).items():
        batch = batch.append_column(name, values)
    phones, reasons = ids.check_phones(batch.column("phone"))
    batch = batch.append_column("phone_key", phones).append_column("phone_reason", reasons)
    con.register("batch_in", batch)
    query = pipeline("ingest", ["telecom_classified"], f"SELECT * FROM ({q('ingest.telecom_checked')})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {query}")
    con.execute("CREATE OR REPLACE TEMP VIEW telecom_ok AS SELECT * FROM classified WHERE reason IS NULL")
    for statement in q("ingest.telecom_upsert").split(";"):
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
    return "classified"


def _keep_rejects(con: duckdb.DuckDBPyConnection, feed: Feed, classified: str, params: dict[str, Any],
                  result: BatchResult) -> None:
    counts = con.execute(f"SELECT reason, count(*) FROM {classified} GROUP BY reason").fetchall()
    for reason, n in counts:
        if reason is None:
            result.accepted = int(n)
        elif reason == "duplicate":
            result.duplicates = int(n)
        else:
            result.rejected[reason] += int(n)
    subject_col = {"population": "resident_id", "telecom": "resident_id"}.get(params["agency"], "subject")
    rows = con.execute(
        f"SELECT c._line, c.reason, c.row_text FROM {classified} c "
        "WHERE c.reason IS NOT NULL AND c.reason <> 'duplicate' ORDER BY c._line"
    ).fetchall()
    out: list[tuple[int, str, str, str, str]] = []
    for line, reason, row_text in rows:
        fld, message = _explain(reason, row_text, subject_col)
        out.append((line, reason, row_text, fld, message))
    for line, text, why in feed.broken:
        out.append((line, "malformed_row", text, "(row)", why))
        result.rejected["malformed_row"] += 1
    if out:
        table = pa.table({
            "_line": pa.array([o[0] for o in out], pa.int64()), "reason": [o[1] for o in out],
            "row_text": [o[2] for o in out], "field": [o[3] for o in out], "message": [o[4] for o in out],
        })
        con.register("rejected_in", table)
        con.execute(q("ingest.rejects_append"), {**params, "source": feed.source})
    if params["agency"] not in ("telecom",):
        key = "key" if params["agency"] == "population" else "resident"
        touched = con.execute(f"SELECT DISTINCT {key} FROM {classified} WHERE reason IS NULL").fetchnumpy()
        result.residents = np.asarray(touched[key], dtype=np.int64)


def _explain(reason: str, row_text: str, subject_col: str) -> tuple[str, str]:
    """Field and message for a rejected row; identity problems reuse credo.ids' own wording."""
    import orjson

    row = orjson.loads(row_text)
    if reason.startswith("id_") or reason == "bad_phone":
        value = str(row.get(subject_col) or row.get("phone") or "")
        if reason == "bad_phone" and "phone" in row:
            value = str(row.get("phone") or "")
        try:
            ids.normalise_phone(value) if reason == "bad_phone" else ids.normalise_resident_id(value)
        except ids.IdError as exc:
            return (subject_col if subject_col in row and reason != "bad_phone" else exc.field), str(exc)
        return subject_col, reason
    fld, text = REASONS.get(reason, ("(row)", reason))
    if fld == "occurred_at" and "valid_from" in row:
        fld = "valid_from"
    shown = row.get(fld)
    return fld, f"{fld}: {text}" + (f" (got {str(shown)[:80]!r})" if shown not in (None, "") else "")
