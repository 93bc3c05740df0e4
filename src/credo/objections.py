"""Objections (spec §5): a resident contests a record; the record's agency must answer.

Every step is a new, attributed, timestamped row of ``objection_events``; the
state of an objection is derived from its steps, never stored and updated.
Upholding revokes the record through ``credo.ledger.revoke``, with the
objection as the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from credo import ids, ledger
from credo.deadlines import Deadline
from credo.errors import Conflict, NotFound
from credo.policy import Policy
from credo.sql import q
from credo.store import next_id
from credo.times import iso


def _state(con: duckdb.DuckDBPyConnection, **match: Any) -> list[tuple[Any, ...]]:
    """Objections with their outcome, filtered by objection, resident, agency or record_id."""
    params = {k: match.get(k) for k in ("objection", "resident", "agency", "record_id")}
    return con.execute(q("objections.state"), params).fetchall()


def _step(con: duckdb.DuckDBPyConnection, **values: Any) -> None:
    con.execute(q("objections.step"), values)


def open_objection(con: duckdb.DuckDBPyConnection, resident: int, ref: str, reason: str, *,
                   principal: str, now: datetime) -> int:
    """Open an objection against one of ``resident``'s records. Another resident's record is answered
    exactly as a record that does not exist: a resident must not learn that someone else has one."""
    agency, record_id = ledger.parse_ref(ref)
    try:
        record = ledger.find(con, agency, record_id)
    except NotFound:
        record = None
    if record is None or record["resident"] != resident:
        raise NotFound(f"no record {ref} of this resident", code="unknown_record")
    if record["revoked_at"] is not None:
        raise Conflict(f"record {ref} is already revoked: nothing to contest", code="already_revoked")
    if not reason.strip():
        raise Conflict("an objection needs a reason", code="reason_required")
    open_now = [row[0] for row in _state(con, agency=agency, record_id=record_id) if row[7] is None]
    if open_now:
        raise Conflict(f"objection {open_now[0]} against {ref} is still open", code="objection_open")
    number = next_id(con, "objection_events", "objection")
    _step(con, objection=number, step="opened", resident=resident, agency=agency, record_id=record_id,
          text=reason, principal=principal, now=now)
    return number


def resolve(con: duckdb.DuckDBPyConnection, number: int, *, uphold: bool, answer: str, agency: str | None,
            principal: str, now: datetime) -> int:
    """Uphold (revoking the record) or reject an open objection; ``agency`` None is the operator.

    An agency sees only objections against its own records: another agency's is answered exactly as
    one that does not exist, so that no agency learns what others are contested on."""
    rows = _state(con, objection=number, agency=agency)
    if not rows:
        raise NotFound(f"no objection {number}" + (f" against a record of {agency}" if agency else ""),
                       code="unknown_objection")
    _, resident, rec_agency, record_id, *_rest, outcome, _a, _b, _c = rows[0]
    if outcome is not None:
        raise Conflict(f"objection {number} was already {outcome}", code="objection_closed")
    if not answer.strip():
        raise Conflict("a resolution needs an answer", code="answer_required")
    step = "upheld" if uphold else "rejected"
    _step(con, objection=number, step=step, resident=resident, agency=rec_agency, record_id=record_id,
          text=answer, principal=principal, now=now)
    if uphold:
        ledger.revoke(con, rec_agency, record_id, f"objection {number} upheld: {answer}",
                      principal=principal, now=now, objection=number)
    return int(resident)


def listing(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime, *, resident: int | None = None,
            agency: str | None = None, overdue_only: bool = False) -> list[dict[str, Any]]:
    """Objections, overdue first, then newest first."""
    deadline = Deadline.parse(policy.doc.objection_deadline)
    out = []
    for row in _state(con, resident=resident, agency=agency):
        (number, res, rec_agency, record_id, reason, opener, opened_at, outcome, answer, by, resolved_at) = row
        due = deadline.due(opened_at)
        status = outcome or ("overdue" if now >= due.at else "open")
        if overdue_only and status != "overdue":
            continue
        out.append({"id": number, "resident_id": ids.resident_id_from_key(res), "record": f"{rec_agency}:{record_id}",
                    "agency": rec_agency, "status": status, "reason": reason, "opened_at": iso(opened_at, policy.tz),
                    "deadline": iso(due.at, policy.tz),
                    "deadline_estimated": due.estimated, "answer": answer, "resolved_by": by,
                    "resolved_at": iso(resolved_at, policy.tz), "opened_by": opener})
    out.sort(key=lambda o: (o["status"] != "overdue", -o["id"]))
    return out
