"""Replay: a logged decision recomputed from the ledger as Credo held it then (spec §8).

"What did we tell the airline, and why" is answered from the log (spec §6); replay checks that
the log and the ledger still agree on it. The decision is recomputed at T = K = the time it was
made: the standing at that instant, from only the writes known before the decision's own audit
entry (``credo.known``), under the policy in force then, and compared with what the log says was
answered: the outcome, the benefits, the reason codes and the records behind each. A record
revoked after the decision does not change its replay (it was not known then); a decision that
replays differently means the ledger, the log or the scoring changed under it.

A check asked about another time (``credo check --as-of/--known-at``) logged the times it asked
about, and replays at those (its K still bounded by its own entry). A decision the server answered
from its decision index logged the last write that index reflected (``known``), and counts the
writes up to that one: the index may take a write in only after the write's entry was chained, and
a decision answered meanwhile is journaled after it, but was made without it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import orjson

from credo import decisions, ids, known, standing
from credo.errors import NotFound
from credo.known import Known
from credo.sql import q
from credo.times import iso

COMPARED = ("decision", "benefits", "codes", "records", "policy")
"""What a replay compares, in the order differences are listed."""


def logged(con: duckdb.DuckDBPyConnection, decision_id: str) -> dict[str, Any]:
    """The decision's audit entry, or NotFound."""
    rows = con.execute(q("replay.entry"), {"decision_id": decision_id}).fetchall()
    if not rows:
        raise NotFound(f"no decision {decision_id} in the audit log", code="unknown_decision")
    seq, at, resident, action, verdict, policy, detail = rows[0]
    return {"seq": int(seq), "at": at, "resident": int(resident), "action": action, "decision": verdict,
            "policy": policy, "detail": orjson.loads(detail) if detail else []}


def _said(entry: dict[str, Any]) -> dict[str, Any]:
    """What the log says was answered (an old entry kept only the reason codes)."""
    detail = entry["detail"]
    if isinstance(detail, list):
        return {"decision": entry["decision"], "codes": detail, "policy": entry["policy"]}
    return {"decision": entry["decision"], "benefits": detail["benefits"], "codes": detail["codes"],
            "records": [sorted(r) for r in detail["records"]], "policy": entry["policy"]}


def _before(entry: dict[str, Any]) -> int:
    """The entry the writes counted must precede: the decision's own, or for a decision answered from
    the server's index (its ``known``: the last write the index reflected), the one after that write,
    however long after it the decision was journaled."""
    detail, seq = entry["detail"], int(entry["seq"])
    return min(seq, int(detail["known"]) + 1) if isinstance(detail, dict) and "known" in detail else seq


def replay(con: duckdb.DuckDBPyConnection, decision_id: str, tz: str) -> dict[str, Any]:
    """The decision recomputed and compared: ``{"decision_id", "resident_id", "action", "at", "known_at",
    "same", "logged", "replayed", "differences": [{"field", "logged", "replayed"}]}``."""
    entry = logged(con, decision_id)
    asked = entry["detail"].get("asked") if isinstance(entry["detail"], dict) else None
    t: datetime = datetime.fromisoformat(asked["as_of"]) if asked else entry["at"]
    then = Known(datetime.fromisoformat(asked["known_at"]) if asked else entry["at"], _before(entry))
    in_force = known.policies_at(con, then)  # every jurisdiction's, as the decision was made (spec §9)
    found = standing.at_in_force(con, in_force, entry["resident"], t, then)
    d = decisions.decide_across(in_force, found, entry["action"], t)
    again = {"decision": d.decision, "benefits": d.benefits, "codes": [r["code"] for r in d.reasons],
             "records": [sorted(f"{x['agency']}:{x['record_id']}" for x in r["records"]) for r in d.reasons],
             "policy": d.policy}
    said = _said(entry)
    again = {k: v for k, v in again.items() if k in said}
    differences = [{"field": name, "logged": said[name], "replayed": again[name]}
                   for name in COMPARED if name in said and said[name] != again[name]]
    return {"decision_id": decision_id, "resident_id": ids.resident_id_from_key(entry["resident"]),
            "action": entry["action"], "at": iso(t, tz), "known_at": iso(then.at, tz), "seq": entry["seq"],
            "same": not differences, "logged": said, "replayed": again, "differences": differences}
