"""Decisions for providers (spec §4 "Decision"): one resident, or a manifest of up to 10,000.

The hot path never touches DuckDB: the resident is found in the decision index,
decided in memory, and the decision's audit entry joins the next group commit;
the response leaves only once that commit is done, with the entry's receipt
(its ``seq`` and ``hash`` in the chain). A provider sees the decision,
its reason codes and how each ends, never the records behind them or a score
(``credo.permissions``: the rules of ``Op.CHECK`` and ``Op.CHECK_BATCH``).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from credo import audit, decisions, ids
from credo.api.auth import Allow
from credo.api.errors import Unprocessable, documented
from credo.api.http import json, parse_json, read_body, when
from credo.api.schemas import MAX_MANIFEST, RESIDENT_ID, BatchOut, CheckIn, DecisionOut, Manifest, body_doc
from credo.decisions import Decision
from credo.index import micros
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.asgi import blocking, runtime
from credo.serving.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["decisions"])
DECIDE = Allow(Op.CHECK)
BATCH = Allow(Op.CHECK_BATCH)
Decider = Annotated[Principal, Depends(DECIDE)]
ResidentId = Annotated[str, Query(description="18-character resident ID", json_schema_extra=RESIDENT_ID)]
Action = Annotated[str, Query(description="an action the policy names")]
Purpose = Annotated[str | None, Query()]  # described from DECIDE (credo.api.openapi)
AsOf = Annotated[str | None, Query(description="T: decide as at this time (ISO 8601; default now)")]
KnownAt = Annotated[str | None, Query(description="K: from only what Credo held at this time (ISO 8601; "
                                                  "default now)")]




@router.get("/check", response_model=DecisionOut, openapi_extra=DECIDE.openapi,
             responses={**DECIDE.responses, **documented(404)})
async def check(request: Request, who: Decider, resident_id: ResidentId, action: Action,
                purpose: Purpose = None, as_of: AsOf = None, known_at: KnownAt = None) -> Response:
    """May this resident take this action now? One decision, audited before it is answered.

    A resident may ask about themself only. With ``as_of`` (T) or ``known_at`` (K), the decision as
    it would have been given at T from what Credo held at K, logged with the times asked about.
    """
    rt = runtime(request)
    if as_of is None and known_at is None:
        return await decide_one(rt, who, resident_id, action, purpose)
    DECIDE.rule.require(who, resident_id=resident_id, purpose=purpose)
    tz = rt.index.policy.tz
    t, k = when("as_of", as_of, tz), when("known_at", known_at, tz)
    d, receipt = await blocking(partial(rt.hub.check_receipted, ids.parse_resident_id(resident_id), action, who,
                                        purpose, as_of=t, known_at=k))
    rt.metrics.decided(d.decision)
    return json({**d.to_json(), "reasons": DECIDE.rule.reasons_for(who, d.reasons), "receipt": receipt})


@router.post("/check", response_model=DecisionOut, openapi_extra=DECIDE.openapi,
             responses={**DECIDE.responses, **documented(404)})
async def check_post(request: Request, who: Decider, body: CheckIn) -> Response:
    """The same decision, asked with a JSON body."""
    return await decide_one(runtime(request), who, body.resident_id, body.action, body.purpose)


async def decide_one(rt: Runtime, who: Principal, resident_id: str, action: str,
                     purpose: str | None) -> Response:
    return json(await answer(rt, who, purpose, await judge(rt, who, resident_id, action, purpose)))


Judged = tuple[datetime, int, Decision, int]
"""A decision made but not yet logged: when, whose (resident key), what, and the last write the
snapshot that made it reflects (``DecisionIndex.known``, logged with it for its replay)."""


async def judge(rt: Runtime, who: Principal, resident_id: str, action: str, purpose: str | None) -> Judged:
    """Every refusal of a check is raised here, before anything is logged: the fast path
    (``credo.api.fastcheck``) relies on that to hand a refused request to the framework."""
    DECIDE.rule.require(who, resident_id=resident_id, action=action, purpose=purpose)
    if rt.behind():
        await blocking(rt.sync)
    idx = rt.index  # one snapshot answers, or the one its refresh made
    decisions.require_action(idx.policy, action)
    now = idx.now()
    key, due, normalised = idx.locate(resident_id, now.date())
    if due <= micros(now):
        idx = await blocking(rt.refresh, np.array([key], np.int64))
    return now, key, idx.decide(key, action, now, normalised), idx.known


async def answer(rt: Runtime, who: Principal, purpose: str | None, judged: Judged) -> dict[str, Any]:
    """Log the decision (durably, with its group) and only then give it, with its receipt."""
    now, key, d, known = judged
    receipts = await rt.hub.log([audit.decision(now, who.name, who.role, key, d.action, d.decision, d.decision_id,
                                                purpose, d.policy, d.reasons, d.benefits, known=known)])
    rt.metrics.decided(d.decision)
    return {**d.to_json(), "reasons": DECIDE.rule.reasons_for(who, d.reasons), "receipt": receipts.receipt()}


@router.post("/check/batch", response_model=BatchOut, responses={**BATCH.responses, **documented(404, 413)},
             openapi_extra={**BATCH.openapi, **body_doc(Manifest)})
async def check_batch(request: Request, who: Annotated[Principal, Depends(BATCH)],
                      purpose: Purpose = None) -> Response:
    """A flight manifest: one action for up to 10,000 residents, each decision audited.

    Items come back in the manifest's order; an invalid or unregistered ID gets an
    ``error`` instead of a decision, and does not fail the others.
    """
    rt = runtime(request)
    action, purpose, resident_ids = _manifest(parse_json(await read_body(request, rt.max_body)), purpose)
    BATCH.rule.require(who, action=action, purpose=purpose)
    if rt.behind():
        await blocking(rt.sync)
    idx = rt.index  # one snapshot answers the whole manifest, or the one its refresh made
    decisions.require_action(idx.policy, action)
    now = idx.now()
    keys, ok, errors = idx.locate_many(resident_ids, now.date())
    good = keys[ok]
    stale = idx.stale(good, now)
    if len(stale):
        idx = await blocking(rt.refresh, stale)
    made = idx.decide_many(good, action, now)
    label = idx.policy.label
    good_keys = good.tolist()
    name, role, entry, known = who.name, who.role, audit.decision, idx.known
    receipts = await rt.hub.log([entry(now, name, role, k, action, verdict, did, purpose, label, reasons, benefits,
                                       known=known)
                                 for k, (did, verdict, benefits, reasons) in zip(good_keys, made, strict=True)])
    items: list[dict[str, Any] | None] = [None] * len(resident_ids)
    denied = 0
    seq = receipts.first
    for i, (did, verdict, benefits, reasons), h in zip(np.flatnonzero(ok).tolist(), made, receipts.hashes,
                                                      strict=True):
        denied += verdict == "deny"
        items[i] = {"resident_id": _normalised(resident_ids[i]), "decision": verdict, "decision_id": did,
                    "benefits": benefits, "reasons": BATCH.rule.reasons_for(who, reasons),
                    "receipt": {"seq": seq, "hash": h}}
        seq += 1
    for i, error in errors.items():
        items[i] = {"resident_id": resident_ids[i], "error": error}
    rt.metrics.batch_requests.inc()
    rt.metrics.decided("deny", denied)
    rt.metrics.decided("allow", len(made) - denied)
    return json({"action": action, "policy": label, "count": len(resident_ids), "allowed": len(made) - denied,
                 "denied": denied, "errors": len(errors), "decisions": items})


def _normalised(valid: str) -> str:
    """An ID that passed the check: as given when it is exactly 18 characters (an upper-case X is all
    normalising could change), else normalised again."""
    return valid if len(valid) == 18 and valid[17] != "x" else ids.normalise_resident_id(valid)


def _manifest(body: Any, purpose: str | None) -> tuple[str, str | None, list[str]]:
    if not isinstance(body, dict):
        raise Unprocessable("the manifest must be a JSON object with action and resident_ids")
    action, rids = body.get("action"), body.get("resident_ids")
    if not isinstance(action, str) or not isinstance(rids, list):
        raise Unprocessable("the manifest needs action (a string) and resident_ids (a list)",
                            details={"fields": ["action", "resident_ids"]})
    if len(rids) > MAX_MANIFEST:
        raise Unprocessable(f"a manifest holds at most {MAX_MANIFEST} IDs, got {len(rids)}",
                            code="manifest_too_large", details={"limit": MAX_MANIFEST})
    if not all(isinstance(r, str) for r in rids):
        raise Unprocessable("resident_ids must all be strings", details={"field": "resident_ids"})
    given = body.get("purpose", purpose)
    return action, given if isinstance(given, str) else purpose, rids
