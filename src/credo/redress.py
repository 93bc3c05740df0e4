"""Redress (spec §8): logged decisions that a record later withdrawn made worse for the resident.

When a record is withdrawn (revoked by its agency, or an objection upheld), every decision logged about
its resident that the record could have rested on is examined, in the withdrawal's own transaction: a
decision about a time T by which the record had occurred, made while Credo held the record, before
the withdrawal became known (``credo.known``). Each is recomputed at its own T under the policy in
force when it was made, from what is known now, and *needs redress* when that comes out better for
the resident: a deny that is now an allow, or a benefit it lacked. A replay (``credo.replay``) gives
the other side: what was said, from what was known then.

Each examination is kept, one row per decision and withdrawal (``needed`` or not): a decision found to
need redress is not examined again, and a later withdrawal looks again only at decisions that the
earlier ones did not make better (one record withdrawn of two that held a list changes nothing; the
second does). An item that needs redress
tells the resident (a ``redress`` notice), and is listed for the operator and for the provider that
was told (``credo redress``, ``GET /v1/redress``, the resident's page, the dashboard), and goes on the
provider's change feed beside the withdrawal's own changes: open until the provider acknowledges it there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import orjson

from credo import decisions, ids, known, notices, standing
from credo.known import Known
from credo.sql import q
from credo.times import iso


def _said(verdict: str, detail: str | None) -> dict[str, Any]:
    """What the log says the decision answered (an entry logged before benefits were kept has none)."""
    parsed = orjson.loads(detail) if detail else []
    benefits = parsed.get("benefits", []) if isinstance(parsed, dict) else []
    return {"decision": verdict, "benefits": sorted(benefits)}


def better(said: dict[str, Any], holds: dict[str, Any]) -> bool:
    """Whether ``holds`` is better for the resident than ``said``: deny to allow, or a benefit gained."""
    if holds["decision"] != "allow":
        return False
    return said["decision"] == "deny" or bool(set(holds["benefits"]) - set(said["benefits"]))


def find(con: duckdb.DuckDBPyConnection, resident: int, now: datetime) -> int:
    """Examine the resident's logged decisions that a withdrawal may have made wrong; the number that
    need redress (each told to the resident). Runs inside the withdrawal's transaction."""
    needed = 0
    for seq, at, principal, role, action, verdict, decision_id, _policy, detail, withdrawn in con.execute(
            q("redress.candidates"), {"resident": resident}).fetchall():
        asked = orjson.loads(detail).get("asked") if detail and detail.startswith("{") else None
        t = datetime.fromisoformat(asked["as_of"]) if asked else at
        in_force = known.policies_at(con, Known(at, seq))  # every jurisdiction's, as when it was made
        if not any(action in p.doc.actions for p in in_force):
            continue
        now_known = standing.at_in_force(con, in_force, resident, t, Known(now))
        d = decisions.decide_across(in_force, now_known, action, t)
        said, holds = _said(verdict, detail), {"decision": d.decision, "benefits": d.benefits}
        need = better(said, holds)
        provider = _provider(con, principal, role)
        records = [{"record": f"{w['agency']}:{w['record_id']}", "withdrawn_at": w["revoked_at"].isoformat(),
                    "reason": w["reason"], "by": w["by"], "objection": w["objection"]} for w in withdrawn]
        con.execute(q("redress.insert"), {
            "decision_id": decision_id, "seq": seq, "resident": resident, "principal": principal,
            "provider": provider, "action": action, "decided_at": at, "needed": need,
            "said": orjson.dumps(said).decode(), "holds": orjson.dumps(holds).decode(),
            "withdrawn": orjson.dumps(records).decode(), "found_at": now})
        if need:
            needed += 1
            notices.add(con, resident, "redress", {"decision_id": decision_id, "action": action,
                                                   "told": provider or principal, "was": said["decision"],
                                                   "now": holds["decision"], "occurred_at": at.isoformat(),
                                                   "records": [r["record"] for r in records]}, now)
    return needed


def _provider(con: duckdb.DuckDBPyConnection, principal: str, role: str) -> str | None:
    if role != "provider":
        return None
    rows = con.execute(q("redress.provider_of"), {"principal": principal}).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] is not None else principal.removeprefix("provider:")


EVER = 2**62
"""An ``until`` past every feed seq there will be."""


def listing(con: duckdb.DuckDBPyConnection, tz: str, now: datetime, *, provider: str | None = None,
            resident: int | None = None, after: int = -1, until: int = EVER) -> list[dict[str, Any]]:
    """The decisions that need redress, oldest found first, each with what was said, what holds now and
    the withdrawn records with their reasons (times in the city's zone, ``age_days`` since found), the
    feed seq it was told beside (``feed_seq``, narrowed to ``after < feed_seq <= until``) and whether
    the provider acknowledged it there."""
    out = []
    params = {"provider": provider, "resident": resident, "after": after, "until": until}
    for (decision_id, seq, key, principal, who, action, decided_at, said, holds, withdrawn, found_at, feed_seq,
         acknowledged) in con.execute(q("redress.listing"), params).fetchall():
        records = orjson.loads(withdrawn)
        for r in records:
            r["withdrawn_at"] = iso(datetime.fromisoformat(r["withdrawn_at"]), tz)
        out.append({"decision_id": decision_id, "seq": seq, "resident_id": ids.resident_id_from_key(key),
                    "provider": who, "principal": principal, "action": action, "decided_at": iso(decided_at, tz),
                    "said": orjson.loads(said), "holds": orjson.loads(holds), "withdrawn": records,
                    "found_at": iso(found_at, tz), "age_days": (now - found_at).days, "feed_seq": feed_seq,
                    "acknowledged": acknowledged})
    return out
