"""The ledger's human side: revocations, a resident's records, and the rejects kept for re-sending.

Nothing here updates a row: a revocation is a new row naming who and why, and
the record stays visible to the resident with that reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from credo.errors import Conflict, CredoError, NotFound
from credo.sql import q
from credo.times import iso


def parse_ref(ref: str) -> tuple[str, str]:
    """``AGENCY:RECORD_ID`` -> (agency, record_id)."""
    agency, sep, record_id = ref.partition(":")
    if not sep or not agency or not record_id:
        raise NotFound(f"record reference {ref!r} must look like AGENCY:RECORD_ID", code="bad_record_ref")
    return agency, record_id


def find(con: duckdb.DuckDBPyConnection, agency: str, record_id: str) -> dict[str, Any]:
    rows = con.execute(
        "SELECT l.resident, l.type, l.occurred_at, r.revoked_at FROM ledger l LEFT JOIN revocations r "
        "ON r.agency = l.agency AND r.record_id = l.record_id WHERE l.agency = ? AND l.record_id = ?",
        [agency, record_id]).fetchall()
    if not rows:
        raise NotFound(f"no record {agency}:{record_id} in the ledger", code="unknown_record")
    resident, type_, occurred_at, revoked_at = rows[0]
    return {"resident": resident, "type": type_, "occurred_at": occurred_at, "revoked_at": revoked_at}


def revoke(con: duckdb.DuckDBPyConnection, agency: str, record_id: str, reason: str, *,
           principal: str, now: datetime, objection: int | None = None) -> int:
    """Revoke a record of ``agency``; returns the resident whose standing changes."""
    if not reason.strip():
        raise Conflict("a revocation needs a reason", code="reason_required")
    record = find(con, agency, record_id)
    if record["revoked_at"] is not None:
        raise Conflict(f"record {agency}:{record_id} is already revoked", code="already_revoked")
    con.execute("INSERT INTO revocations VALUES (?, ?, ?, ?, ?, ?)",
                [agency, record_id, now, reason, principal, objection])
    return int(record["resident"])


REJECT_COLUMNS = ["batch", "agency", "source", "line", "record", "row_text", "reason", "field", "message",
                  "received_at", "accepted_later"]
"""What ``rejects.page`` returns for each row, in order."""


def rejects(con: duckdb.DuckDBPyConnection, tz: str, agency: str | None = None, limit: int = 1000,
            after: str | None = None) -> dict[str, Any]:
    """One page of rejected rows, oldest first: ``{"rejects", "total", "next"}``, where ``total`` counts
    them all (of ``agency`` when given) and ``next`` is the marker the next page starts after (None
    on the last page), so a listing never stops silently at its limit. Each row has its source, line,
    the row as received, reason, field and message, the record it names (``AGENCY:RECORD_ID``) and
    whether a later batch accepted that record (``accepted_later``)."""
    batch, line = _marker(after) if after else (-1, -1)
    params = {"agency": agency, "batch": batch, "line": line}
    rows = con.execute(q("rejects.page"), {**params, "limit": limit + 1}).fetchall()
    [(total,)] = con.execute(q("rejects.total"), {"agency": agency}).fetchall()
    page = [dict(zip(REJECT_COLUMNS, r, strict=True)) for r in rows[:limit]]
    for r in page:
        r["received_at"] = iso(r["received_at"], tz)
    more = len(rows) > limit
    return {"rejects": page, "total": int(total),
            "next": f"{page[-1]['batch']}:{page[-1]['line']}" if more and page else None}


def _marker(text: str) -> tuple[int, int]:
    batch, sep, line = text.strip().partition(":")
    if not (sep and batch.isascii() and batch.isdigit() and line.isascii() and line.isdigit()):
        raise CredoError(f"after: {text!r} is not the next marker of a rejects listing (BATCH:LINE)",
                         code="bad_marker")
    return int(batch), int(line)


def records_of(con: duckdb.DuckDBPyConnection, resident: int,
               agency: str | None = None) -> list[dict[str, Any]]:
    """A resident's records as stored, with their revocation if any (an agency sees only its own)."""
    cols = ["agency", "record_id", "type", "occurred_at", "resolves", "attributes", "revoked_at",
            "revoke_reason"]
    where = " AND l.agency = ?" if agency else ""
    rows = con.execute(
        "SELECT l.agency, l.record_id, l.type, l.occurred_at, l.resolves, l.attributes, r.revoked_at, "
        "r.reason "
        "FROM ledger l LEFT JOIN revocations r ON r.agency = l.agency AND r.record_id = l.record_id "
        f"WHERE l.resident = ?{where} ORDER BY l.occurred_at, l.agency, l.record_id",
        [resident, *([agency] if agency else [])]).fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]
