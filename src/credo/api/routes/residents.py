"""A resident's file: standing, explanation, records, notices (spec §1: own file only, or an operator).

Each read is audited by the service with the caller and the purpose. The path's ID is parsed here,
once its caller may ask (``credo.ids.parse_resident_id``), and handed down parsed. An agency
reads a resident's records too, but only its own; nobody else reads a file.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from credo.api.auth import Allow
from credo.api.errors import documented
from credo.api.http import json, localise, when
from credo.api.schemas import RESIDENT_ID
from credo.ids import parse_resident_id
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.asgi import runtime

router = APIRouter(prefix="/v1/residents", tags=["residents"])
STANDING = Allow(Op.READ_STANDING)
EXPLANATION = Allow(Op.READ_EXPLANATION)
RECORDS = Allow(Op.READ_RECORDS)
NOTICES = Allow(Op.READ_NOTICES)
ERRORS = {**STANDING.responses, **documented(404)}
Purpose = Annotated[str | None, Query()]  # described from each route's rule (credo.api.openapi)
AsOf = Annotated[str | None, Query(description="T: the time the standing is about (ISO 8601; default now)")]
KnownAt = Annotated[str | None, Query(description="K: count only what Credo held at this time (ISO 8601; "
                                                  "default now)")]
ResidentId = Annotated[str, Path(description="18-character resident ID", json_schema_extra=RESIDENT_ID)]


@router.get("/{resident_id}/standing", openapi_extra=STANDING.openapi, responses=ERRORS)
def standing(request: Request, who: Annotated[Principal, Depends(STANDING)], resident_id: ResidentId,
             purpose: Purpose = None, as_of: AsOf = None, known_at: KnownAt = None) -> Response:
    """Score, grade, lists in force, pending lists and when the standing next changes by itself;
    at T = ``as_of``, from what Credo held at K = ``known_at`` (both default to now)."""
    STANDING.rule.require(who, resident_id=resident_id, purpose=purpose)
    rt = runtime(request)
    tz = rt.index.policy.tz
    found = rt.hub.standing(parse_resident_id(resident_id), who=who, purpose=purpose,
                            as_of=when("as_of", as_of, tz), known_at=when("known_at", known_at, tz))
    return json(found.to_json(tz))


@router.get("/{resident_id}/explanation", openapi_extra=EXPLANATION.openapi, responses=ERRORS)
def explanation(request: Request, who: Annotated[Principal, Depends(EXPLANATION)], resident_id: ResidentId,
                purpose: Purpose = None, as_of: AsOf = None, known_at: KnownAt = None) -> Response:
    """The standing plus every record: the points it adds after caps, or why it adds none; at T =
    ``as_of``, from what Credo held at K = ``known_at`` (both default to now)."""
    EXPLANATION.rule.require(who, resident_id=resident_id, purpose=purpose)
    rt = runtime(request)
    tz = rt.index.policy.tz
    return json(rt.hub.explain(parse_resident_id(resident_id), who=who, purpose=purpose,
                               as_of=when("as_of", as_of, tz), known_at=when("known_at", known_at, tz)))


@router.get("/{resident_id}/records", openapi_extra=RECORDS.openapi, responses=ERRORS)
def records(request: Request, who: Annotated[Principal, Depends(RECORDS)], resident_id: ResidentId,
            purpose: Purpose = None) -> Response:
    """Records as stored, with revocations and their reasons; an agency sees only its own."""
    RECORDS.rule.require(who, resident_id=resident_id, purpose=purpose)
    rt = runtime(request)
    rows = rt.hub.records(parse_resident_id(resident_id), who=who, purpose=purpose)
    return json({"resident_id": resident_id, "records": [localise(r, rt.index.policy.tz) for r in rows]})


@router.get("/{resident_id}/notices", openapi_extra=NOTICES.openapi, responses=ERRORS)
def notices(request: Request, who: Annotated[Principal, Depends(NOTICES)], resident_id: ResidentId,
            purpose: Purpose = None) -> Response:
    """What the resident has been told: records added, lists pending and in force, objections."""
    NOTICES.rule.require(who, resident_id=resident_id, purpose=purpose)
    return json({"resident_id": resident_id,
                 "notices": runtime(request).hub.notices(parse_resident_id(resident_id), who=who)})
