"""The policy: one YAML document turned into typed models, checked, and compiled to tables.

Loading collects every problem at once (pydantic's errors plus the semantic
check), each with its dotted path, so a policy author fixes a file in one pass.
The check refuses what would make a consequence unfair or unexplainable and
warns about what is legal but harsh. Compiling turns the policy into small
Arrow tables: scoring is SQL over data, never Python over rules.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from credo.errors import PolicyInvalid
from credo.sql import q
from credo.times import DEFAULT_TZ, Duration

CODE = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
NAME = r"^[a-z][a-z0-9-]*$"
EFFECTS = ("deny", "green_channel", "deposit_waiver", "discount", "fast_track")

PROTECTED = frozenset({
    "ethnicity", "ethnic", "race", "racial", "nationality", "religion", "religious", "faith", "belief", "beliefs",
    "political", "politics", "opinion", "opinions", "party", "sex", "sexual", "gender", "orientation", "health",
    "medical", "illness", "disease", "disability", "disabled", "pregnancy", "pregnant", "union", "unions",
    "genetic", "biometric", "speech", "social_media", "location",
})
"""Words that mark a rule keyed on a protected attribute or on data Credo never scores."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DurationText = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,4}[dmy]$", description="<n>d, <n>m or <n>y")]


class Grade(_Strict):
    grade: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9+-]*$")
    min: StrictInt


class RecordType(_Strict):
    agency: str = Field(pattern=NAME, description="the only agency that may submit this type")
    category: str
    points: StrictInt
    valid_for: DurationText | None = None
    cap_per_year: Annotated[int, Field(strict=True, gt=0)] | None = None
    lists: list[str] = []
    resolves: list[str] = []
    basis: str = Field(min_length=3, description="the legal basis under which the agency submits it")


class ListDef(_Strict):
    title: str
    kind: Literal["red", "black"]
    grace: DurationText | None = None


Names = list[str]  # a plain alias: inside Measure the field `list` shadows the builtin


class Measure(_Strict):
    list: str | None = None
    grades: Names | None = None
    action: str
    effect: Literal["deny", "green_channel", "deposit_waiver", "discount", "fast_track"]


class PolicyDoc(_Strict):
    """The policy file's schema; ``credo policy schema`` prints it as JSON Schema."""

    policy: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    timezone: str = DEFAULT_TZ
    base_score: StrictInt
    score_bounds: tuple[StrictInt, StrictInt]
    disputed: Literal["suspend", "count"] = "suspend"
    objection_deadline: DurationText = "15d"
    grades: list[Grade] = Field(min_length=1)
    record_types: dict[str, RecordType]
    lists: dict[str, ListDef] = {}
    actions: dict[str, str]
    measures: list[Measure] = []

    @field_validator("record_types", "lists", "actions")
    @classmethod
    def _codes(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not re.match(CODE, k)]
        if bad:
            raise ValueError(f"codes must be dotted lowercase words: {', '.join(bad)}")
        return value


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: Literal["refuse", "warn"] = "refuse"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


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

    def types_of(self, agency: str) -> list[str]:
        return sorted(c for c, t in self.doc.record_types.items() if t.agency == agency)

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
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [Problem("(document)", f"not valid YAML: {exc}")]
    if not isinstance(raw, dict):
        return None, [Problem("(document)", "must be a mapping of policy settings")]
    try:
        doc = PolicyDoc.model_validate(raw)
    except ValidationError as exc:
        return None, [_from_pydantic(e) for e in exc.errors()] + _protected(raw)
    problems = _semantic(doc) + _protected(raw)
    return Policy(doc, text, [p for p in problems if p.severity == "warn"]), problems


def schema() -> dict[str, Any]:
    return PolicyDoc.model_json_schema()


def _from_pydantic(err: Any) -> Problem:
    path = ".".join(str(p) for p in err["loc"]) or "(document)"
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "is required"
    elif err["type"] in ("int_type", "int_parsing"):
        msg = "must be an integer"
    return Problem(path, msg[0].lower() + msg[1:] if msg else msg)


def _words(text: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", text.lower())) | {text.lower()}


def _protected(raw: dict[str, Any]) -> list[Problem]:
    """Refuse any rule keyed on a protected attribute, wherever it hides in the codes."""
    found: list[Problem] = []
    places: list[tuple[str, str]] = []
    for code, body in (raw.get("record_types") or {}).items():
        places.append((f"record_types.{code}", str(code)))
        if isinstance(body, dict):
            places.append((f"record_types.{code}.category", str(body.get("category", ""))))
    for code, body in (raw.get("lists") or {}).items():
        places.append((f"lists.{code}", str(code)))
        if isinstance(body, dict):
            places.append((f"lists.{code}.title", str(body.get("title", ""))))
    for code in raw.get("actions") or {}:
        places.append((f"actions.{code}", str(code)))
    for path, text in places:
        hit = sorted(_words(text) & PROTECTED)
        if hit:
            found.append(Problem(path, f"keyed on a protected attribute ({', '.join(hit)})"))
    return found


def _semantic(doc: PolicyDoc) -> list[Problem]:
    out: list[Problem] = []
    lo, hi = doc.score_bounds
    if lo >= hi:
        out.append(Problem("score_bounds", "the lower bound must be below the upper bound"))
    if not lo <= doc.base_score <= hi:
        out.append(Problem("base_score", f"must lie within score_bounds [{lo}, {hi}]"))
    out += _check_grades(doc)
    grade_names = {g.grade for g in doc.grades}
    for code, t in doc.record_types.items():
        out += _check_type(doc, code, t)
    for i, m in enumerate(doc.measures):
        path = f"measures.{i}"
        if (m.list is None) == (m.grades is None):
            out.append(Problem(path, "needs exactly one of list or grades"))
        if m.list is not None and m.list not in doc.lists:
            out.append(Problem(f"{path}.list", f"unknown list {m.list!r}"))
        for g in m.grades or []:
            if g not in grade_names:
                out.append(Problem(f"{path}.grades", f"unknown grade {g!r}"))
        if m.action not in doc.actions:
            out.append(Problem(f"{path}.action", f"unknown action {m.action!r}"))
    for name, lst in doc.lists.items():
        out += _check_list(doc, name, lst)
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(doc.timezone)
    except Exception:
        out.append(Problem("timezone", f"unknown time zone {doc.timezone!r}"))
    return out


def _check_grades(doc: PolicyDoc) -> list[Problem]:
    out: list[Problem] = []
    mins = [g.min for g in doc.grades]
    if any(a <= b for a, b in pairwise(mins)):
        out.append(Problem("grades", "bands must be listed highest first, each min strictly below the one before"))
    if mins and mins[-1] > doc.score_bounds[0]:
        lowest = doc.score_bounds[0]
        out.append(Problem("grades", f"the lowest band's min must be at most {lowest}: some scores get no grade"))
    names = [g.grade for g in doc.grades]
    if len(set(names)) != len(names):
        out.append(Problem("grades", "grade names must be unique"))
    return out


def _check_type(doc: PolicyDoc, code: str, t: RecordType) -> list[Problem]:
    path = f"record_types.{code}"
    out: list[Problem] = []
    for name in t.lists:
        if name not in doc.lists:
            out.append(Problem(f"{path}.lists", f"unknown list {name!r}"))
    for target in t.resolves:
        other = doc.record_types.get(target)
        if other is None:
            out.append(Problem(f"{path}.resolves", f"unknown record type {target!r}"))
        elif other.agency != t.agency:
            out.append(Problem(f"{path}.resolves", f"{target!r} belongs to another agency ({other.agency})"))
    if not t.basis.strip():
        out.append(Problem(f"{path}.basis", "is required: name the legal basis"))
    if t.points < 0 and t.valid_for is None:
        out.append(Problem(f"{path}.valid_for", "a negative type with no valid_for is a lifelong penalty", "warn"))
    return out


def _check_list(doc: PolicyDoc, name: str, lst: ListDef) -> list[Problem]:
    feeders = [(c, t) for c, t in doc.record_types.items() if name in t.lists]
    if lst.kind != "black":
        return []
    resolvable = {target for t in doc.record_types.values() for target in t.resolves}
    trapped = [c for c, t in feeders if t.valid_for is None and c not in resolvable]
    if not trapped:
        return []
    why = f"no way to leave this black list: {', '.join(trapped)} never expire and nothing resolves them"
    return [Problem(f"lists.{name}", why, "warn")]


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


def compile_tables(policy: Policy) -> dict[str, pa.Table]:
    """The policy as relations for SQL."""
    doc = policy.doc
    rows: dict[str, list[Row]] = {name: [] for name in SCHEMAS}
    for code, t in sorted(doc.record_types.items()):
        valid = policy.duration(t.valid_for)
        rows["p_types"].append({"type": code, "agency": t.agency, "points": t.points, "cap": t.cap_per_year,
                                "valid_months": valid.months if valid else None,
                                "valid_days": valid.days if valid else None})
        for name in t.lists:
            grace = policy.duration(doc.lists[name].grace) or Duration()
            rows["p_type_lists"].append({"type": code, "list": name, "grace_months": grace.months,
                                         "grace_days": grace.days})
        rows["p_resolves"].extend({"resolver": code, "target": target} for target in t.resolves)
    for rank, band in enumerate(doc.grades):
        upper = doc.grades[rank - 1].min if rank else None
        rows["p_grades"].append({"grade": band.grade, "rank": rank, "lo": band.min, "hi": upper})
    for m in doc.measures:
        keys = [(m.list, None)] if m.list else [(None, g) for g in m.grades or []]
        rows["p_measures"].extend({"action": m.action, "list": lst, "grade": grade, "effect": m.effect}
                                  for lst, grade in keys)
    rows["p_settings"].append({"base": doc.base_score, "lo": doc.score_bounds[0], "hi": doc.score_bounds[1],
                               "suspend": doc.disputed == "suspend"})
    return {name: pa.Table.from_pylist(rows[name], schema=schema) for name, schema in SCHEMAS.items()}

def current(con: Any) -> Policy:
    """The policy in force: the latest applied version."""
    rows = con.execute(q("inputs.policy_current")).fetchall()
    if not rows:
        raise PolicyInvalid("no policy applied yet: run `credo init`", code="no_policy")
    policy = load(rows[0][1])
    policy.version = int(rows[0][0])
    return policy


def save(con: Any, policy: Policy, *, by: str, now: Any) -> int:
    """Store a new version; the old ones stay, so past decisions still name theirs."""
    old = con.execute(q("inputs.policy_current")).fetchall()
    if old and old[0][2] != policy.tz:
        raise PolicyInvalid(f"timezone: the database keeps city time in {old[0][2]}; it cannot change",
                            details=[f"timezone: must stay {old[0][2]}"])
    version = int(con.execute(q("inputs.policy_insert"), {
        "name": policy.name, "document": policy.text, "sha256": policy.sha256, "timezone": policy.tz,
        "now": now, "by": by}).fetchall()[0][0])
    policy.version = version
    return version
