"""The policy check (lint): every problem of a policy, structural and semantic, in one pass.

Refusals make a consequence unfair or unexplainable (an unknown list, grades out of order, a rule
keyed on a protected attribute, a type with no legal basis); warnings are legal but harsh (a
lifelong penalty, a black list with no way out). When the document does not even fit the schema,
the items that do not are set aside and the semantic checks still run on the rest, so an author
sees a missing key and an unknown list together instead of one after the other; a semantic
problem that only names an item set aside is not repeated.
"""

from __future__ import annotations

import copy
import re
import zoneinfo
from itertools import pairwise
from typing import Any

from pydantic import ValidationError

from credo.deadlines import Deadline, calendar_ends
from credo.policydoc import DEADLINES, Grade, ListDef, Measure, PolicyDoc, Problem, RecordType

PROTECTED = frozenset({
    "ethnicity", "ethnic", "race", "racial", "nationality", "religion", "religious", "faith", "belief", "beliefs",
    "political", "politics", "opinion", "opinions", "party", "sex", "sexual", "gender", "orientation", "health",
    "medical", "illness", "disease", "disability", "disabled", "pregnancy", "pregnant", "union", "unions",
    "genetic", "biometric", "speech", "social_media", "location",
})
"""Words that mark a rule keyed on a protected attribute or on data Credo never scores."""



_KEYED = ("record_types", "lists", "actions")
_LISTED = ("grades", "measures")
_PLACEHOLDER: dict[str, Any] = {"policy": "unnamed", "base_score": 0, "score_bounds": [0, 1],
                                "grades": [{"grade": "A", "min": 0}], "record_types": {}, "actions": {}}
"""Stand-ins for top-level settings that failed the schema, so the rest can still be checked."""
_DEPENDS = {"base_score": ("base_score",), "score_bounds": ("base_score", "score_bounds", "grades"),
            "grades": ("grades", "measures"), "timezone": ("timezone",)}
"""A stand-in's semantic findings are not the author's: the paths whose problems it would cause."""


def check(raw: dict[str, Any]) -> tuple[PolicyDoc | None, list[Problem]]:
    """The document (None when it does not fit the schema) and every problem found in it."""
    try:
        doc = PolicyDoc.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        structural = [_from_pydantic(e) for e in errors]
        return None, structural + _salvaged(raw, errors) + _protected(raw)
    return doc, _semantic(doc) + _protected(raw)


def _salvaged(raw: dict[str, Any], errors: list[Any]) -> list[Problem]:
    """The semantic problems of what is left once the items that failed the schema are set aside."""
    doc = copy.deepcopy(raw)
    names: set[str] = set()
    quiet: set[str] = set()
    listed: dict[str, set[int]] = {}
    for e in errors:
        loc = e["loc"]
        top = str(loc[0]) if loc else ""
        if len(loc) >= 2 and top in _KEYED and isinstance(doc.get(top), dict):
            names.add(str(loc[1]))
            doc[top].pop(loc[1], None)
        elif len(loc) >= 2 and top in _LISTED and isinstance(loc[1], int):
            listed.setdefault(top, set()).add(loc[1])
            quiet.add(f"{top}.{loc[1]}")
        elif top:
            doc[top] = copy.deepcopy(_PLACEHOLDER.get(top, {} if top in _KEYED else None))
            if doc[top] is None:
                del doc[top]
            quiet.update(_DEPENDS.get(top, (top,)))
    for top, drop in listed.items():
        if isinstance(doc.get(top), list):
            doc[top] = [item for i, item in enumerate(doc[top]) if i not in drop]
    try:
        partial = PolicyDoc.model_validate(doc)
    except ValidationError:
        return []
    return [p for p in _semantic(partial)
            if not any(repr(n) in p.message for n in names)
            and not any(p.path == q or p.path.startswith(q + ".") for q in quiet)]


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
    out = _check_scoring(doc)
    if doc.base_score is not None and doc.score_bounds is not None:
        lo, hi = doc.score_bounds
        if lo >= hi:
            out.append(Problem("score_bounds", "the lower bound must be below the upper bound"))
        if not lo <= doc.base_score <= hi:
            out.append(Problem("base_score", f"must lie within score_bounds [{lo}, {hi}]"))
    if doc.grades is not None and doc.score_bounds is not None:
        out += _check_grades(doc, doc.grades, doc.score_bounds[0])
    grade_names = {g.grade for g in doc.grades or []}
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
        out += _check_purpose(doc, path, m)
    for name, lst in doc.lists.items():
        out += _check_list(doc, name, lst)
    out += _check_deadlines(doc)
    out += _check_regions(doc)
    try:
        zoneinfo.ZoneInfo(doc.timezone)
    except Exception:
        out.append(Problem("timezone", f"unknown time zone {doc.timezone!r}"))
    return out


def _check_scoring(doc: PolicyDoc) -> list[Problem]:
    """A policy scores with all of base_score, score_bounds, grades and points on every type, or gives lists
    only with none of them (spec §9)."""
    if not doc.scores:
        return [Problem(f"record_types.{code}.points", "a policy without base_score, score_bounds and grades "
                        "gives lists only: leave points out") for code, t in doc.record_types.items()
                if t.points is not None]
    out = [Problem(name, "is required: a policy that scores gives base_score, score_bounds and grades")
           for name in ("base_score", "score_bounds", "grades") if getattr(doc, name) is None]
    out += [Problem(f"record_types.{code}.points", "is required in a policy that scores")
            for code, t in doc.record_types.items() if t.points is None]
    return out


def _check_grades(doc: PolicyDoc, grades: list[Grade], lowest: int) -> list[Problem]:
    out: list[Problem] = []
    mins = [g.min for g in grades]
    if any(a <= b for a, b in pairwise(mins)):
        out.append(Problem("grades", "bands must be listed highest first, each min strictly below the one before"))
    if mins and mins[-1] > lowest:
        out.append(Problem("grades", f"the lowest band's min must be at most {lowest}: some scores get no grade"))
    names = [g.grade for g in grades]
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
    if t.points is not None and t.points < 0 and t.valid_for is None:
        out.append(Problem(f"{path}.valid_for", "a negative type with no valid_for is a lifelong penalty", "warn"))
    return out


def _check_purpose(doc: PolicyDoc, path: str, m: Measure) -> list[Problem]:
    """Purpose binding (spec §4): a list made for one purpose may not deny in an unrelated context."""
    lst = doc.lists.get(m.list) if m.list is not None else None
    if lst is None or lst.kind != "black" or m.effect != "deny" or lst.restricts is None:
        return []
    if lst.may_restrict(m.action):
        return []
    allowed = ", ".join(lst.restricts)
    return [Problem(f"{path}.action", f"list {m.list!r} may not restrict {m.action!r}: its purpose is {allowed}")]


def _check_list(doc: PolicyDoc, name: str, lst: ListDef) -> list[Problem]:
    if lst.kind != "black":
        return [Problem(f"lists.{name}.restricts", "only a black list restricts actions")] if lst.restricts else []
    out = []
    if not lst.restricts:
        why = "a black list must name the actions its legal basis lets it restrict"
        out.append(Problem(f"lists.{name}.restricts", why))
    resolvable = {target for t in doc.record_types.values() for target in t.resolves}
    trapped = [c for c, t in doc.record_types.items()
               if name in t.lists and t.valid_for is None and c not in resolvable]
    if trapped:
        why = f"no way to leave this black list: {', '.join(trapped)} never expire and nothing resolves them"
        out.append(Problem(f"lists.{name}", why, "warn"))
    return out


def _check_regions(doc: PolicyDoc) -> list[Problem]:
    """A jurisdiction's own regions: none given is written by leaving ``regions`` out, and a prefix once."""
    regions = doc.jurisdiction.regions if doc.jurisdiction else None
    if regions is None:
        return []
    if not regions:
        return [Problem("jurisdiction.regions", "is empty: leave regions out for a jurisdiction holding everyone")]
    twice = sorted({r for r in regions if regions.count(r) > 1})
    return [Problem("jurisdiction.regions", f"region {r!r} is given twice") for r in twice]


def _check_deadlines(doc: PolicyDoc) -> list[Problem]:
    """Warn where a deadline counts working days: past the official calendar's last known year the days
    are counted Monday to Friday (and shown as estimated), which an author should know before it bites."""
    out = []
    for name in DEADLINES:  # as written: a default (correction_deadline's 3wd) is the documented one
        if name in doc.model_fields_set and Deadline.parse(getattr(doc, name)).working_days:
            why = (f"working days are counted on China's official calendar, known up to {calendar_ends()}; "
                   "a deadline past it counts Monday to Friday and is marked estimated")
            out.append(Problem(name, why, "warn"))
    return out
