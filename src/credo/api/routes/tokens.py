"""API tokens (spec §7): made, listed and revoked by an operator.

A token's secret is in the answer that makes it and nowhere else; the list
gives each token's number, whom it names and its state. A revocation holds in
every worker process before its answer returns (``credo.api.auth.CurrentTokens``),
for the token and every web session opened with it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from credo.api.auth import Allow
from credo.api.errors import documented
from credo.api.http import json
from credo.api.schemas import TokenIn, TokenList, TokenOut, TokenRevoked
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.asgi import runtime
from credo.times import iso

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])
CREATE = Allow(Op.CREATE_TOKEN)
LIST = Allow(Op.LIST_TOKENS)
REVOKE = Allow(Op.REVOKE_TOKEN)
# token numbers are INTEGER in the store: a larger one is invalid input (422), not a crash
Number = Annotated[int, Path(ge=1, le=2**31 - 1, description="the token's number (GET /v1/tokens)")]


@router.post("", status_code=201, response_model=TokenOut, openapi_extra=CREATE.openapi,
             responses=CREATE.responses)
def create_token(request: Request, who: Annotated[Principal, Depends(CREATE)], body: TokenIn) -> Response:
    """A new token bound to a role (and its agency, provider or resident), perhaps with an expiry; its
    secret is shown only in this answer."""
    rt = runtime(request)
    token, made = rt.hub.create_token(body.role, agency=body.agency, provider=body.provider,
                              resident_id=body.resident_id, expires=body.expires, actions=body.actions, who=who)
    rt.sync()
    return json({"token": token, "id": made.id, "principal": made.principal.name, "role": made.principal.role,
                 "expires_at": iso(made.expires_at, rt.index.policy.tz)}, status=201)


@router.get("", response_model=TokenList, openapi_extra=LIST.openapi, responses=LIST.responses)
def list_tokens(request: Request, who: Annotated[Principal, Depends(LIST)]) -> Response:
    """Every token by number with whom it names and its state (active, expired, revoked); no secrets."""
    return json({"tokens": runtime(request).hub.tokens()})


@router.delete("/{token_id}", response_model=TokenRevoked, openapi_extra=REVOKE.openapi,
               responses={**REVOKE.responses, **documented(404, 409)})
def revoke_token(request: Request, who: Annotated[Principal, Depends(REVOKE)], token_id: Number) -> Response:
    """Revoke a token: it and every web session opened with it are refused (401) from now on, by every
    worker process. Audited (``token.revoked``)."""
    named = runtime(request).hub.revoke_token(token_id, who)
    return json({"id": token_id, "principal": named.name, "status": "revoked"})
