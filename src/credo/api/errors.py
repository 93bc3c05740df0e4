"""Every error leaves the API once, here, as ``{"error": {"code", "message", "details"}}``.

Library errors carry their HTTP status and a stable code (``credo.errors``);
identity errors name the field and the reason; request validation, unknown
routes and anything unexpected get the same shape, so a client handles one.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from credo.errors import CredoError
from credo.ids import IdError

log = logging.getLogger("credo.api")


class TooManyRequests(CredoError):
    """Past CREDO_RATE_LIMIT; ``retry_after`` (whole seconds) goes out as the ``Retry-After`` header."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class PayloadTooLarge(CredoError):
    status = 413
    code = "payload_too_large"


class Unprocessable(CredoError):
    status = 422
    code = "invalid_request"


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        "required": ["code", "message", "details"]}},
    "required": ["error"],
}

ERROR_STATUSES: dict[int, str] = {
    401: "no or unknown token",
    403: "the role may not call this, or not for this subject",
    404: "an unknown resident, action, record, objection or token",
    409: "refused by the current state (already revoked, an objection open or closed)",
    413: "the body is larger than CREDO_MAX_BODY",
    422: "invalid input",
    429: "more requests a second than CREDO_RATE_LIMIT for this token",
}
"""Every error status the API answers with, as its OpenAPI schema documents it."""

RETRY_AFTER = {"Retry-After": {"description": "whole seconds until the token may ask again", "required": True,
                               "schema": {"type": "integer", "minimum": 1}}}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the one error shape: a client (and
    the schema fuzzer, tests/test_fuzz_api.py) can rely on every answer being in the schema."""
    return {s: {"description": ERROR_STATUSES[s], "content": {"application/json": {"schema": ERROR_SCHEMA}},
                **({"headers": RETRY_AFTER} if s == 429 else {})} for s in statuses}


NO_STORE = {"Cache-Control": "no-store"}
"""On every answer of the API, errors included: most name a resident, a record or a decision, and a
shared cache (or the browser's) must keep none of them; the health answers must be fresh too. Public
pages (the OpenAPI schema, /docs and its assets) and /metrics (aggregates) do not carry it."""

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The one error shape; never stored by a cache (an error may name a resident or a record)."""
    extra = {**NO_STORE, **(headers or {})}
    if status == 401:
        extra["WWW-Authenticate"] = "Bearer"
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=extra)


async def _credo(request: Request, exc: Exception) -> Response:
    """A library refusal without a more precise status (plain ``CredoError``, 400) is the caller's
    input being refused: 422, the status the API documents for invalid input. A library error of
    status 500 is no refusal but the server's own fault, answered as any unexpected error is."""
    assert isinstance(exc, CredoError)
    if exc.status == 500:  # a fault of the server (an engine step that failed): logged, its SQL not shown
        return await _unexpected(request, exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    return error_response(422 if exc.status == 400 else exc.status, exc.code, exc.message, exc.details, headers)


async def _id(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdError)
    return error_response(422, exc.reason, str(exc), {"field": exc.field})


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
              for e in exc.errors()]
    where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
    return error_response(422, "invalid_request", f"the request is not valid: {where}", errors)


async def _http(request: Request, exc: Exception) -> Response:
    """Starlette's own errors; its 400 (a body that is not JSON, or not UTF-8) is invalid input, 422."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:
        return error_response(422, "bad_json", f"the body could not be read: {exc.detail}")
    headers = {"Allow": allowed_methods(request)} if exc.status_code == 405 else None
    return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail),
                          headers=headers)


def allowed_methods(request: Request) -> str:
    """The ``Allow`` of a 405: every method some route answers on this path. Starlette would name only
    the first route's, and GET and POST /v1/check (say) are two routes; each method is tried against
    the app's routes, whatever shape FastAPI gives its included routers. No route explains a 405 from
    inside a mount: the only one is the static files of /docs, which answer GET and HEAD."""
    routes = request.app.router.routes
    methods = [m for m in METHODS if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)]
    return ", ".join(methods) or "GET, HEAD"


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "an unexpected error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(CredoError, _credo)
    app.add_exception_handler(IdError, _id)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
