"""Who may call what: a bearer token names a principal, each route names the roles it admits.

``Allow(...)`` is both the route's dependency and its documentation: the same
tuple of roles decides the request and appears in the OpenAPI schema
(``x-roles``), so the two cannot drift apart. Ownership (a resident's own file,
an agency's own records) is checked by the routes and again by the service.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from credo import ids
from credo.api.errors import TooManyRequests, Unprocessable, documented
from credo.errors import Forbidden, Unauthorized
from credo.principals import ROLES, Principal, a_role
from credo.serving.asgi import runtime
from credo.serving.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="A token from `credo token create` or POST /v1/tokens.")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


class Allow:
    """The roles a route admits; as a dependency it returns the caller's principal."""

    def __init__(self, *roles: str, purpose: tuple[str, ...] = ()) -> None:
        assert set(roles) <= set(ROLES) and set(purpose) <= set(roles)
        self.roles = roles
        self.purpose = purpose

    async def __call__(self, request: Request, credentials: Credentials) -> Principal:
        rt = runtime(request)
        who = self.principal(rt, None if credentials is None else credentials.credentials)
        if not rt.limiter.allow(who.name):
            raise TooManyRequests(f"more than {rt.limiter.rate:g} requests a second for {who.name}",
                                  retry_after=rt.limiter.retry_after(who.name))
        return who

    def principal(self, rt: Runtime, token: str | None) -> Principal:
        """The caller, if one of the admitted roles (the rate limit is the caller's next check)."""
        if token is None:
            raise Unauthorized("a bearer token is required")
        who = rt.authenticate(token)
        if who.role not in self.roles:
            raise Forbidden(f"{a_role(who.role)} may not call this endpoint",
                            details={"role": who.role, "allowed": list(self.roles)})
        return who

    @property
    def openapi(self) -> dict[str, Any]:
        return {"x-roles": list(self.roles), "x-purpose-required-for": list(self.purpose)}

    @property
    def responses(self) -> dict[int | str, dict[str, Any]]:
        """The errors any call of the route may get; routes add their own (404, 409, 413)."""
        return documented(401, 403, 422, 429)

    def need_purpose(self, who: Principal, purpose: str | None) -> None:
        """Providers and operators say why they read a file or ask for a decision (spec §6)."""
        if who.role in self.purpose and not (purpose and purpose.strip()):
            raise Unprocessable(f"{a_role(who.role)} must give a purpose", code="purpose_required",
                                details={"field": "purpose"})


def own_resident(who: Principal, resident_id: str) -> None:
    """A resident reaches only their own file: refused before anything reveals whether another exists."""
    if who.role == "resident" and ids.resident_key(ids.normalise_resident_id(resident_id)) != who.resident:
        raise Forbidden("a resident reaches only their own file")


def own_agency(who: Principal, agency: str | None) -> str:
    """The agency a call acts for: an agency's own; an operator names one."""
    if who.role == "agency":
        if agency is not None and agency != who.agency:
            raise Forbidden("an agency reaches only its own records")
        assert who.agency is not None
        return who.agency
    if not agency:
        raise Unprocessable("an operator names the agency (?agency=NAME)", code="agency_required",
                            details={"field": "agency"})
    return agency
