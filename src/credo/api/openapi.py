"""What the OpenAPI schema says beyond FastAPI's own: who may call each operation, and who must say why.

Both come from the route's ``Allow`` (``credo.api.auth``), which reads its operation's rule in
``credo.permissions``, the rule that also decides the request, so the schema cannot drift from what
the server does: the roles go into each operation's description
(and ``x-roles``), and the roles that must give a purpose into the description of the ``purpose``
parameter or body field (and its ``x-required-for``). OpenAPI has no "required for some callers", so
``purpose`` stays optional in the schema and its description says for whom it is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from credo.principals import a_role


def install(app: FastAPI, routers: list[APIRouter]) -> None:
    document_roles(routers)
    build: Callable[[], dict[str, Any]] = app.openapi

    def schema() -> dict[str, Any]:
        return describe_purpose(build())  # FastAPI builds once and keeps it; describing again is a no-op

    app.openapi = schema  # type: ignore[method-assign]


def document_roles(routers: list[APIRouter]) -> None:
    """Say in each operation's description which roles may call it (from its ``Allow``); idempotent,
    since the routers are module-level and every worker process builds an app."""
    for router in routers:
        for route in router.routes:
            if not (isinstance(route, APIRoute) and route.openapi_extra and "x-roles" in route.openapi_extra):
                continue
            if "**Roles:**" in (route.description or ""):
                continue
            roles = ", ".join(route.openapi_extra["x-roles"])
            purpose = route.openapi_extra.get("x-purpose-required-for") or []
            note = f"\n\n**Roles:** {roles}." + (f" A purpose is required from: {', '.join(purpose)}."
                                                  if purpose else "")
            route.description = (route.description or "") + note


def purpose_text(roles: list[str], *, both: bool) -> str:
    """The description of ``purpose`` for an operation that requires it from ``roles``."""
    who = " or ".join(a_role(r) for r in roles)
    where = " Give it in the query or in the body." if both else ""
    return (f"Why you ask: kept in the audit log, which the resident reads. Required when the caller is {who} "
            f"(422 purpose_required without it); other callers may leave it out.{where}")


def describe_purpose(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe ``purpose`` (query parameter, JSON body field) in every operation that requires it."""
    for operation in (op for item in schema["paths"].values() for op in item.values()):
        roles = operation.get("x-purpose-required-for")
        if not roles:
            continue
        fields = [p for p in operation.get("parameters", []) if p["name"] == "purpose" and p["in"] == "query"]
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            if "$ref" in body:
                body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
            fields += [body["properties"]["purpose"]] if "purpose" in body.get("properties", {}) else []
        assert fields, f"{operation['operationId']} requires a purpose but takes none"
        for field in fields:
            field["description"] = purpose_text(roles, both=len(fields) > 1)
            field["x-required-for"] = roles
    return schema
