"""Request and response shapes, as pydantic models: they document the API in its OpenAPI schema.

Small bodies are parsed with them. The two large ones are not: a record batch
and a manifest of 10,000 IDs are parsed with orjson and answered with bytes
(validating a big body with pydantic cost 6-7x on this machine); their models
only describe them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

MAX_MANIFEST = 10_000
RESIDENT_ID_PATTERN = r"^([0-9]{17}[0-9Xx]|[0-9]{15})$"
"""What the schema says a resident ID looks like (spec §2: 17 digits and a check character, a lower-case
x normalised; or a first-generation ID of 15 digits, spec §10): the one place to change when the IDs
accepted change. It only documents: ``credo.ids`` checks every ID and names the reason (length, date,
check character), which a pattern could not."""
RESIDENT_ID: dict[str, Any] = {"pattern": RESIDENT_ID_PATTERN}
"""``json_schema_extra`` of every resident ID a request carries (or an answer names, once checked)."""


class Ends(BaseModel):
    resolved_by: list[str] = Field(description="record types whose record would end this reason")
    expires_at: str | None = Field(description="when the reason ends by itself, ISO 8601")


class Reason(BaseModel):
    code: str = Field(examples=["list:dishonest_debtor", "grade:AAA"])
    effect: str
    records: list[dict[str, Any]] | None = Field(
        None, description="the records behind the reason; never shown to providers")
    ends: Ends
    jurisdiction: str | None = Field(None, description="the jurisdiction whose measure gives the reason (spec §9)")


class Receipt(BaseModel):
    """Where the decision's audit entry sits in the chain: keep it, and an auditor can check with
    ``credo audit verify --receipt SEQ:HASH`` that the log still holds that entry unchanged."""

    seq: int
    hash: str


class DecisionOut(BaseModel):
    decision_id: str
    resident_id: str = Field(json_schema_extra=RESIDENT_ID)
    action: str
    decision: Literal["allow", "deny"]
    benefits: list[str]
    reasons: list[Reason]
    policy: str
    policies: list[str] = Field([], description="every policy consulted: one per jurisdiction holding the resident")
    receipt: Receipt


class CheckIn(BaseModel):
    resident_id: str = Field(json_schema_extra=RESIDENT_ID)
    action: str
    purpose: str | None = None


class Manifest(BaseModel):
    """A flight manifest: one action for up to 10,000 residents."""

    action: str
    purpose: str | None = None
    resident_ids: list[Annotated[str, Field(json_schema_extra=RESIDENT_ID)]] = Field(
        max_length=MAX_MANIFEST, description="an ID that is not valid gets an error item, not the whole manifest")


class BatchItem(BaseModel):
    resident_id: str
    decision: Literal["allow", "deny"] | None = None
    decision_id: str | None = None
    benefits: list[str] | None = None
    reasons: list[Reason] | None = None
    receipt: Receipt | None = None
    error: dict[str, Any] | None = Field(None, description="instead of a decision: an invalid or unknown ID")


class BatchOut(BaseModel):
    action: str
    policy: str
    count: int
    allowed: int
    denied: int
    errors: int
    decisions: list[BatchItem] = Field(description="in the manifest's order")


class RowResult(BaseModel):
    line: int
    record_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = None
    field: str | None = None
    message: str | None = None


class BatchResultOut(BaseModel):
    source: str
    agency: str
    batch: int
    rows: int
    accepted: int
    duplicates: int
    rejected: int
    reasons: dict[str, int]
    results: list[RowResult]


class RecordRow(BaseModel):
    """One row of a record batch (a JSON array of these, or NDJSON)."""

    record_id: str
    type: str
    subject: str = Field(description="resident ID or phone")
    occurred_at: str
    resolves: str | None = None
    attributes: dict[str, Any] | None = None


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1)


class ObjectionIn(BaseModel):
    record: str = Field(description="AGENCY:RECORD_ID", examples=["court:c1"])
    reason: str = Field(min_length=1)
    resident_id: str | None = Field(None, description="a resident's own by default; an operator names it",
                                    json_schema_extra=RESIDENT_ID)


class ResolveIn(BaseModel):
    uphold: bool
    answer: str = Field(min_length=1)


class ConfirmIn(BaseModel):
    resident_id: str = Field(description="the candidate the item is about", json_schema_extra=RESIDENT_ID)
    reason: str = Field(min_length=1, description="why: kept with the judgement, shown to the resident")


class DeclineIn(BaseModel):
    reason: str = Field(min_length=1, description="why none of the candidates is the person")


class TokenIn(BaseModel):
    role: Literal["operator", "agency", "provider", "resident", "auditor"]
    agency: str | None = Field(None, description="an agency token's agency (one the policy knows); no other role's")
    provider: str | None = Field(None, description="a provider token's provider; no other role's")
    resident_id: str | None = Field(None, description="a resident token's resident; no other role's",
                                     json_schema_extra=RESIDENT_ID)
    expires: str | None = Field(None, description="when the token stops: a duration from now (12h, 30d) or an "
                                "ISO 8601 date or date-time (a bare date is midnight, city time); none: never",
                                examples=["30d", "2025-01-01"])
    actions: list[str] | None = Field(None, description="a provider token's only actions (the checks it may ask "
                                      "for, its feed); none: every action; no other role's",
                                      examples=[["rail.high_speed.book"]])


class BackupIn(BaseModel):
    dir: str = Field(min_length=1, description="a new or empty folder under the server's CREDO_BACKUP_DIR "
                     "(a relative path is taken from there)", examples=["2024-09-01"])


class BackupOut(BaseModel):
    format: int
    schema_version: int
    tables: list[str]
    counts: dict[str, int] = Field(description="rows per table in the snapshot")
    audit_head: list[int | str] = Field(description="[seq, hash] of the last audit entry in the snapshot")
    files: dict[str, dict[str, int | str]] = Field(description="file -> {bytes, sha256}: every file of the snapshot")
    signed_by: str | None = Field(description="the public key that signed the manifest (credo-manifest.sig); "
                                  "null when the server has no signing key")
    dir: str


class TokenOut(BaseModel):
    token: str = Field(description="shown only this once")
    id: int = Field(description="the token's number, to list and revoke it by")
    principal: str
    role: str
    expires_at: str | None = Field(description="ISO 8601; null: it does not expire")


class TokenInfo(BaseModel):
    id: int
    principal: str
    role: str
    agency: str | None
    provider: str | None
    resident_id: str | None
    actions: list[str] | None = Field(description="a provider's only actions; null: every action")
    created_at: str
    expires_at: str | None
    status: Literal["active", "expired", "revoked"]
    revoked_at: str | None
    revoked_by: str | None = Field(description="the principal who revoked it")


class TokenList(BaseModel):
    tokens: list[TokenInfo] = Field(description="every token ever made, by number; never a secret or its hash")


class TokenRevoked(BaseModel):
    id: int
    principal: str
    status: Literal["revoked"]


class FeedChange(BaseModel):
    seq: int = Field(description="the change's place in the feed: one more than the one before, never reused")
    resident_id: str = Field(json_schema_extra=RESIDENT_ID)
    action: str
    decision: Literal["allow", "deny"]
    benefits: list[str]
    reasons: list[str] = Field(description="the reason codes of every measure that applies", examples=[
        ["list:dishonest_debtor"]])
    effective_at: str = Field(description="when the change took effect, ISO 8601 (a grace end: its end)")
    cause: Literal["record", "revocation", "objection", "policy", "grace_ended", "expired"]
    policy: str


class FeedPage(BaseModel):
    provider: str | None
    actions: list[str] | None = Field(description="the actions read; null: every action")
    after: int
    next: int = Field(description="the after of the next page")
    head: int = Field(description="the feed's last seq")
    changes: list[FeedChange]


class FeedDecision(BaseModel):
    resident_id: str = Field(json_schema_extra=RESIDENT_ID)
    action: str
    decision: Literal["allow", "deny"]
    benefits: list[str]
    reasons: list[str]


class FeedSnapshot(BaseModel):
    provider: str | None
    actions: list[str] | None
    seq: int = Field(description="follow the feed from here: GET /v1/feed?after=seq")
    policy: str
    decisions: list[FeedDecision] = Field(description="every decision on the actions that is not a plain allow")


class FeedAckIn(BaseModel):
    seq: int = Field(ge=0, le=2**63 - 1, description="every change up to this one is acknowledged")


class FeedAcked(BaseModel):
    provider: str
    seq: int = Field(description="the acknowledged position (an acknowledgment never moves it back)")
    head: int


def body_doc(model: type[BaseModel], media: tuple[str, ...] = ("application/json",)) -> dict[str, Any]:
    """An ``openapi_extra`` documenting a request body that the route parses itself."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {m: {"schema": schema} for m in media}}}
