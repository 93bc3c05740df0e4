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

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def _credo(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CredoError)
    return error_response(exc.status, exc.code, exc.message, exc.details)


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
    assert isinstance(exc, HTTPException)
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
