"""Rejected rows, kept with their line, the row as received, reason, field and message."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credo import ids
from credo.feeds import Feed
from credo.ingest.verdicts import DUPLICATE, ID_REASONS, REASONS, BatchResult, Verdicts, _register
from credo.sql import q
from credo.text import _I64, UNSAFE_TEXT, _np, unsafe_detail

_SHOWN = 80  # characters of an offending value quoted in a message


def _keep_rejects(con: duckdb.DuckDBPyConnection, feed: Feed, v: Verdicts, params: dict[str, Any],
                  result: BatchResult) -> None:
    """Count every row and store each reject with its line, the row as received, reason, field and a
    message; the message is assembled in SQL so that a file of a million bad rows costs no Python loop
    (only identity problems and in-file conflicts carry a per-row detail)."""
    counts = np.bincount(v.code, minlength=len(v.rules))
    result.accepted = int(counts[0])
    for i, (reason, _) in enumerate(v.rules[1:], start=1):
        if reason == DUPLICATE:
            result.duplicates += int(counts[i])
        elif counts[i]:
            result.rejected[reason] += int(counts[i])
    if feed.broken:
        result.rejected["malformed_row"] += len(feed.broken)
    dup_codes = [i for i, (r, _) in enumerate(v.rules) if r == DUPLICATE]
    rows = np.flatnonzero((v.code != 0) & ~np.isin(v.code, dup_codes))
    if not len(rows) and not feed.broken:
        return
    columns = [c for c in feed.table.column_names if c != "_line"]
    reason, fld = v.reasons()
    take = pa.array(rows, pa.int64())
    raw = feed.table.take(take)
    schema = pa.schema([("_line", pa.int64()), ("reason", pa.string()), ("field", pa.string()),
                        ("detail", pa.string()), ("_raw", pa.string()), *[(c, pa.string()) for c in columns]])
    parts = [pa.table([raw.column("_line"), reason.take(take), fld.take(take),
                       pa.array(_details(feed, v, rows, reason, fld, params["now"]), pa.string()),
                       pa.nulls(len(rows), pa.string()), *[raw.column(c) for c in columns]], schema=schema)]
    if feed.broken:
        k = len(feed.broken)
        parts.append(pa.table([
            pa.array([b.line for b in feed.broken], pa.int64()), pa.array(["malformed_row"] * k, pa.string()),
            pa.array([b.field for b in feed.broken], pa.string()),
            pa.array([b.message for b in feed.broken], pa.string()),
            pa.array([b.text for b in feed.broken], pa.string()),
            *[pa.nulls(k, pa.string()) for _ in columns]],
            schema=schema))
    _register(con, "rejected_in", pa.concat_tables(parts))
    _register(con, "reasons_in", pa.table({"reason": list(REASONS),
                                           "text": [text for _, text in REASONS.values()]}))
    # Column names come from the feed's fixed column set (checked against the header), never from data.
    pairs = ", ".join(f"'{c}', r.{c}" for c in columns)
    whens = " ".join(f"WHEN '{c}' THEN r.{c}" for c in columns)
    row_text, got = f"json_object({pairs})", f"CASE r.field {whens} END"
    sql = q("ingest.rejects_append").replace("$row_text", row_text).replace("$got", got)
    con.execute(sql, {"batch": params["batch"], "agency": params["agency"], "source": feed.source,
                      "now": params["now"], "shown": _SHOWN})


def _details(feed: Feed, v: Verdicts, rows: _I64, reason: pa.Array, fld: pa.Array,
             now: datetime) -> list[str | None]:
    """Per-row wording where the reason alone is not enough: identity problems say what is wrong with
    the ID the way credo.ids does (length, date, check character), conflicts name the earlier line."""
    out: list[str | None] = [v.detail.get(int(r)) for r in rows] if v.detail else [None] * len(rows)
    reasons = reason.take(pa.array(rows, pa.int64()))
    fields = fld.take(pa.array(rows, pa.int64()))
    wanted = _np(pc.is_in(reasons, value_set=pa.array((*ID_REASONS, UNSAFE_TEXT))))
    for name in pc.unique(fields.filter(pa.array(wanted))).to_pylist():
        at = np.flatnonzero(wanted & _np(pc.equal(fields, name)))
        values = feed.table.column(name).take(pa.array(rows[at], pa.int64())).to_pylist()
        for i, r, value in zip(at, reasons.take(pa.array(at)).to_pylist(), values, strict=True):
            out[i] = _id_detail(r, value or "", now.date())
    return out


def _id_detail(reason: str, value: str, today: date) -> str:
    if reason == UNSAFE_TEXT:
        return unsafe_detail(value)
    try:
        if reason == ids.BAD_PHONE:
            ids.normalise_phone(value)
        else:
            ids.normalise_resident_id(value, today)
    except ids.IdError as exc:
        return exc.detail
    return reason


def batch_rows(con: duckdb.DuckDBPyConnection, result: BatchResult,
               record_ids: list[str | None]) -> list[dict[str, Any]]:
    """Each row of an API batch: accepted, duplicate (already in the ledger), held for identity review
    (with its item) or rejected and why."""
    rejected = {int(line): (reason, field, message) for line, reason, field, message
                in con.execute(q("rejects.of_batch"), {"batch": result.batch}).fetchall()}
    batch_of: dict[str, int] = {}
    queued: dict[str, tuple[int, int]] = {}
    if result.agency not in ("population", "telecom"):
        named = {"agency": result.agency, "records": [r for r in record_ids if r]}
        batch_of = dict(con.execute(q("rejects.batches_of_records"), named).fetchall())
        queued = {r: (item, batch) for r, item, batch in con.execute(q("rejects.review_items_of_records"),
                                                                      named).fetchall()}
    out: list[dict[str, Any]] = []
    for line, record_id in enumerate(record_ids, start=1):
        row: dict[str, Any] = {"line": line, "record_id": record_id}
        if line in rejected:
            reason, field, message = rejected[line]
            row.update(status="rejected", reason=reason, field=field, message=message)
        elif record_id is not None and record_id in batch_of:
            row["status"] = "accepted" if batch_of[record_id] == result.batch else "duplicate"
        elif record_id is not None and record_id in queued and queued[record_id][1] == result.batch:
            row.update(status="held", review_item=queued[record_id][0])
        elif record_id is not None and record_id in queued:
            row["status"] = "duplicate"  # of a row already held
        else:
            row["status"] = "accepted"
        out.append(row)
    return out
