"""Small helpers shared by the routes: JSON bytes out, bounded bodies in, blocking work off the loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import Request
from starlette.responses import Response

from credo.api.errors import NO_STORE, PayloadTooLarge, Unprocessable
from credo.times import iso


def json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Every JSON answer of the API: never stored by a cache (``NO_STORE``)."""
    return Response(dumps(value), status_code=status, media_type="application/json",
                    headers={**NO_STORE, **headers} if headers else NO_STORE)


def dumps(value: Any) -> bytes:
    """orjson bytes: several times cheaper than FastAPI's encoder for big bodies."""
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (CREDO_MAX_BODY) before it is all read."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", details={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", details={"limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Unprocessable(f"the body is not valid JSON: {exc}", code="bad_json") from None


def localise(row: dict[str, Any], tz: str) -> dict[str, Any]:
    """Datetimes as ISO 8601 in city time with its offset, as everywhere else in Credo's output."""
    return {k: iso(v, tz) if isinstance(v, datetime) else v for k, v in row.items()}


def when(name: str, text: str | None, tz: str) -> datetime | None:
    """A time query parameter (``as_of``, ``known_at``) in city time, or None when not given; an
    unreadable one is a 422 naming the parameter."""
    from credo.times import parse_when

    if not text:
        return None
    try:
        return parse_when(text, tz)
    except ValueError as exc:
        raise Unprocessable(f"{name}: {text!r} is not an ISO 8601 date or date-time ({exc})",
                            code="bad_time", details={"field": name}) from None
