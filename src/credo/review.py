"""The review queue (spec §10): rows about a described person, held until a person judges the match.

A held row is not in the ledger: it counts in no standing, no decision rests on it and no change feed
tells of it. Each item keeps the row as received and its ranked candidates (``credo.matching``).
Judgements are rows of ``review_judgements``, appended with who, when and why and never updated; an
item's state is derived from them: ``pending`` (``overdue`` past the policy's ``review_deadline``), or
``confirmed`` / ``declined`` by its one judgement. A confirmed row enters the ledger for that resident
in a batch of its own (so it is known from the confirmation; ``occurred_at`` stays as given), and the
caller rescores through the service's one path. A declined row becomes a reject ``identity_declined``,
listed, corrected and re-sent like any other.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from credo import ids, matching, settings
from credo.deadlines import Deadline
from credo.errors import Conflict, NotFound
from credo.policy import Policy
from credo.sql import q
from credo.store import next_id
from credo.times import iso

DECLINED = "identity_declined"
"""The reject reason of a row whose match a person declined."""


def model(con: duckdb.DuckDBPyConnection, now: datetime) -> tuple[matching.Model, bool]:
    """The matching model for the registry as it is: the stored one, or (the registry changed since)
    estimated again and stored. The flag says whether it is new (the operator's file is rewritten)."""
    residents, batch = matching.registry_state(con)
    found = con.execute(q("review.model_at"), {"residents": residents, "batch": batch}).fetchall()
    if found:
        return matching.Model.from_json(found[0][0]), False
    made = matching.estimate(con)
    con.execute(q("review.model_store"), {"now": now, "residents": made.residents, "batch": made.registry_batch,
                                          "model": made.to_json()})
    return made, True


def predictor() -> matching.Predict:
    """Splink's step on the engine the operator chose (``CREDO_MATCH_ENGINE``): DuckDB, or Spark on the
    process's scoring session (``credo.matchspark``) for a large backlog."""
    if settings.current().match_engine == "spark":
        from credo.engines.spark import session
        from credo.matchspark import predict_on_spark

        return predict_on_spark(session())
    return matching.predict_on_duckdb


def write_model(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The latest model, as the operator reads it (Splink's JSON with where each parameter came from)."""
    found = con.execute(q("review.model_latest")).fetchall()
    if found:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(found[0][0], encoding="utf-8")
        tmp.replace(path)


def hold(con: duckdb.DuckDBPyConnection, held: pa.Table, *, agency: str, batch: int, source: str,
         now: datetime) -> tuple[int, bool]:
    """Queue the described rows of a batch (``pos, line, record_id, type, occurred_at, attributes,
    subject_name, subject_birth_date, subject_district, row_text``) with their candidates: (items,
    whether the model was estimated anew)."""
    if not held.num_rows:
        return 0, False
    first = next_id(con, "review_items", "item")
    items = pa.table({"item": pa.array(range(first, first + held.num_rows), pa.int32()),
                      **{c: held.column(c) for c in held.column_names}})
    con.register("held_in", items)
    try:
        con.execute(q("review.hold"), {"agency": agency, "batch": batch, "source": source, "now": now})
        found, fresh = model(con, now)
        described = pa.table({"pos": items.column("item").cast(pa.int64()), "name": held.column("subject_name"),
                              "birth_date": held.column("subject_birth_date"),
                              "district": held.column("subject_district")})
        con.register("candidates_in", matching.candidates(con, found, described, predictor()))
        con.execute(q("review.candidates_append"))
    finally:
        con.unregister("held_in")
        con.unregister("candidates_in")
    return held.num_rows, fresh


def _item(con: duckdb.DuckDBPyConnection, number: int, agency: str | None) -> dict[str, Any]:
    """One item with its judgement; another agency's is answered exactly as one that does not exist."""
    rows = con.execute(q("review.items"), {"item": number, "agency": agency}).fetchall()
    if not rows:
        raise NotFound(f"no review item {number}" + (f" of {agency}" if agency else ""), code="unknown_review_item")
    return dict(zip(_ITEM_COLUMNS, rows[0], strict=True))


_ITEM_COLUMNS = ("item", "agency", "record_id", "type", "occurred_at", "attributes", "subject_name",
                 "subject_birth_date", "subject_district", "source", "line", "row_text", "batch", "received_at",
                 "step", "resident", "reason", "principal", "role", "judged_at")


def _pending(found: dict[str, Any]) -> None:
    if found["step"] is not None:
        raise Conflict(f"review item {found['item']} was already {found['step']} by {found['principal']}",
                       code="review_judged")


def _reason(reason: str) -> str:
    if not reason.strip():
        raise Conflict("a judgement needs a reason", code="reason_required")
    return reason.strip()


def confirm(con: duckdb.DuckDBPyConnection, number: int, resident: int, reason: str, *, principal: str,
            role: str, agency: str | None, now: datetime) -> dict[str, Any]:
    """Confirm that item ``number`` is about ``resident`` (one of its candidates): the record enters the
    ledger in a batch of its own. Returns the item; the caller rescores the resident."""
    found = _item(con, number, agency)
    _pending(found)
    why = _reason(reason)
    named = {r for (r,) in con.execute(q("review.candidate_keys"), {"item": number}).fetchall()}
    if resident not in named:
        raise Conflict(f"{ids.resident_id_from_key(resident)} is not a candidate of review item {number}",
                       code="not_a_candidate", details={"candidates": [ids.resident_id_from_key(r) for r in named]})
    if con.execute(q("review.in_ledger"), {"agency": found["agency"], "record_id": found["record_id"]}).fetchall():
        raise Conflict(f"record {found['agency']}:{found['record_id']} is in the ledger already",
                       code="record_exists")
    batch = next_id(con, "batches", "batch")
    con.execute(q("review.confirm_batch"), {"batch": batch, "agency": found["agency"], "source": f"review:{number}",
                                            "principal": principal, "now": now})
    con.execute(q("review.confirm_append"), {"item": number, "resident": resident, "batch": batch,
                                             "subject": f"review:{number}"})
    _judge(con, number, "confirmed", resident, why, principal, role, now, batch)
    return {**found, "batch": batch}


def decline(con: duckdb.DuckDBPyConnection, number: int, reason: str, *, principal: str, role: str,
            agency: str | None, now: datetime) -> dict[str, Any]:
    """Decline item ``number``: none of its candidates is the person; the row becomes a reject."""
    found = _item(con, number, agency)
    _pending(found)
    why = _reason(reason)
    _judge(con, number, "declined", None, why, principal, role, now, None)
    con.execute(q("review.decline_reject"), {
        "item": number, "reason": DECLINED, "now": now,
        "message": f"subject: the match of review item {number} was declined by {principal}: {why}"})
    return found


def _judge(con: duckdb.DuckDBPyConnection, number: int, step: str, resident: int | None, reason: str,
           principal: str, role: str, now: datetime, batch: int | None) -> None:
    con.execute(q("review.judge"), {"item": number, "step": step, "resident": resident, "reason": reason,
                                    "principal": principal, "role": role, "now": now, "batch": batch})


def deadline(policy: Policy) -> Deadline:
    """How long an item may wait before it is overdue: the policy's ``review_deadline`` (calendar days or
    working days, ``credo.deadlines``)."""
    return Deadline.parse(policy.doc.review_deadline)


def listing(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime, *, agency: str | None = None,
            item: int | None = None) -> list[dict[str, Any]]:
    """Items, pending ones first (overdue before the rest), each with its ranked candidates."""
    tz, due_in = policy.tz, deadline(policy)
    rows = [dict(zip(_ITEM_COLUMNS, r, strict=True))
            for r in con.execute(q("review.items"), {"item": item, "agency": agency}).fetchall()]
    shown: dict[int, list[dict[str, Any]]] = {}
    for number, rank, resident, probability, weight, comparisons in con.execute(
            q("review.candidates"), {"item": item, "agency": agency}).fetchall():
        shown.setdefault(number, []).append({
            "rank": rank, "resident_id": ids.resident_id_from_key(resident), "probability": round(probability, 6),
            "match_weight": round(weight, 3), "comparisons": json.loads(comparisons)})
    out = []
    for r in rows:
        due = due_in.due(r["received_at"])
        status = r["step"] or ("overdue" if now >= due.at else "pending")
        out.append({
            "id": r["item"], "agency": r["agency"], "record": f"{r['agency']}:{r['record_id']}", "type": r["type"],
            "status": status, "occurred_at": iso(r["occurred_at"], tz),
            "subject": {"name": r["subject_name"], "birth_date": r["subject_birth_date"].isoformat(),
                        "district": r["subject_district"]},
            "row": json.loads(r["row_text"]), "source": r["source"], "line": r["line"],
            "received_at": iso(r["received_at"], tz), "deadline": iso(due.at, tz),
            "deadline_estimated": due.estimated,
            "candidates": shown.get(r["item"], []),
            "judgement": None if r["step"] is None else {
                "step": r["step"], "resident_id": ids.resident_id_from_key(r["resident"]) if r["resident"] else None,
                "reason": r["reason"], "by": r["principal"], "role": r["role"], "at": iso(r["judged_at"], tz)}})
    order = {"overdue": 0, "pending": 1}
    out.sort(key=lambda o: (order.get(o["status"], 2), o["id"]))
    return out


def summary(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime) -> dict[str, Any]:
    """For the dashboard: items waiting (and of those, overdue past ``review_deadline``) and judged."""
    due_in = deadline(policy)
    waiting = [r for (r,) in con.execute(q("review.pending_received")).fetchall()]
    [(judged,)] = con.execute(q("review.judged_count")).fetchall()
    return {"pending": len(waiting), "overdue": sum(now >= due_in.due(r).at for r in waiting),
            "judged": int(judged), "deadline": policy.doc.review_deadline}


def matched(con: duckdb.DuckDBPyConnection, resident: int, tz: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The records of ``resident`` that entered the ledger by review: (agency, record_id) -> who
    confirmed the match, when, and the item."""
    return {(agency, record_id): {"item": item, "confirmed_by": by, "confirmed_at": iso(at, tz), "reason": why}
            for agency, record_id, item, by, at, why
            in con.execute(q("review.matched"), {"resident": resident}).fetchall()}
