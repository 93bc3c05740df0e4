"""Jurisdictions (spec §9): one deployment, a policy per jurisdiction over one ledger.

A policy names its jurisdiction (``jurisdiction: {name, regions}``); without ``regions`` it holds
every resident (a national layer), without the block it is a jurisdiction named after the policy
that holds everyone (a single-city deployment, as before). The policies in force together must
agree where they meet, and that is checked here, across files, both at ``credo policy check A B``
and when a policy is applied beside those in force: one time zone (every rule is calendar
arithmetic in it), one agency per record type (an agency submits a type under one legal basis),
no region prefix claimed twice (a resident's home is the longest prefix, which must be one
jurisdiction), unique jurisdiction names. Membership itself is data for the scoring SQL
(``members_table``): one row per (jurisdiction, region prefix), the district matched in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from credo import policy as policies
from credo.engines.base import clock
from credo.errors import PolicyInvalid
from credo.known import Known
from credo.policy import Policy
from credo.policydoc import Problem, RecordType
from credo.sql import q
from credo.times import iso

Labelled = tuple[str, Policy]
"""A policy with how a problem names it: its file, or its label in force (``beijing-2026@3``)."""


def check_together(policies: Sequence[Labelled]) -> list[Problem]:
    """Every problem of these policies in force together; each is named on the later of the two that
    disagree, so a policy applied last is the one blamed."""
    out: list[Problem] = []
    names: dict[str, str] = {}
    agencies: dict[str, tuple[str, str]] = {}
    claimed: dict[str, str] = {}
    blockless: str | None = None
    first_label, first = policies[0] if policies else ("", None)
    for label, policy in policies:
        if first is not None and policy.tz != first.tz:
            out.append(Problem(f"{label}: timezone", f"{policy.tz} differs from {first.tz} ({first_label}): "
                               "every jurisdiction keeps the one time zone of the database"))
        if policy.jurisdiction in names:
            out.append(Problem(f"{label}: jurisdiction.name", f"jurisdiction {policy.jurisdiction!r} is "
                               f"already {names[policy.jurisdiction]}'s"))
        names.setdefault(policy.jurisdiction, label)
        if policy.slot is None:
            if blockless is not None:
                out.append(Problem(f"{label}: jurisdiction", f"like {blockless}, it names no jurisdiction: in one "
                                   "database the later would replace the earlier; give each a jurisdiction block"))
            blockless = blockless or label
        for code, t in sorted(policy.doc.record_types.items()):
            agency, where = agencies.setdefault(code, (t.agency, label))
            if agency != t.agency:
                out.append(Problem(f"{label}: record_types.{code}.agency", f"{t.agency!r}, but {where} assigns "
                                   f"{code!r} to {agency!r}: a type has one agency across jurisdictions"))
        for region in policy.regions:
            owner = claimed.setdefault(region, label)
            if owner != label:
                out.append(Problem(f"{label}: jurisdiction.regions", f"region {region!r} is already claimed by "
                                   f"{owner}"))
    return out


def beside_in_force(in_force: Sequence[Policy], new: Policy) -> list[Policy]:
    """The policies in force once ``new`` is applied: it replaces only its own jurisdiction's."""
    return [p for p in in_force if p.slot != new.slot] + [new]


def require_fits(in_force: Sequence[Policy], new: Policy) -> None:
    """Refuse ``new`` (PolicyInvalid, every problem listed) when it disagrees with the others in force."""
    require_together([(p.label, p) for p in beside_in_force(in_force, new)[:-1]] + [(new.name, new)])


def require_together(policies: Sequence[Labelled]) -> None:
    """Refuse policies (PolicyInvalid, every problem listed) that cannot be in force together."""
    problems = check_together(policies)
    if problems:
        raise PolicyInvalid(f"policy refused beside the others: {len(problems)} problem(s)",
                            details=[str(p) for p in problems])


MEMBERS_SCHEMA = pa.schema([("jurisdiction", pa.string()), ("region", pa.string()), ("rank", pa.int64())])


def members_table(policies: Sequence[Policy]) -> pa.Table:
    """``jurisdictions_in``: one row per (jurisdiction, region prefix), region NULL for one holding
    everyone; ``rank`` is the order applied, which breaks a tie for home between two holding everyone."""
    rows = [{"jurisdiction": p.jurisdiction, "region": region, "rank": rank}
            for rank, p in enumerate(policies) for region in (p.regions or (None,))]
    return pa.Table.from_pylist(rows, schema=MEMBERS_SCHEMA)


def members(con: duckdb.DuckDBPyConnection, in_force: Sequence[Policy], t: datetime,
            known: Known | None = None, scope: np.ndarray | None = None) -> pa.Table:
    """``(resident, jurisdiction, home)``: every jurisdiction holding each resident at T, known at K (spec §9),
    read from the store in SQL (``inputs.districts_at``, ``inputs.members``)."""
    inputs = {"clock_in": clock(t), "known_in": (known or Known(datetime.max)).table(),
              "jurisdictions_in": members_table(in_force)}
    inputs["credo_among"] = pa.table({"resident": pa.array([] if scope is None else scope, pa.int64())})
    inputs["credo_among_every"] = pa.table({"every": [scope is None]})
    for name, table in inputs.items():
        con.register(name, table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW districts_in AS {q('inputs.districts_at')}")
        return con.sql(q("inputs.members")).to_arrow_table()
    finally:
        con.execute("DROP VIEW IF EXISTS districts_in")
        for name in inputs:
            con.unregister(name)


def submittable(in_force: Sequence[Policy]) -> Policy:
    """What an agency may submit (spec §9): every type any policy in force assigns it, whether or not a
    jurisdiction holding the resident scores it (the resident may move). One policy: itself; several: the
    first with every policy's types (their list memberships left out: ingest reads types, owners and
    resolvers only)."""
    if len(in_force) == 1:
        return in_force[0]
    types: dict[str, RecordType] = {}
    for p in in_force:
        for code, t in p.doc.record_types.items():
            was = types.get(code)
            resolves = sorted({*t.resolves, *(was.resolves if was else ())})
            types[code] = t.model_copy(update={"lists": [], "resolves": resolves})
    first = in_force[0]
    doc = first.doc.model_copy(update={"record_types": dict(sorted(types.items())), "lists": {}, "measures": []})
    return Policy(doc, first.text, version=first.version)


def listing(con: duckdb.DuckDBPyConnection, tz: str) -> list[dict[str, Any]]:
    """Each jurisdiction in force (oldest applied first): its regions, its policy and every version it had."""
    in_force = policies.in_force(con)
    by_slot = {p.slot: p for p in in_force}
    versions: dict[str | None, list[dict[str, Any]]] = {}
    for version, name, slot, sha256, applied_at, applied_by in con.execute(q("inputs.policy_versions")).fetchall():
        versions.setdefault(slot, []).append({
            "version": int(version), "policy": f"{name}@{version}", "sha256": sha256,
            "applied_at": iso(applied_at, tz), "applied_by": applied_by,
            "in_force": by_slot.get(slot) is not None and by_slot[slot].version == version})
    return [{"jurisdiction": p.jurisdiction, "regions": list(p.regions) or None, "policy": p.label,
             "versions": versions.get(p.slot, [])} for p in in_force]
