"""The providers' change feed (spec §8): a snapshot, the changes in order, the acknowledged position.

A provider that keeps its own list of whom to deny takes the snapshot once, then follows the feed
from its ``seq``, page by page, acknowledging as it applies them. It sees only its token's actions;
an operator reads any provider's feed (``?provider=``) or the whole of it. The rows are written by
the one rescoring path (``credo.providerfeed``); these routes only read them, through the hub.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from credo.api.auth import Allow
from credo.api.errors import documented
from credo.api.http import json
from credo.api.schemas import FeedAcked, FeedAckIn, FeedPage, FeedSnapshot
from credo.permissions import Op
from credo.principals import Principal
from credo.servicefeed import MAX_PAGE
from credo.serving.asgi import blocking, runtime

router = APIRouter(prefix="/v1/feed", tags=["feed"])
READ = Allow(Op.READ_FEED)
ACK = Allow(Op.ACK_FEED)
STATUS = Allow(Op.FEED_STATUS)
Reader = Annotated[Principal, Depends(READ)]
Provider = Annotated[str | None, Query(description="operators: whose feed (the actions of its tokens); none: all")]
After = Annotated[int, Query(ge=0, le=2**63 - 1, description="the last seq already applied")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="the most changes in the page")]


@router.get("/snapshot", response_model=FeedSnapshot, openapi_extra=READ.openapi,
            responses={**READ.responses, **documented(404)})
async def snapshot(request: Request, who: Reader, provider: Provider = None) -> Response:
    """Every resident whose decision on your actions is not a plain allow, and the seq to follow from."""
    rt = runtime(request)
    return json(await blocking(rt.hub.feed_snapshot, who, provider))


@router.get("", response_model=FeedPage, openapi_extra=READ.openapi, responses={**READ.responses, **documented(404)})
async def changes(request: Request, who: Reader, after: After = 0, limit: Limit = 1000,
                  provider: Provider = None) -> Response:
    """The changes of decisions on your actions after ``after``, in order; ask again from ``next``."""
    rt = runtime(request)
    page = await blocking(rt.hub.feed_page, who, after, limit, provider)
    return json({**page, "changes": orjson.Fragment(page["changes"])})  # JSON the database made


@router.post("/ack", response_model=FeedAcked, openapi_extra=ACK.openapi, responses=ACK.responses)
async def ack(request: Request, who: Annotated[Principal, Depends(ACK)], body: FeedAckIn) -> Response:
    """Acknowledge every change up to ``seq``: your position, kept (a change unacknowledged past the
    policy's ``correction_deadline`` is overdue)."""
    rt = runtime(request)
    return json(await blocking(rt.hub.feed_ack, who, body.seq))


@router.get("/status", openapi_extra=STATUS.openapi, responses=STATUS.responses)
async def status(request: Request, who: Annotated[Principal, Depends(STATUS)]) -> Response:
    """Each provider's acknowledged position, lag and overdue changes (``credo feed status``)."""
    rt = runtime(request)
    return json(await blocking(rt.hub.feed_status, who))
