"""A resident's file: standing, explanation, records, notices (spec §1: own file only, or an operator).

Each read is audited by the service with the caller and the purpose. An agency
reads a resident's records too, but only its own; nobody else reads a file.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from credo.api.auth import Allow, own_resident
from credo.api.errors import documented
from credo.api.http import json, localise
from credo.api.schemas import RESIDENT_ID
from credo.principals import Principal
from credo.serving.asgi import runtime

router = APIRouter(prefix="/v1/residents", tags=["residents"])
FILE = Allow("resident", "operator", purpose=("operator",))
RECORDS = Allow("resident", "agency", "operator", purpose=("operator",))
FILE_ERRORS = {**FILE.responses, **documented(404)}
RECORDS_ERRORS = {**RECORDS.responses, **documented(404)}
Purpose = Annotated[str | None, Query()]  # described from FILE and RECORDS (credo.api.openapi)
ResidentId = Annotated[str, Path(description="18-character resident ID", json_schema_extra=RESIDENT_ID)]
Reader = Annotated[Principal, Depends(FILE)]
RecordsReader = Annotated[Principal, Depends(RECORDS)]


@router.get("/{resident_id}/standing", openapi_extra=FILE.openapi, responses=FILE_ERRORS)
def standing(request: Request, who: Reader, resident_id: ResidentId, purpose: Purpose = None) -> Response:
    """Score, grade, lists in force, pending lists and when the standing next changes by itself."""
    FILE.need_purpose(who, purpose)
    own_resident(who, resident_id)
    rt = runtime(request)
    found = rt.hub.standing(resident_id, who=who, purpose=purpose)
    return json(found.to_json(rt.index.policy.tz))


@router.get("/{resident_id}/explanation", openapi_extra=FILE.openapi, responses=FILE_ERRORS)
def explanation(request: Request, who: Reader, resident_id: ResidentId, purpose: Purpose = None) -> Response:
    """The standing plus every record: the points it adds after caps, or why it adds none."""
    FILE.need_purpose(who, purpose)
    own_resident(who, resident_id)
    return json(runtime(request).hub.explain(resident_id, who=who, purpose=purpose))


@router.get("/{resident_id}/records", openapi_extra=RECORDS.openapi, responses=RECORDS_ERRORS)
def records(request: Request, who: RecordsReader, resident_id: ResidentId, purpose: Purpose = None) -> Response:
    """Records as stored, with revocations and their reasons; an agency sees only its own."""
    RECORDS.need_purpose(who, purpose)
    own_resident(who, resident_id)
    rt = runtime(request)
    rows = rt.hub.records(resident_id, who=who, purpose=purpose)
    return json({"resident_id": resident_id, "records": [localise(r, rt.index.policy.tz) for r in rows]})


@router.get("/{resident_id}/notices", openapi_extra=FILE.openapi, responses=FILE_ERRORS)
def notices(request: Request, who: Reader, resident_id: ResidentId, purpose: Purpose = None) -> Response:
    """What the resident has been told: records added, lists pending and in force, objections."""
    FILE.need_purpose(who, purpose)
    own_resident(who, resident_id)
    return json({"resident_id": resident_id,
                 "notices": runtime(request).hub.notices(resident_id, who=who)})
