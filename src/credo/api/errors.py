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

from credo.errors import CredoError
from credo.ids import IdError

log = logging.getLogger("credo.api")


class TooManyRequests(CredoError):
    status = 429
    code = "rate_limited"


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


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the one error shape: a client (and
    the schema fuzzer, tests/test_fuzz_api.py) can rely on every answer being in the schema."""
    return {s: {"description": ERROR_STATUSES[s], "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for s in statuses}


HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def _credo(request: Request, exc: Exception) -> Response:
    """A library refusal without a more precise status (plain ``CredoError``, 400) is the caller's
    input being refused: 422, the status the API documents for invalid input."""
    assert isinstance(exc, CredoError)
    return error_response(422 if exc.status == 400 else exc.status, exc.code, exc.message, exc.details)


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
    return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "an unexpected error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(CredoError, _credo)
    app.add_exception_handler(IdError, _id)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
