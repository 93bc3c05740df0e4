"""Agencies' records (spec §3): batches through the same path as ``credo ingest``, revocations, rejects.

The agency is always the token's, never the payload's. A batch is a JSON array
of row objects or NDJSON, one transaction like a file; the answer says what
became of every row, with the reason for each rejected one.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from credo.api.auth import Allow, acting_agency
from credo.api.errors import Unprocessable, documented
from credo.api.http import json, read_body
from credo.api.schemas import BatchResultOut, RecordRow, RevokeIn
from credo.ids import resident_id_from_key
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.asgi import blocking, runtime
from credo.serving.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["records"])
SUBMIT = Allow(Op.SUBMIT_RECORDS)
REVOKE = Allow(Op.REVOKE)
REJECTS = Allow(Op.READ_REJECTS)
NDJSON = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
NDJSON_HINT = "(NDJSON is sent with Content-Type: application/x-ndjson)"
_ROWS_DOC = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "array", "items": RecordRow.model_json_schema()}} for media in
    ("application/json", *NDJSON)}}}


@router.post("/records", response_model=BatchResultOut, responses={**SUBMIT.responses, **documented(413)},
             openapi_extra={**SUBMIT.openapi, **_ROWS_DOC})
async def submit(request: Request, who: Annotated[Principal, Depends(SUBMIT)]) -> Response:
    """Submit a batch of records (population and telecom agencies send their own feed's rows).

    One transaction: all of it lands, with the rescoring it causes, or none of it.
    """
    rt = runtime(request)
    rows = _rows(await read_body(request, rt.max_body), request.headers.get("content-type", "").lower())
    source = f"api request {secrets.token_hex(6)} by {who.name}"
    out = await blocking(_ingest, rt, who, rows, source)
    return json(out, headers={"X-Credo-Source": source})


def _ingest(rt: Runtime, who: Principal, rows: list[Any], source: str) -> dict[str, Any]:
    assert who.agency is not None  # SUBMIT admits agencies, and an agency's token names it
    result = rt.hub.ingest_rows(who.agency, rows, who, source)
    record_ids = [None if not isinstance(r, dict) or r.get("record_id") is None else str(r["record_id"])
                  for r in rows]
    results = rt.hub.batch_rows(result, record_ids)
    rt.sync()
    return {**result.to_json(), "results": results}


def _rows(body: bytes, content_type: str) -> list[Any]:
    """NDJSON when the Content-Type says so (a line that is not JSON is kept as a malformed row, not
    dropped); any other body is a JSON array of rows, and anything else (an object, a number) is refused
    whole, as a file that could not be read would be, rather than stored as one malformed row."""
    text = body.strip()
    if not text:
        raise Unprocessable("the batch is empty", code="empty_batch")
    if not content_type.startswith(NDJSON):
        try:
            rows = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise Unprocessable(f"the body is not a valid JSON array: {exc} {NDJSON_HINT}", code="bad_json",
                                details={"field": "body"}) from None
        if not isinstance(rows, list):
            raise Unprocessable(f"the body must be a JSON array of rows, not {_kind(rows)} {NDJSON_HINT}",
                                code="not_an_array", details={"field": "body"})
        return rows
    out: list[Any] = []
    for line in text.split(b"\n"):
        if line.strip():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                out.append(line.decode("utf-8", "replace"))
    return out


def _kind(value: Any) -> str:
    return {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


@router.post("/records/{record_id:path}/revoke", openapi_extra=REVOKE.openapi,
             responses={**REVOKE.responses, **documented(404, 409)})
def revoke(request: Request, who: Annotated[Principal, Depends(REVOKE)], record_id: str,
           body: RevokeIn,
           agency: Annotated[str | None, Query(description="the record's agency: operators only")] = None
           ) -> Response:
    """Revoke a record with a reason: it stops counting at once and stays visible with the reason."""
    rt = runtime(request)
    acting = acting_agency(REVOKE, who, agency)
    resident = rt.hub.revoke(acting, record_id, body.reason, who)
    rt.sync()
    return json({"record": f"{acting}:{record_id}", "revoked": True,
                 "resident_id": resident_id_from_key(resident)})


@router.get("/rejects", openapi_extra=REJECTS.openapi, responses=REJECTS.responses)
def rejects(request: Request, who: Annotated[Principal, Depends(REJECTS)],
            agency: Annotated[str | None, Query(description="operators: one agency's")] = None,
            limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
            after: Annotated[str | None, Query(description="the `next` marker of the previous page")] = None
            ) -> Response:
    """Rejected rows with their source, the row as received, the reason, the record they name and
    whether it was accepted later; a page at a time, with the total and the next page's marker. An
    agency sees its own."""
    rt = runtime(request)
    scope = REJECTS.rule.own_agency(who, agency) or None
    return json(rt.hub.rejects(scope, limit, after))
