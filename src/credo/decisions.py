"""Decisions for providers: may this resident take this action now? (spec §4 "Decision")

Precedence, written once: every measure of the action whose list holds the
resident (in force, past its grace) or whose grades include the resident's
grade applies. Any applying ``deny`` makes the decision ``deny``; otherwise it
is ``allow`` and the other applying effects are its benefits. Each applying
measure gives one reason with the records behind it and how it ends.

``decide`` is a pure function of a standing, so the server can answer from an
in-memory index and the CLI from the store with the same code.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from credo.errors import CredoError
from credo.policy import Policy
from credo.standing import Hit, Standing
from credo.times import iso


class UnknownAction(CredoError):
    status = 404
    code = "unknown_action"


class Decision(NamedTuple):
    """A NamedTuple, not a frozen dataclass: made for every check, it costs a quarter as much."""

    decision_id: str
    resident_id: str
    action: str
    decision: str
    benefits: list[str]
    reasons: list[dict[str, Any]]
    policy: str
    policies: tuple[str, ...] = ()
    """Every policy consulted: one per jurisdiction holding the resident (spec §9); the default is never
    mutated (a NamedTuple's fields are not)."""

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


def require_action(policy: Policy, action: str) -> None:
    if action not in policy.doc.actions:
        raise UnknownAction(f"action {action!r} is not named by policy {policy.label}",
                            details={"actions": sorted(policy.doc.actions)})


def require_named(in_force: Sequence[Policy], action: str) -> None:
    """An action some policy in force names (whether one holding the resident does is ``decide_across``'s)."""
    if len(in_force) == 1:
        require_action(in_force[0], action)
    elif not any(action in p.doc.actions for p in in_force):
        raise UnknownAction(f"action {action!r} is named by no policy in force",
                            details={"actions": sorted({a for p in in_force for a in p.doc.actions})})


def new_id() -> str:
    return "d-" + uuid.uuid4().hex


def decide(policy: Policy, standing: Standing, action: str, now: datetime) -> Decision:
    require_action(policy, action)
    reasons, effects = _applying(policy, standing, action, now)
    verdict = "deny" if "deny" in effects else "allow"
    benefits = [] if verdict == "deny" else sorted({e for e in effects if e != "deny"})
    return Decision(new_id(), standing.resident_id, action, verdict, benefits, reasons, policy.label, (policy.label,))


def decide_across(in_force: Sequence[Policy], standing: Standing, action: str, now: datetime) -> Decision:
    """A decision applying the measures of every jurisdiction holding the resident (spec §9): ``standing``
    is the home one's, its ``layers`` every jurisdiction's. Deny beats allow across them; each reason
    names its jurisdiction; an action none of them names is an error."""
    if len(in_force) == 1:
        return decide(in_force[0], standing, action, now)
    by_name = {p.jurisdiction: p for p in in_force}
    consulted = [(by_name[layer.jurisdiction], layer) for layer in standing.layers or [standing]
                 if layer.jurisdiction in by_name]
    naming = [(p, layer) for p, layer in consulted if action in p.doc.actions]
    if not naming:
        names = sorted({a for p, _ in consulted for a in p.doc.actions})
        raise UnknownAction(f"action {action!r} is named by no policy in force for this resident "
                            f"({', '.join(p.label for p, _ in consulted)})", details={"actions": names})
    reasons: list[dict[str, Any]] = []
    effects: list[str] = []
    for p, layer in naming:
        found, applied = _applying(p, layer, action, now)
        reasons += found
        effects += applied
    verdict = "deny" if "deny" in effects else "allow"
    benefits = [] if verdict == "deny" else sorted({e for e in effects if e != "deny"})
    return Decision(new_id(), standing.resident_id, action, verdict, benefits, reasons, standing.policy,
                    tuple(p.label for p, _ in consulted))


def _applying(policy: Policy, standing: Standing, action: str, now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """The reasons and effects of one policy's measures on ``action`` that apply to its standing."""
    reasons: list[dict[str, Any]] = []
    effects: list[str] = []
    held = {h.list for h in standing.hits if h.takes_effect <= now}
    for m in policy.doc.measures:
        if m.action != action:
            continue
        if m.list is not None and m.list in held:
            hits = [h for h in standing.hits if h.list == m.list and h.takes_effect <= now]
            reasons.append(_list_reason(policy, m.list, m.effect, hits))
            effects.append(m.effect)
        elif m.grades and standing.grade in m.grades:
            reasons.append({"code": f"grade:{standing.grade}", "effect": m.effect, "records": [],
                            "ends": {"resolved_by": [], "expires_at": iso(standing.changes_at, policy.tz)},
                            "jurisdiction": policy.jurisdiction})
            effects.append(m.effect)
    return reasons, effects


def _list_reason(policy: Policy, name: str, effect: str, hits: list[Hit]) -> dict[str, Any]:
    """A list's reason: its records, the types that resolve them, and when the last one expires."""
    expiries = [h.expires_at for h in hits]
    last = None if any(e is None for e in expiries) else max(e for e in expiries if e is not None)
    resolvers = sorted({t for h in hits for t in policy.resolvers_of(h.type)})
    return {
        "code": f"list:{name}",
        "effect": effect,
        "records": [{"agency": h.agency, "record_id": h.record_id, "type": h.type,
                     "occurred_at": iso(h.occurred_at, policy.tz)} for h in hits],
        "ends": {"resolved_by": resolvers, "expires_at": iso(last, policy.tz)},
        "jurisdiction": policy.jurisdiction,
    }
