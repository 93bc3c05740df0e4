"""The audit log over HTTP (spec §6): a resident's own accesses; everything for auditors and operators.

Reading the log is itself logged. Paging is by sequence number (``after``), so
a page never shifts while the log grows.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from credo.api.auth import Allow
from credo.api.errors import Unprocessable, documented
from credo.api.http import json, localise
from credo.api.schemas import RESIDENT_ID
from credo.checkpoints import parse_receipt
from credo.ids import named_by_id
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.asgi import runtime

router = APIRouter(prefix="/v1/audit", tags=["audit"])
READ = Allow(Op.READ_AUDIT)
VERIFY = Allow(Op.VERIFY_AUDIT)
# bounded to BIGINT, the column it is compared with: a larger number is invalid input, not a crash
After = Annotated[int, Query(ge=0, le=2**63 - 1, description="the last seq already seen")]
Limit = Annotated[int, Query(ge=1, le=1000)]
About = Annotated[str | None, Query(description="only entries about this resident", json_schema_extra=RESIDENT_ID)]
Purpose = Annotated[str | None, Query(description="why you read the log: kept in the audit entry of this read")]


@router.get("", openapi_extra=READ.openapi, responses={**READ.responses, **documented(404)})
def entries(request: Request, who: Annotated[Principal, Depends(READ)], after: After = 0, limit: Limit = 100,
            resident_id: About = None, purpose: Purpose = None) -> Response:
    """Entries oldest first: who, role, what, the decision and its id, the purpose, the policy, the chain."""
    rt = runtime(request)
    resident_id = READ.rule.own_file(who, resident_id)
    rows = rt.hub.audit_page(who, resident_id=resident_id, after=after, limit=limit, purpose=purpose)
    tz = rt.index.policy.tz
    out = [localise(named_by_id(r), tz)
           for r in rows]
    return json({"entries": out, "next_after": rows[-1]["seq"] if len(rows) == limit else None})


@router.get("/verify", openapi_extra=VERIFY.openapi, responses={**VERIFY.responses, **documented(422)})
def verify(request: Request, who: Annotated[Principal, Depends(VERIFY)],
           receipt: Annotated[list[str] | None, Query(description="SEQ:HASH of a decision's receipt")] = None
           ) -> Response:
    """Walk the hash chain, check it against every signed checkpoint and the receipts given; name the
    first entry that was altered, removed or moved."""
    try:
        receipts = [parse_receipt(r) for r in receipt or []]
    except ValueError as exc:
        raise Unprocessable(str(exc), code="bad_receipt", details={"field": "receipt"}) from None
    return json(runtime(request).hub.verify_audit(receipts=receipts).to_json())
