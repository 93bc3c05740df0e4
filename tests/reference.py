"""A deliberately plain Python reading of spec §4 ("Semantics, at a time T"), for the tests only.

It is written from the spec's sentences, not from ``score.sql``: one loop per rule, no cleverness,
no shared code with the engines beyond ``Duration.add_to`` (the spec's calendar addition) and the
policy model. The property tests hold the SQL, on both engines, to what this file says.

Where the spec leaves a choice open, this file fixes it, and the SQL must agree:

* A revoked record (by its agency or by an upheld objection) counts at no T, before its
  revocation too: the withdrawal says the record was wrong. A revoked resolver resolves nothing.
  An objection is open at T from ``opened`` (inclusive) until its first ``upheld``/``rejected``
  step (exclusive).
* Capped points are shared out in occurrence order (then agency, record_id): each record adds
  clamp(running total) - clamp(running total before it), so the records add up to the group.
* The one reason shown for a record that adds nothing is the first that applies, in the order
  revoked, not in the policy, not yet occurred, suspended, expired, resolved.
* ``changes_at`` is the earliest instant after T among: the occurrence of any of the resident's
  records not revoked, the expiry of a counting record, the end of grace of a counting record's list, the
  occurrence of a resolver of a counting record, and (seen from a past T) an objection step on
  one of the resident's records not revoked (never a revocation: it holds at every T).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from credo.policy import Policy
from credo.times import Duration


@dataclass(frozen=True)
class Record:
    agency: str
    record_id: str
    type: str
    resident: int
    occurred_at: datetime
    resolves: str | None = None
    known_at: datetime | None = None
    """When its batch became known to Credo (None: always known)."""


@dataclass(frozen=True)
class Revocation:
    agency: str
    record_id: str
    revoked_at: datetime


@dataclass(frozen=True)
class ObjectionStep:
    objection: int
    step: str  # opened | upheld | rejected
    agency: str
    record_id: str
    at: datetime


@dataclass
class City:
    """Everything scoring reads: residents, the ledger, revocations and objection steps."""

    residents: list[int]
    records: list[Record] = field(default_factory=list)
    revocations: list[Revocation] = field(default_factory=list)
    objections: list[ObjectionStep] = field(default_factory=list)


@dataclass(frozen=True)
class RecordPart:
    agency: str
    record_id: str
    status: str
    points: int
    expires_at: datetime | None


@dataclass(frozen=True)
class Standing:
    score: int
    grade: str
    lists: tuple[str, ...]
    pending: tuple[tuple[str, datetime], ...]
    changes_at: datetime | None
    hits: tuple[tuple[str, str, str, datetime], ...]  # (list, agency, record_id, takes_effect)
    records: tuple[RecordPart, ...]

    def visible(self) -> tuple[object, ...]:
        """What a user sees of the standing, without ``changes_at`` (for piecewise-constancy checks)."""
        return self.score, self.grade, self.lists, self.pending


def known(city: City, k: datetime) -> City:
    """The second clock, K (spec §4 "Two clocks"): the city as Credo held it at ``k``. A record is held
    from its batch's known time, a revocation from its ``revoked_at`` and an objection step from its
    ``at``, the times they were received; the residents are all held (the register keeps no history)."""
    return City(city.residents,
                [r for r in city.records if r.known_at is None or r.known_at <= k],
                [v for v in city.revocations if v.revoked_at <= k],
                [o for o in city.objections if o.at <= k])


def _add(when: datetime, text: str | None) -> datetime | None:
    return Duration.parse(text).add_to(when) if text else None


def _clamp(value: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, value))


def standing(policy: Policy, city: City, resident: int, t: datetime) -> Standing:
    """The resident's standing at ``t``, rule by rule."""
    doc = policy.doc
    types = doc.record_types
    mine = [r for r in city.records if r.resident == resident]

    def revoked(r: Record) -> bool:
        return any(v.agency == r.agency and v.record_id == r.record_id for v in city.revocations)

    def open_since(r: Record, at: datetime) -> datetime | None:
        """When the earliest of the objections open against ``r`` at ``at`` was opened."""
        found = None
        for o in city.objections:
            if o.step != "opened" or (o.agency, o.record_id) != (r.agency, r.record_id) or o.at > at:
                continue
            closes = [c.at for c in city.objections if c.objection == o.objection and c.step != "opened"]
            if not closes or min(closes) > at:
                found = o.at if found is None else min(found, o.at)
        return found

    def resolved_at(r: Record, at: datetime) -> datetime | None:
        found = None
        for x in city.records:
            resolver = types.get(x.type)
            if (x.agency == r.agency and x.resolves == r.record_id and resolver is not None
                    and r.type in resolver.resolves and not revoked(x) and x.occurred_at <= at):
                found = x.occurred_at if found is None else min(found, x.occurred_at)
        return found

    def status(r: Record) -> str:
        """Revoked, not in the policy, not yet; else the first of suspended, expired and resolved to
        have happened (a tie: resolved, then suspended)."""
        rt = types.get(r.type)
        if revoked(r):
            return "revoked"
        if rt is None:
            return "not_in_policy"
        if r.occurred_at > t:
            return "not_yet"
        expires = _add(r.occurred_at, rt.valid_for)
        stops = {"resolved": resolved_at(r, t),
                 "suspended": open_since(r, t) if doc.disputed == "suspend" else None,
                 "expired": expires if expires is not None and not t < expires else None}
        happened = [(at, why) for why, at in stops.items() if at is not None]
        return min(happened, key=lambda s: s[0])[1] if happened else "counts"

    statuses = {(r.agency, r.record_id): status(r) for r in mine}
    counting = [r for r in mine if statuses[(r.agency, r.record_id)] == "counts"]

    # Points: per (type, calendar year of occurred_at), summed, capped; shared out in order.
    groups: dict[tuple[str, int], list[Record]] = defaultdict(list)
    for r in counting:
        groups[(r.type, r.occurred_at.year)].append(r)
    part_points: dict[tuple[str, str], int] = {}
    total = 0
    for (code, _year), members in groups.items():
        cap = types[code].cap_per_year
        members.sort(key=lambda r: (r.occurred_at, r.agency, r.record_id))
        run = 0
        for r in members:
            before, run = run, run + types[code].points
            part = run - before if cap is None else _clamp(run, -cap, cap) - _clamp(before, -cap, cap)
            part_points[(r.agency, r.record_id)] = part
        total += run if cap is None else _clamp(run, -cap, cap)
    lo, hi = doc.score_bounds
    score = _clamp(doc.base_score + total, lo, hi)
    grade = next(g.grade for g in doc.grades if g.min <= score)

    # Lists: every counting record's lists; in force from occurred_at + grace.
    hits = []
    for r in counting:
        for name in types[r.type].lists:
            takes_effect = _add(r.occurred_at, doc.lists[name].grace) or r.occurred_at
            hits.append((name, r.agency, r.record_id, takes_effect))
    in_force = sorted({name for name, _, _, at in hits if at <= t})
    first: dict[str, datetime] = {}
    for name, _, _, at in hits:
        if name not in in_force and (name not in first or at < first[name]):
            first[name] = at
    pending = tuple(sorted(first.items()))

    # changes_at: the earliest instant after t at which something recorded takes effect.
    later: list[datetime] = [r.occurred_at for r in mine if r.occurred_at > t and not revoked(r)]
    for r in counting:
        expires = _add(r.occurred_at, types[r.type].valid_for)
        if expires is not None:
            later.append(expires)
        later += [x.occurred_at for x in city.records
                  if x.agency == r.agency and x.resolves == r.record_id and x.type in types
                  and r.type in types[x.type].resolves and not revoked(x) and x.occurred_at > t]
    later += [at for _, _, _, at in hits if at > t]
    keys = {(r.agency, r.record_id) for r in mine}
    if doc.disputed == "suspend":
        withdrawn = {(r.agency, r.record_id) for r in mine if revoked(r)}
        later += [o.at for o in city.objections
                  if (o.agency, o.record_id) in keys - withdrawn and o.at > t]

    parts = tuple(RecordPart(r.agency, r.record_id, statuses[(r.agency, r.record_id)],
                             part_points.get((r.agency, r.record_id), 0),
                             _add(r.occurred_at, types[r.type].valid_for) if r.type in types else None)
                  for r in sorted(mine, key=lambda r: (r.occurred_at, r.agency, r.record_id)))
    return Standing(score, grade, tuple(in_force), pending, min(later, default=None),
                    tuple(sorted(hits)), parts)


def event_instants(policy: Policy, city: City) -> list[datetime]:
    """Every instant at which some rule can switch: the times the tests probe the standing at."""
    doc = policy.doc
    out = set()
    for r in city.records:
        out.add(r.occurred_at)
        rt = doc.record_types.get(r.type)
        if rt is not None:
            if rt.valid_for:
                out.add(Duration.parse(rt.valid_for).add_to(r.occurred_at))
            for name in rt.lists:
                grace = doc.lists[name].grace
                if grace:
                    out.add(Duration.parse(grace).add_to(r.occurred_at))
    out |= {v.revoked_at for v in city.revocations}
    out |= {o.at for o in city.objections}
    return sorted(out)
