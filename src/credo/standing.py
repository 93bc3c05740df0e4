"""A resident's standing and its explanation, as users see them (spec §4, §7).

A stored standing is served only while it is still true: computed under the
policy in force, at or before now, and before its ``changes_at`` (``stored``
answers None otherwise). Nothing here stores a standing: making one current is
the service's one rescoring path (``Credo.freshen``), because a standing that
changes must also tell the resident (notices) and every decision index. ``at``
and ``explain`` compute for any time and store nothing. The explanation comes
from the same pipeline run as the score, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from credo import ids, jurisdictions, scoring
from credo.errors import NotFound
from credo.known import Known
from credo.policy import Policy
from credo.sql import q
from credo.times import iso, parse_when


@dataclass(frozen=True)
class Hit:
    """One counting record holding a resident on a list, from ``takes_effect`` on."""

    list: str
    agency: str
    record_id: str
    type: str
    occurred_at: datetime
    takes_effect: datetime
    expires_at: datetime | None


@dataclass
class Standing:
    resident: int
    score: int | None  # None: a policy giving lists only (spec §9)
    grade: str | None
    changes_at: datetime | None
    as_of: datetime
    policy: str
    hits: list[Hit] = field(default_factory=list)
    known_at: datetime | None = None
    """K, when the standing was computed from what was known then (None: from everything held now)."""
    jurisdiction: str | None = None
    """The jurisdiction it is of (spec §9); on the home one's, ``layers`` holds every one holding the resident."""
    layers: list[Standing] = field(default_factory=list, compare=False, repr=False)

    @property
    def resident_id(self) -> str:
        return ids.resident_id_from_key(self.resident)

    def in_force(self) -> list[str]:
        return sorted({h.list for h in self.hits if h.takes_effect <= self.as_of})

    def pending(self) -> list[tuple[str, datetime]]:
        held = set(self.in_force())
        first: dict[str, datetime] = {}
        for h in self.hits:
            if h.list not in held and (h.list not in first or h.takes_effect < first[h.list]):
                first[h.list] = h.takes_effect
        return sorted(first.items())

    def to_json(self, tz: str) -> dict[str, Any]:
        return {
            "resident_id": self.resident_id,
            "score": self.score,
            "grade": self.grade,
            "lists": self.in_force(),
            "pending": [{"list": name, "takes_effect": iso(at, tz)} for name, at in self.pending()],
            "changes_at": iso(self.changes_at, tz),
            "as_of": iso(self.as_of, tz),
            **({"known_at": iso(self.known_at, tz)} if self.known_at is not None else {}),
            "policy": self.policy,
            **({"jurisdiction": self.jurisdiction} if self.jurisdiction is not None else {}),
            **({"jurisdictions": [layer.layer_json(tz) for layer in self.layers]} if self.layers else {}),
        }

    def layer_json(self, tz: str) -> dict[str, Any]:
        """One jurisdiction's part of ``jurisdictions`` (spec §7)."""
        return {"jurisdiction": self.jurisdiction, "score": self.score, "grade": self.grade, "lists": self.in_force(),
                "pending": [{"list": name, "takes_effect": iso(at, tz)} for name, at in self.pending()],
                "changes_at": iso(self.changes_at, tz), "policy": self.policy}


def require_resident(con: duckdb.DuckDBPyConnection, resident_id: ids.ResidentId, now: datetime) -> int:
    """The key of a registered resident; an ID born after the city's date, or unregistered, is an error."""
    key = resident_id.born_by(now.date()).key
    if not con.execute(q("standing.registered"), {"resident": key}).fetchall():
        raise NotFound(f"resident {resident_id} is not registered", code="unknown_resident")
    return key


def _hits(rows: list[tuple[Any, ...]]) -> list[Hit]:
    return [Hit(*r) for r in rows]


def stored(con: duckdb.DuckDBPyConnection, policy: Policy | Sequence[Policy], resident: int,
           now: datetime) -> Standing | None:
    """The stored standing of the resident's home jurisdiction, with every jurisdiction's as its ``layers``, if
    all are still true at ``now`` (each computed under its policy in force: ``policy``, or the one of that
    jurisdiction among those in force)."""
    rows = con.execute(q("standing.stored"), {"resident": resident}).fetchall()
    in_force = [policy] if isinstance(policy, Policy) else list(policy)
    hits = con.execute(q("standing.stored_hits"), {"resident": resident}).fetchall()
    layers = []
    for score, grade, changes_at, as_of, version, jurisdiction in rows:
        under = [p for p in in_force if p.jurisdiction == jurisdiction or len(in_force) == 1]
        if not under or version != under[0].version or as_of > now or (changes_at is not None and now >= changes_at):
            return None
        layers.append(Standing(resident, score, grade, changes_at, now, under[0].label,
                               _hits([h[1:] for h in hits if h[0] == jurisdiction]), jurisdiction=jurisdiction))
    if not layers:
        return None
    home = layers[0]
    home.layers = layers
    return home


def from_tables(out: dict[str, pa.Table], resident: int, as_of: datetime, policy: Policy) -> Standing:
    scored = [r for r in out["scored"].to_pylist() if r["resident"] == resident]
    if not scored:
        raise NotFound(f"resident {ids.resident_id_from_key(resident)} is not registered", code="unknown_resident")
    s = scored[0]
    hits = [Hit(h["list"], h["agency"], h["record_id"], h["type"], h["occurred_at"], h["takes_effect"],
                h["expires_at"]) for h in out["hits"].to_pylist() if h["resident"] == resident]
    return Standing(resident, s["score"], s["grade"], s["changes_at"], as_of, policy.label,
                    sorted(hits, key=lambda h: (h.list, h.takes_effect)))


def at(con: duckdb.DuckDBPyConnection, policy: Policy, resident: int, as_of: datetime,
       known: Known | None = None) -> Standing:
    """The standing at any time T (and, with ``known``, from what was known at K), computed and not stored."""
    return from_tables(scoring.compute(con, policy, as_of, [resident], known=known), resident, as_of, policy)


def at_in_force(con: duckdb.DuckDBPyConnection, in_force: Sequence[Policy], resident: int, as_of: datetime,
                known: Known | None = None) -> Standing:
    """The home jurisdiction's standing at T (from what was known at K), every jurisdiction holding the
    resident then as its ``layers`` (``credo.jurisdictions.members``); computed, not stored."""
    if len(in_force) == 1 or all(not p.regions for p in in_force):
        layers = [at(con, p, resident, as_of, known) for p in in_force]
        for p, layer in zip(in_force, layers, strict=True):
            layer.jurisdiction = p.jurisdiction
    else:
        held = jurisdictions.members(con, in_force, as_of, known, scope=np.array([resident], np.int64)).to_pylist()
        by_name = {p.jurisdiction: p for p in in_force}
        layers = []
        for row in sorted(held, key=lambda r: (not r["home"], r["jurisdiction"])):
            layer = at(con, by_name[row["jurisdiction"]], resident, as_of, known)
            layer.jurisdiction = row["jurisdiction"]
            layers.append(layer)
        if not layers:
            raise NotFound(f"resident {ids.resident_id_from_key(resident)} is held by no jurisdiction",
                           code="unknown_resident")
    home = layers[0]
    home.layers = layers
    return home


WHY = {
    "counts": "counts",
    "not_yet": "not yet occurred",
    "revoked": "revoked on {revoked_at}",
    "suspended": "suspended by objection {disputed_by}",
    "expired": "expired on {expires_at}",
    "resolved": "resolved by {agency}:{resolved_by} on {resolved_at}",
    "not_in_policy": "its type is not in the policy in force",
}


def explain(con: duckdb.DuckDBPyConnection, policy: Policy, resident: int, as_of: datetime,
            known: Known | None = None) -> dict[str, Any]:
    """The standing plus every record of the resident, with the points it adds and why (a record
    not known at K is not shown: Credo did not hold it then)."""
    out = scoring.compute(con, policy, as_of, [resident], records=True, known=known)
    standing = from_tables(out, resident, as_of, policy)
    reasons = {ref: (by, why) for ref, by, why in
               con.execute(q("standing.revocation_reasons"), {"resident": resident}).fetchall()}
    lists_of: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for h in standing.hits:
        lists_of.setdefault((h.agency, h.record_id), []).append(
            {"list": h.list, "takes_effect": iso(h.takes_effect, policy.tz)})
    records = []
    for r in out["explained"].to_pylist():
        why = WHY[r["status"]].format(**{k: (v.date().isoformat() if isinstance(v, datetime) else v)
                                         for k, v in r.items()})
        if r["status"] == "revoked" and f"{r['agency']}:{r['record_id']}" in reasons:
            by, reason = reasons[f"{r['agency']}:{r['record_id']}"]
            why += f" by {by}: {reason}"
        if r["status"] == "counts" and r["points"] != r["type_points"]:
            why = f"counts {r['points']:+d} of {r['type_points']:+d} (yearly cap of its type)"
        records.append({
            "agency": r["agency"], "record_id": r["record_id"], "type": r["type"],
            "occurred_at": iso(r["occurred_at"], policy.tz), "points": r["points"],
            "counts": r["status"] == "counts", "status": r["status"], "why": why,
            "lists": lists_of.get((r["agency"], r["record_id"]), []),
            "ends": {"expires_at": iso(r["expires_at"], policy.tz), "resolved_by": policy.resolvers_of(r["type"])},
        })
    return {**standing.to_json(policy.tz), "records": records,
            "ways_out": ways_out(con, policy, resident, records, as_of, known)}


def explain_in_force(con: duckdb.DuckDBPyConnection, in_force: Sequence[Policy], resident: int, as_of: datetime,
                     known: Known | None = None) -> dict[str, Any]:
    """The home jurisdiction's explanation, plus (spec §9) how each record counts in every jurisdiction
    holding the resident at T: each one's standing and records under its own policy."""
    by_name = {p.jurisdiction: p for p in in_force}
    names = ([in_force[0].jurisdiction] if len(in_force) == 1
             else [str(layer.jurisdiction) for layer in at_in_force(con, in_force, resident, as_of, known).layers])
    parts = [{**explain(con, by_name[name], resident, as_of, known), "jurisdiction": name} for name in names]
    home = parts[0]
    return {**home, "jurisdictions": [
        {k: part[k] for k in ("jurisdiction", "score", "grade", "lists", "pending", "changes_at", "policy", "records")}
        for part in parts]}


def ways_out(con: duckdb.DuckDBPyConnection, policy: Policy, resident: int, records: list[dict[str, Any]],
             as_of: datetime, known: Known | None = None) -> list[dict[str, Any]]:
    """For each counting penalty: what ends it, and the score once it has ended by expiry.

    The score after expiry is the standing recomputed at the expiry instant, so it already
    accounts for caps, clamping and anything else that changes by then.
    """
    out = []
    for r in records:
        if not r["counts"] or (r["points"] >= 0 and not r["lists"]):
            continue
        expires = r["ends"]["expires_at"]
        after = at(con, policy, resident, parse_when(expires, policy.tz), known).score if expires else None
        out.append({"record": f"{r['agency']}:{r['record_id']}", "type": r["type"], "points": r["points"],
                    "lists": r["lists"], "expires_at": expires, "resolved_by": r["ends"]["resolved_by"],
                    "score_after_expiry": after})
    return out
