"""Identity review (spec §10): rows about a described person, held until a person judges the match.

The operator lists and judges every item; an agency its own rows only (another agency's item is
answered exactly as a missing one). Who may do what is ``credo.permissions`` (``list_review``,
``judge_review``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from credo.api.auth import Allow
from credo.api.errors import documented
from credo.api.http import json
from credo.api.schemas import ConfirmIn, DeclineIn
from credo.errors import NotFound
from credo.ids import parse_resident_id
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.asgi import runtime

router = APIRouter(prefix="/v1/review", tags=["review"])
LIST = Allow(Op.LIST_REVIEW)
JUDGE = Allow(Op.JUDGE_REVIEW)
# item numbers are INTEGER in the store: a larger one is invalid input (422), not a crash
Number = Annotated[int, Path(ge=1, le=2**31 - 1, description="the review item's number")]


@router.get("", openapi_extra=LIST.openapi, responses=LIST.responses)
def list_items(request: Request, who: Annotated[Principal, Depends(LIST)],
               purpose: Annotated[str | None, Query(description="why (kept in the audit log)")] = None) -> Response:
    """Items, pending first (overdue before the rest), each with the row as received and its ranked
    candidates: match probability and the comparison levels behind it."""
    return json({"items": runtime(request).hub.review_items(who, purpose=purpose)})


@router.get("/{number}", openapi_extra=LIST.openapi, responses={**LIST.responses, **documented(404)})
def one_item(request: Request, who: Annotated[Principal, Depends(LIST)], number: Number) -> Response:
    """One item with its candidates and its judgement, if any."""
    items = runtime(request).hub.review_items(who, item=number)
    if not items:
        raise NotFound(f"no review item {number}", code="unknown_review_item")
    return json(items[0])


@router.post("/{number}/confirm", openapi_extra=JUDGE.openapi,
             responses={**JUDGE.responses, **documented(404, 409)})
def confirm(request: Request, who: Annotated[Principal, Depends(JUDGE)], number: Number,
            body: ConfirmIn) -> Response:
    """Confirm that the item is about one of its candidates: its record enters the ledger for that
    resident (known from now; ``occurred_at`` as given) and counts."""
    rt = runtime(request)
    item = rt.hub.confirm_review(number, parse_resident_id(body.resident_id), body.reason, who)
    rt.sync()
    return json(item)


@router.post("/{number}/decline", openapi_extra=JUDGE.openapi,
             responses={**JUDGE.responses, **documented(404, 409)})
def decline(request: Request, who: Annotated[Principal, Depends(JUDGE)], number: Number,
            body: DeclineIn) -> Response:
    """None of the candidates is the person: the row becomes a reject ``identity_declined``."""
    rt = runtime(request)
    item = rt.hub.decline_review(number, body.reason, who)
    rt.sync()
    return json(item)
