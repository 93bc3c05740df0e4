"""Who may do what through the service, as data (spec §6).

Each guarded operation names the roles that may run it and how a refusal reads. The HTTP routes
declare their roles too, but these rules hold for every caller of ``credo.service.Credo`` (the CLI,
the server, the web pages), so a front that forgets one still reads nothing it must not.

Two rules are about a subject rather than a role, and are checked first: a resident reads only
their own file (and lists only the accesses to it), and an agency revokes only its own records.
"""

from __future__ import annotations

from typing import Literal

from credo.errors import Forbidden
from credo.principals import Principal, a_role

Guarded = Literal["read_file", "read_audit", "dashboard", "fairness", "whatif"]

MAY: dict[Guarded, tuple[frozenset[str], str]] = {
    "read_file": (frozenset({"operator", "agency", "resident"}), "never reads a resident's file"),
    "read_audit": (frozenset({"operator", "auditor", "resident"}), "does not read the audit log"),
    "dashboard": (frozenset({"operator", "auditor"}), "does not read the dashboard"),
    "fairness": (frozenset({"operator", "auditor"}), "does not read fairness reports"),
    "whatif": (frozenset({"operator"}), "does not run what-if reports"),
}
"""Operation -> (the roles that may run it, the refusal after the role: "a provider never reads...")."""


def require(who: Principal, operation: Guarded) -> None:
    roles, refusal = MAY[operation]
    if who.role not in roles:
        raise Forbidden(f"{a_role(who.role)} {refusal}")


def read_file(who: Principal, resident: int) -> None:
    """A resident's standing, explanation, records, notices or accesses."""
    if who.role == "resident" and who.resident != resident:
        raise Forbidden("a resident reads only their own file")
    require(who, "read_file")


def read_audit(who: Principal, resident: int | None) -> None:
    """The audit log: a resident's own accesses (``resident`` is theirs), or any page of it."""
    if who.role == "resident" and (resident is None or resident != who.resident):
        raise Forbidden("a resident lists only the accesses to their own file")
    require(who, "read_audit")


def revoke_record(who: Principal, agency: str) -> None:
    if who.role == "agency" and who.agency != agency:
        raise Forbidden("an agency revokes only its own records")
