"""The policy: one YAML document turned into typed models, checked, and compiled to tables.

Loading collects every problem at once (the schema's errors plus the semantic check of
``credo.lint``), each with its dotted path, so a policy author fixes a file in one pass.
Compiling turns the policy into small Arrow tables: scoring is SQL over data, never Python
over rules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from credo import lint
from credo.errors import PolicyInvalid
from credo.policydoc import PolicyDoc, Problem
from credo.sql import q
from credo.times import Duration


@dataclass
class Policy:
    """A checked policy: its document, its source text and the check's warnings."""

    doc: PolicyDoc
    text: str
    warnings: list[Problem] = field(default_factory=list)
    version: int = 0

    @property
    def name(self) -> str:
        return self.doc.policy

    @property
    def label(self) -> str:
        """How standings and decisions name the policy they were made under."""
        return f"{self.doc.policy}@{self.version}" if self.version else self.doc.policy

    @property
    def jurisdiction(self) -> str:
        """The jurisdiction it is in force in: its block's name, or (no block) the policy's own name."""
        block = self.doc.jurisdiction
        return block.name if block else self.doc.policy

    @property
    def regions(self) -> tuple[str, ...]:
        """The district-code prefixes its jurisdiction holds; () holds every resident."""
        block = self.doc.jurisdiction
        return tuple(block.regions or ()) if block else ()

    @property
    def slot(self) -> str | None:
        """The key its versions are stored under: the jurisdiction named in its block, or None for a policy
        without one (a single-city deployment's one slot, so renaming that policy still replaces it)."""
        return self.doc.jurisdiction.name if self.doc.jurisdiction else None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def tz(self) -> str:
        return self.doc.timezone

    def duration(self, text: str | None) -> Duration | None:
        return Duration.parse(text) if text else None

    def resolvers_of(self, type_code: str) -> list[str]:
        """The types whose records can resolve a record of ``type_code``."""
        return sorted(c for c, t in self.doc.record_types.items() if type_code in t.resolves)

    @property
    def agencies(self) -> list[str]:
        return sorted({t.agency for t in self.doc.record_types.values()})

    def tables(self) -> dict[str, pa.Table]:
        """The policy as data: the tables the scoring SQL joins against."""
        return compile_tables(self)


def shipped(name: str) -> Path:
    """Path of a policy shipped with Credo (``beijing``, ``hangzhou``)."""
    return Path(str(resources.files("credo") / "policies" / f"{name}.yaml"))


def load(source: str | Path) -> Policy:
    """Load, validate and check a policy; raise PolicyInvalid listing every refusal."""
    text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    policy, problems = check_text(text)
    refusals = [p for p in problems if p.severity == "refuse"]
    if policy is None or refusals:
        raise PolicyInvalid(
            f"policy refused: {len(refusals)} problem(s)",
            details=[str(p) for p in refusals],
        )
    return policy


def check_text(text: str) -> tuple[Policy | None, list[Problem]]:
    """Every problem of a policy text, refusals and warnings, without raising."""
    doc, problems = _checked(text)
    if doc is None:
        return None, list(problems)
    return Policy(doc, text, [p for p in problems if p.severity == "warn"]), list(problems)


@lru_cache(maxsize=64)
def _checked(text: str) -> tuple[PolicyDoc | None, tuple[Problem, ...]]:
    """The document and its problems, once per text: a policy is read back for every replay and every
    answer about another known-at time, and parsing a city's policy costs ~90 ms of YAML alone (the
    document and the problems are immutable, so one parse serves every caller)."""
    try:
        raw = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        return None, (Problem("(document)", f"not valid YAML: {exc}"),)
    if not isinstance(raw, dict):
        return None, (Problem("(document)", "must be a mapping of policy settings"),)
    doc, problems = lint.check(raw)
    return doc, tuple(problems)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (the same documents, parsed in C)."""


def schema() -> dict[str, Any]:
    return PolicyDoc.model_json_schema()


Row = dict[str, Any]

SCHEMAS = {
    "p_types": pa.schema([("type", pa.string()), ("agency", pa.string()), ("points", pa.int64()),
                          ("cap", pa.int64()), ("valid_months", pa.int64()), ("valid_days", pa.int64())]),
    "p_type_lists": pa.schema([("type", pa.string()), ("list", pa.string()),
                               ("grace_months", pa.int64()), ("grace_days", pa.int64())]),
    "p_resolves": pa.schema([("resolver", pa.string()), ("target", pa.string())]),
    "p_grades": pa.schema([("grade", pa.string()), ("rank", pa.int64()), ("lo", pa.int64()), ("hi", pa.int64())]),
    "p_measures": pa.schema([("action", pa.string()), ("list", pa.string()), ("grade", pa.string()),
                             ("effect", pa.string())]),
    "p_settings": pa.schema([("base", pa.int64()), ("lo", pa.int64()), ("hi", pa.int64()),
                             ("suspend", pa.bool_())]),
}
"""The policy tables the scoring SQL joins against; durations become (months, days) pairs."""


def measure_rows(doc: PolicyDoc) -> list[Row]:
    """The measures as rows of ``p_measures``: one per list, or per grade of a grades measure."""
    rows: list[Row] = []
    for m in doc.measures:
        keys = [(m.list, None)] if m.list else [(None, g) for g in m.grades or []]
        rows.extend({"action": m.action, "list": lst, "grade": grade, "effect": m.effect} for lst, grade in keys)
    return rows


def measures_table(policy: Policy) -> pa.Table:
    """``p_measures`` alone, for what reads only the measures (``credo.providerfeed``, on every rescoring)."""
    return pa.Table.from_pylist(measure_rows(policy.doc), schema=SCHEMAS["p_measures"])


def compile_tables(policy: Policy) -> dict[str, pa.Table]:
    """The policy as relations for SQL."""
    doc = policy.doc
    rows: dict[str, list[Row]] = {name: [] for name in SCHEMAS}
    for code, t in sorted(doc.record_types.items()):
        valid = policy.duration(t.valid_for)
        rows["p_types"].append({"type": code, "agency": t.agency, "points": t.points or 0, "cap": t.cap_per_year,
                                "valid_months": valid.months if valid else None,
                                "valid_days": valid.days if valid else None})
        for name in t.lists:
            grace = policy.duration(doc.lists[name].grace) or Duration()
            rows["p_type_lists"].append({"type": code, "list": name, "grace_months": grace.months,
                                         "grace_days": grace.days})
        rows["p_resolves"].extend({"resolver": code, "target": target} for target in t.resolves)
    grades = doc.grades or []
    for rank, band in enumerate(grades):
        upper = grades[rank - 1].min if rank else None
        rows["p_grades"].append({"grade": band.grade, "rank": rank, "lo": band.min, "hi": upper})
    if not doc.scores:  # lists only: every score 0 in one band with no grade; none is stored (credo.scoring)
        rows["p_grades"].append({"grade": None, "rank": 0, "lo": -UNBOUNDED, "hi": None})
    rows["p_measures"] = measure_rows(doc)
    lo, hi = doc.score_bounds or (-UNBOUNDED, UNBOUNDED)
    rows["p_settings"].append({"base": doc.base_score or 0, "lo": lo, "hi": hi, "suspend": doc.disputed == "suspend"})
    return {name: pa.Table.from_pylist(rows[name], schema=schema) for name, schema in SCHEMAS.items()}

UNBOUNDED = 2**62
"""A lists-only policy's stand-in bounds: no score is clamped, and none is kept."""


def current(con: Any) -> Policy:
    """The policy in force: the latest applied version."""
    rows = con.execute(q("inputs.policy_current")).fetchall()
    if not rows:
        raise PolicyInvalid("no policy applied yet: run `credo init`", code="no_policy")
    policy = load(rows[0][1])
    policy.version = int(rows[0][0])
    return policy


def in_force(con: Any) -> list[Policy]:
    """The policy in force in each jurisdiction, oldest applied first (empty before `credo init`)."""
    rows = con.execute(q("inputs.policies_in_force")).fetchall()
    return [_versioned(document, version) for version, document in rows]


def _versioned(document: str, version: int) -> Policy:
    policy = load(document)
    policy.version = int(version)
    return policy


def save(con: Any, policy: Policy, *, by: str, now: Any) -> int:
    """Store a new version; the old ones stay, so past decisions still name theirs."""
    old = con.execute(q("inputs.policy_current")).fetchall()
    if old and old[0][2] != policy.tz:
        raise PolicyInvalid(f"timezone: the database keeps city time in {old[0][2]}; it cannot change",
                            details=[f"timezone: must stay {old[0][2]}"])
    version = int(con.execute(q("inputs.policy_insert"), {
        "name": policy.name, "document": policy.text, "sha256": policy.sha256, "timezone": policy.tz,
        "now": now, "by": by, "jurisdiction": policy.slot}).fetchall()[0][0])
    policy.version = version
    return version
