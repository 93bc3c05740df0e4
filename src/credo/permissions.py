"""Who may do what, as data (spec §1, §6, §7): one rule per operation, read by every front and the library.

Each operation (``Op``) has one ``Rule``: the roles that may ask for it; the roles that must say why
(a purpose, kept in the audit entry the resident reads); the roles bound to their own subject (a
resident to their own file, an agency to its own records); and, where a role is shown less than the
others, what it is shown of a decision's reasons. The API's route guards and their OpenAPI ``x-roles``
(``credo.api.auth.Allow``), the fast check (through the check's guard), the web pages (``credo.web``)
and the library (``credo.service``, a second line should a front forget) all read ``RULES``;
docs/api.md shows the table and tests/test_permissions.py holds it, the schema and the live server's
answers together.

The CLI is the operator by construction (``credo.principals.OPERATOR_CLI``: it holds the database
file), so it meets these rules only as the operator.

Precedence: when a request fails several checks, the first in this order decides, and nothing
later can admit what an earlier check refused (deny beats allow).

1. Who (401): no token, or an unknown, revoked or expired one (the fronts, ``credo.principals``).
2. Role (403 ``forbidden``, ``RoleRefused``): the caller's role is not among the rule's.
3. The rate limit (429, the API and pages only): counted once the role is admitted.
4. Ownership (403 ``forbidden``, ``NotYours``): a resident names a file not their own, an agency
   another agency, a provider an action outside its token's actions (even one the policy does not
   name: the token alone decides) or another provider's feed. Decided from the ID (and the token)
   alone, before any file is looked up, so that the refusal never says whether someone else exists
   (an ID that is no ID at all is a 422: it names nobody).
5. Purpose (422 ``purpose_required``, ``PurposeRequired``): a role that must say why said nothing.
   After ownership: a caller who may never have the answer is not told how to fix the request.
6. The operation's own refusals: 404 for what lies outside the caller's scope (another agency's
   objection is answered exactly as a missing one, so an agency learns nothing of others), 409, ...

An operator is bound to no subject (spec §1: everything, every access audited); a provider asks
about anyone, and is shown a decision, its reason codes, effects and how each ends, never the
records behind a reason (a decision holds no score at all: ``credo.decisions``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from credo import ids
from credo.errors import CredoError, Forbidden
from credo.principals import ROLES, Principal, a_role


class Op(enum.StrEnum):
    """Every operation someone may be refused; the value names it in the OpenAPI schema (``x-operation``)."""

    READ_STANDING = "read_standing"
    READ_EXPLANATION = "read_explanation"
    READ_RECORDS = "read_records"
    READ_NOTICES = "read_notices"
    READ_ACCESSES = "read_accesses"
    CHECK = "check"
    CHECK_BATCH = "check_batch"
    SUBMIT_RECORDS = "submit_records"
    REVOKE = "revoke"
    READ_REJECTS = "read_rejects"
    OPEN_OBJECTION = "open_objection"
    LIST_OBJECTIONS = "list_objections"
    RESOLVE_OBJECTION = "resolve_objection"
    READ_AUDIT = "read_audit"
    VERIFY_AUDIT = "verify_audit"
    READ_POLICY = "read_policy"
    APPLY_POLICY = "apply_policy"
    CREATE_TOKEN = "create_token"
    LIST_TOKENS = "list_tokens"
    REVOKE_TOKEN = "revoke_token"
    BACKUP = "backup"
    WHO_AM_I = "who_am_i"
    METRICS = "metrics"
    WHATIF = "whatif"
    FAIRNESS = "fairness"
    DASHBOARD = "dashboard"
    FIND_FILE = "find_file"
    MY_FILE = "my_file"
    LIST_REDRESS = "list_redress"
    READ_FEED = "read_feed"
    ACK_FEED = "ack_feed"
    FEED_STATUS = "feed_status"
    LIST_REVIEW = "list_review"
    JUDGE_REVIEW = "judge_review"


class Owner(enum.StrEnum):
    """The subject a role is bound to in an operation (no entry: none, it reaches everything)."""

    FILE = "own file"
    """A resident: the file named must be their own; a call naming none reaches their own."""
    AGENCY = "own agency"
    """An agency: naming another agency is refused; what it reaches is narrowed to its own records."""
    ACTIONS = "own actions"
    """A provider: an action outside its token's actions (``credo token create --actions``; none given:
    every action) is refused; its change feed is its own, narrowed to those actions, and naming another
    provider is refused."""


BOUND = {Owner.FILE: "resident", Owner.AGENCY: "agency", Owner.ACTIONS: "provider"}
"""The one role each kind of ownership can bind: the subject is the one its tokens are bound to."""


class RoleRefused(Forbidden):
    """Step 2: the role may not ask for this at all. (Refusals keep the plain ``CredoError`` signature:
    raised by the library under the server, they are pickled back across the hub's socket.)"""

    @classmethod
    def of(cls, role: str, rule: Rule, doing: str) -> RoleRefused:
        """The refusal "an agency may not DOING", naming the role and the roles the rule admits."""
        return cls(f"{a_role(role)} may not {doing}", details={"role": role, "allowed": list(rule.roles)})


class NotYours(Forbidden):
    """Step 4: the role may ask, but not about this subject."""


class PurposeRequired(CredoError):
    """Step 5: the role must say why, and did not."""

    status = 422
    code = "purpose_required"


class Unasked(enum.Enum):
    """A purpose not asked for: the library checks roles and ownership, never purposes (the CLI's operator
    gives none; the fronts that take one check it)."""

    UNASKED = "unasked"


UNASKED = Unasked.UNASKED


@dataclass(frozen=True)
class Rule:
    """Who may do one operation; ``does`` ends the sentence "an agency may not ..."."""

    does: str
    roles: tuple[str, ...]
    purpose: tuple[str, ...] = ()
    owners: Mapping[str, Owner] = field(default_factory=dict)
    reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """A role shown only these fields of each reason of a decision (no entry: all of them)."""

    def __post_init__(self) -> None:
        assert set(self.roles) <= set(ROLES), self.roles
        assert set(self.purpose) | set(self.owners) | set(self.reasons) <= set(self.roles), self.does
        assert all(BOUND[owner] == role for role, owner in self.owners.items()), self.owners

    def allows(self, role: str) -> bool:
        return role in self.roles

    def require(self, who: Principal, *, resident_id: str | None = None, agency: str | None = None,
                action: str | None = None, purpose: str | Unasked | None = UNASKED) -> None:
        """Refuse ``who`` in the order of the module's precedence: role, ownership, purpose.

        ``resident_id``, ``agency`` and ``action`` are the subjects the call names; a resident naming no
        file is refused (use ``own_file`` where none means their own). ``purpose`` is what the caller
        gave (None or blank: nothing), left ``UNASKED`` where purposes are not checked (the library)."""
        self._admit(who)
        owner = self.owners.get(who.role)
        if owner is Owner.FILE:
            _own_file(who, resident_id)
        elif owner is Owner.AGENCY:
            _own_agency(who, agency)
        elif owner is Owner.ACTIONS and action is not None:
            _own_action(who, action)
        if purpose is not UNASKED and who.role in self.purpose and not (purpose and purpose.strip()):
            raise PurposeRequired(f"{a_role(who.role)} must give a purpose", details={"field": "purpose"})

    def own_file(self, who: Principal, named: str | None) -> str | None:
        """The file a call reaches: a resident's own (the one named, which must be theirs, or by default
        their own); for any other role the one named (None: every file)."""
        self._admit(who)
        if self.owners.get(who.role) is not Owner.FILE:
            return named
        assert who.resident is not None
        named = named or ids.resident_id_from_key(who.resident)
        _own_file(who, named)
        return named

    def own_agency(self, who: Principal, named: str | None) -> str | None:
        """The agency a call acts for or is narrowed to: an agency's own (naming another is refused); for
        any other role the one named (None: every agency)."""
        self._admit(who)
        if self.owners.get(who.role) is not Owner.AGENCY:
            return named
        _own_agency(who, named)
        return who.agency

    def own_provider(self, who: Principal, named: str | None) -> str | None:
        """The provider a call is narrowed to: a provider's own (naming another is refused); for any other
        role the one named (None: every provider)."""
        self._admit(who)
        if self.owners.get(who.role) is not Owner.ACTIONS:
            return named
        if named is not None and named != who.provider:
            raise NotYours("a provider reaches only what it was told")
        return who.provider

    def own_feed(self, who: Principal, named: str | None) -> tuple[str | None, tuple[str, ...] | None]:
        """The provider whose feed a call reads and the actions it is narrowed to: a provider's own (naming
        another is refused) and its token's actions; for any other role the one named (None: the whole
        feed) and None (the named provider's actions are the service's to find)."""
        self._admit(who)
        if self.owners.get(who.role) is not Owner.ACTIONS:
            return named, None
        if named is not None and named != who.provider:
            raise NotYours("a provider reaches only its own feed")
        return who.provider, who.actions

    def reasons_for(self, who: Principal, reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What ``who`` is shown of a decision's reasons (a provider: code, effect and how it ends)."""
        fields = self.reasons.get(who.role)
        if fields is None or not reasons:
            return reasons
        return [{f: r[f] for f in fields} for r in reasons]

    def _admit(self, who: Principal) -> None:
        if who.role not in self.roles:
            raise RoleRefused.of(who.role, self, self.does)


def _own_file(who: Principal, named: str | None) -> None:
    if named is None or ids.resident_key(ids.normalise_resident_id(named)) != who.resident:
        raise NotYours("a resident reaches only their own file")


def _own_agency(who: Principal, named: str | None) -> None:
    if named is not None and named != who.agency:
        raise NotYours("an agency reaches only its own records")


def _own_action(who: Principal, action: str) -> None:
    if who.actions is not None and action not in who.actions:
        raise NotYours(f"this provider token may ask only about {', '.join(who.actions)}",
                       details={"field": "action", "actions": list(who.actions)})


# -- the table --------------------------------------------------------------------------------------
RESIDENT = {"resident": Owner.FILE}
AGENCY = {"agency": Owner.AGENCY}
PROVIDER = {"provider": Owner.ACTIONS}
PROVIDER_SEES = {"provider": ("code", "effect", "ends")}
"""A provider is shown a reason's code, effect and how it ends: never the records behind it (spec §1)."""


def _file(does: str, *, agency: bool = False) -> Rule:
    """A read of one resident's file: the resident's own, an operator's who says why, and where ``agency``
    an agency's, narrowed to its own records."""
    if agency:
        return Rule(does, ("resident", "agency", "operator"), purpose=("operator",), owners={**RESIDENT, **AGENCY})
    return Rule(does, ("resident", "operator"), purpose=("operator",), owners=RESIDENT)


RULES: Mapping[Op, Rule] = {
    Op.READ_STANDING: _file("read a resident's standing"),
    Op.READ_EXPLANATION: _file("read how a resident's records count"),
    Op.READ_RECORDS: _file("read a resident's records", agency=True),
    Op.READ_NOTICES: _file("read a resident's notices"),
    Op.READ_ACCESSES: _file("read who accessed a resident's file"),
    Op.CHECK: Rule("ask for a decision", ("provider", "operator", "resident"), purpose=("provider", "operator"),
                   owners={**RESIDENT, **PROVIDER}, reasons=PROVIDER_SEES),
    Op.CHECK_BATCH: Rule("ask for a manifest's decisions", ("provider", "operator"),
                         purpose=("provider", "operator"), owners=PROVIDER, reasons=PROVIDER_SEES),
    Op.SUBMIT_RECORDS: Rule("submit records", ("agency",), owners=AGENCY),
    Op.REVOKE: Rule("revoke a record", ("agency", "operator"), owners=AGENCY),
    Op.READ_REJECTS: Rule("read rejected rows", ("agency", "operator"), owners=AGENCY),
    Op.OPEN_OBJECTION: Rule("open an objection", ("resident", "operator"), owners=RESIDENT),
    Op.LIST_OBJECTIONS: Rule("list objections", ("resident", "agency", "operator"), owners={**RESIDENT, **AGENCY}),
    Op.RESOLVE_OBJECTION: Rule("resolve an objection", ("agency", "operator"), owners=AGENCY),
    Op.READ_AUDIT: Rule("read the audit log", ("resident", "auditor", "operator"), owners=RESIDENT),
    Op.VERIFY_AUDIT: Rule("verify the audit log", ("auditor", "operator")),
    Op.READ_POLICY: Rule("read the policy in force", ROLES),
    Op.APPLY_POLICY: Rule("apply a policy", ("operator",)),
    Op.CREATE_TOKEN: Rule("create a token", ("operator",)),
    Op.LIST_TOKENS: Rule("list tokens", ("operator",)),
    Op.REVOKE_TOKEN: Rule("revoke a token", ("operator",)),
    Op.BACKUP: Rule("take a backup", ("operator",)),
    Op.WHO_AM_I: Rule("ask whom its token names", ROLES),
    Op.METRICS: Rule("read the metrics", ("operator", "auditor")),
    Op.WHATIF: Rule("run a what-if report", ("operator",)),
    Op.FAIRNESS: Rule("read a fairness report", ("operator", "auditor")),
    Op.DASHBOARD: Rule("read the dashboard", ("operator", "auditor")),
    Op.FIND_FILE: Rule("look a resident's file up", ("operator",), purpose=("operator",)),
    Op.MY_FILE: Rule("open the page of their own file", ("resident",), owners=RESIDENT),
    Op.LIST_REDRESS: Rule("list decisions that need redress", ("operator", "provider", "resident"),
                          owners={**RESIDENT, **PROVIDER}),
    Op.READ_FEED: Rule("read a change feed", ("provider", "operator"), owners=PROVIDER),
    Op.ACK_FEED: Rule("acknowledge its change feed", ("provider",), owners=PROVIDER),
    Op.FEED_STATUS: Rule("read the change feeds' status", ("operator", "auditor")),
    Op.LIST_REVIEW: Rule("list identity review items", ("agency", "operator"), owners=AGENCY),
    Op.JUDGE_REVIEW: Rule("confirm or decline an identity match", ("agency", "operator"), owners=AGENCY),
}


def allows(op: Op, role: str) -> bool:
    return RULES[op].allows(role)


def require(op: Op, who: Principal, *, resident_id: str | None = None, agency: str | None = None,
            action: str | None = None, purpose: str | Unasked | None = UNASKED) -> None:
    """``RULES[op].require``: role, then ownership, then (where asked) purpose."""
    RULES[op].require(who, resident_id=resident_id, agency=agency, action=action, purpose=purpose)


def own_file(op: Op, who: Principal, named: str | None) -> str | None:
    return RULES[op].own_file(who, named)


def own_agency(op: Op, who: Principal, named: str | None = None) -> str | None:
    return RULES[op].own_agency(who, named)


def own_redress(who: Principal, provider: str | None, resident_id: str | None) -> tuple[str | None, str | None]:
    """The provider and the file a redress listing is narrowed to: a provider's own, a resident's own file,
    the operator's choice (None: all)."""
    rule = RULES[Op.LIST_REDRESS]
    return rule.own_provider(who, provider), rule.own_file(who, resident_id)
