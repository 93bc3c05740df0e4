"""Who may call what: a bearer token names a principal, each route names the operation it performs.

``Allow(op)`` is both the route's dependency and its documentation: the rule of ``op`` in
``credo.permissions`` decides the request and appears in the OpenAPI schema (``x-roles``,
``x-purpose-required-for``, ``x-operation``), so the two cannot drift apart. The dependency refuses
a role; the route's body then asks the same rule about what the call names (``rule.require``,
``rule.own_file``, ``rule.own_agency``: ownership, then purpose), and the service asks it again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from credo import permissions
from credo.api.errors import TooManyRequests, Unprocessable, documented
from credo.errors import Unauthorized
from credo.permissions import Op, RoleRefused
from credo.principals import Principal
from credo.serving.asgi import runtime
from credo.serving.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="A token from `credo token create` or POST /v1/tokens.")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


class Allow:
    """The roles a route admits, read from its operation's rule; as a dependency it returns the caller."""

    def __init__(self, op: Op) -> None:
        self.op = op
        self.rule = permissions.RULES[op]

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
        if not self.rule.allows(who.role):
            raise RoleRefused.of(who.role, self.rule, "call this endpoint")
        return who

    @property
    def openapi(self) -> dict[str, Any]:
        return {"x-roles": list(self.rule.roles), "x-purpose-required-for": list(self.rule.purpose),
                "x-operation": self.op.value}

    @property
    def responses(self) -> dict[int | str, dict[str, Any]]:
        """The errors any call of the route may get; routes add their own (404, 409, 413)."""
        return documented(401, 403, 422, 429)


def acting_agency(guard: Allow, who: Principal, agency: str | None) -> str:
    """The agency a call acts for: an agency's own (``rule.own_agency``); an operator names one."""
    acting = guard.rule.own_agency(who, agency)
    if not acting:
        raise Unprocessable("an operator names the agency (?agency=NAME)", code="agency_required",
                            details={"field": "agency"})
    return acting
