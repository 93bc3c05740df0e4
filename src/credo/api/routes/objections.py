"""Objections (spec §5): a resident contests a record; the record's agency upholds or rejects it.

A resident opens and lists their own; an agency lists and answers those
against its records; an operator sees and may answer all (overdue first).
What a withdrawal made wrong is listed at ``/v1/redress`` (spec §8).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from credo.api.auth import Allow
from credo.api.errors import Unprocessable, documented
from credo.api.http import json
from credo.api.schemas import RESIDENT_ID, ObjectionIn, ResolveIn
from credo.ids import parse_resident_id
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.asgi import runtime

router = APIRouter(prefix="/v1/objections", tags=["objections"])
redress_router = APIRouter(prefix="/v1/redress", tags=["objections"])
OPEN = Allow(Op.OPEN_OBJECTION)
REDRESS = Allow(Op.LIST_REDRESS)
LIST = Allow(Op.LIST_OBJECTIONS)
RESOLVE = Allow(Op.RESOLVE_OBJECTION)
# objection numbers are INTEGER in the store: a larger one is invalid input (422), not a crash
Number = Annotated[int, Path(ge=1, le=2**31 - 1, description="the objection's number")]


@router.post("", status_code=201, openapi_extra=OPEN.openapi,
             responses={**OPEN.responses, **documented(404, 409)})
def open_objection(request: Request, who: Annotated[Principal, Depends(OPEN)], body: ObjectionIn) -> Response:
    """Contest one of your records, with a reason; under ``disputed: suspend`` it stops counting meanwhile."""
    rt = runtime(request)
    resident_id = OPEN.rule.own_file(who, body.resident_id)
    if not resident_id:
        raise Unprocessable("an operator names the resident (resident_id)", details={"field": "resident_id"})
    number = rt.hub.open_objection(parse_resident_id(resident_id), body.record, body.reason, who)
    rt.sync()
    return json({"id": number, "record": body.record, "status": "open"}, status=201)


@router.get("", openapi_extra=LIST.openapi, responses={**LIST.responses, **documented(404)})
def list_objections(request: Request, who: Annotated[Principal, Depends(LIST)],
                    overdue: Annotated[bool, Query(description="only those past the deadline")] = False,
                    resident_id: Annotated[str | None, Query(description="operators: one resident's",
                                                             json_schema_extra=RESIDENT_ID)] = None
                    ) -> Response:
    """Objections with every step's time: a resident's own, an agency's, or (operator) all."""
    rt = runtime(request)
    agency = LIST.rule.own_agency(who, None)
    resident_id = LIST.rule.own_file(who, resident_id)
    rows = rt.hub.objections(resident_id=parse_resident_id(resident_id) if resident_id else None, agency=agency,
                             overdue=overdue)
    return json({"objections": rows})


@router.post("/{number}/resolve", openapi_extra=RESOLVE.openapi,
             responses={**RESOLVE.responses, **documented(404, 409)})
def resolve(request: Request, who: Annotated[Principal, Depends(RESOLVE)], number: Number,
            body: ResolveIn) -> Response:
    """Uphold (the record is revoked) or reject (with an answer) an open objection against your record."""
    rt = runtime(request)
    rt.hub.resolve_objection(number, uphold=body.uphold, answer=body.answer, who=who)
    rt.sync()
    return json({"id": number, "status": "upheld" if body.uphold else "rejected"})


@redress_router.get("", openapi_extra=REDRESS.openapi, responses={**REDRESS.responses, **documented(404)})
def list_redress(request: Request, who: Annotated[Principal, Depends(REDRESS)],
                 provider: Annotated[str | None, Query(description="operators: what one provider was told")] = None,
                 resident_id: Annotated[str | None, Query(description="operators and providers: one resident's",
                                                          json_schema_extra=RESIDENT_ID)] = None) -> Response:
    """Logged decisions that a withdrawn record made worse for the resident (spec §8): what was said, what
    holds now and the withdrawn records with their reasons. A provider sees what it was told; a resident
    their own; an operator all."""
    rt = runtime(request)
    items = rt.hub.redress(who=who, provider=provider,
                           resident_id=parse_resident_id(resident_id) if resident_id else None)
    return json({"redress": items})
