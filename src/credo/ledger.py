"""The ledger's human side: revocations, a resident's records, and the rejects kept for re-sending.

Nothing here updates a row: a revocation is a new row naming who and why, and
the record stays visible to the resident with that reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from credo.errors import Conflict, NotFound


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


REJECT_COLUMNS = ["batch", "agency", "source", "line", "row_text", "reason", "field", "message", "received_at"]
REJECT_LIST = ", ".join(REJECT_COLUMNS)
"""The rejects columns as SQL names (a constant, never data)."""


def rejects(con: duckdb.DuckDBPyConnection, agency: str | None = None,
            limit: int = 1000) -> list[dict[str, Any]]:
    """Rejected rows with their source, line, the row as received, reason, field and message."""
    rows = con.execute(f"SELECT {REJECT_LIST} FROM rejects WHERE (?::VARCHAR IS NULL OR agency = ?) "
                       "ORDER BY batch, line LIMIT ?", [agency, agency, limit]).fetchall()
    return [dict(zip(REJECT_COLUMNS, r, strict=True)) for r in rows]


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
