"""Errors carry their HTTP status and a stable code; fronts map them once."""

from __future__ import annotations

from typing import Any


class CredoError(Exception):
    """Base error: ``code`` is stable for programs, ``message`` is for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class NotFound(CredoError):
    status = 404
    code = "not_found"


class Forbidden(CredoError):
    status = 403
    code = "forbidden"


class Unauthorized(CredoError):
    status = 401
    code = "unauthorized"


class Conflict(CredoError):
    status = 409
    code = "conflict"


class Unavailable(CredoError):
    """The service cannot do this now, through no fault of the request (try again later)."""

    status = 503
    code = "unavailable"


class PolicyInvalid(CredoError):
    """A policy refused whole; ``details`` lists every problem with its path."""

    status = 422
    code = "policy_invalid"


class UnreadableFeed(CredoError):
    """A feed that could not be read at all (exit code 2 of ``credo ingest``)."""

    status = 400
    code = "unreadable_feed"
