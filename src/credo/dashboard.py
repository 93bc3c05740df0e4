"""What the operator's dashboard shows, as plain data: aggregates over the city, read in SQL.

Why a module of its own: the web page only draws; these numbers are the ones a test
compares with what the API says about each resident, so they are computed once, here,
from the same stored standings the API serves (``sql/dashboard.sql``). The caller
(``Credo.dashboard``) first rescores every standing that stopped being true by itself,
so no aggregate counts a resident as the store said before their ``changes_at``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb

from credo import objections, review
from credo.policy import Policy
from credo.sql import q
from credo.times import iso

NICE_WIDTHS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
MAX_BINS = 40
"""The histogram uses the narrowest of ``NICE_WIDTHS`` that spans the scores in at most this many bins."""

Row = dict[str, Any]


def _rows(con: duckdb.DuckDBPyConnection, ref: str, params: dict[str, Any] | None = None) -> list[Row]:
    cur = con.execute(q(ref), params or {})
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def bin_width(lo: int, hi: int) -> int:
    """The narrowest nice width that covers ``[lo, hi]`` in at most ``MAX_BINS`` bins."""
    for width in NICE_WIDTHS:
        if hi // width - lo // width + 1 <= MAX_BINS:
            return width
    return NICE_WIDTHS[-1]


def scores(con: duckdb.DuckDBPyConnection, policy: Policy) -> Row:
    """Summary, histogram (every bin from the lowest to the highest, empty ones too) and grade bands."""
    summary = _rows(con, "dashboard.score_summary")[0]
    bands = [{"grade": g.grade, "min": g.min} for g in policy.doc.grades or []]
    if not summary["residents"]:
        return {**summary, "width": 0, "bins": [], "bands": bands}
    width = bin_width(summary["lo"], summary["hi"])
    counts = {r["lo"]: r["residents"] for r in _rows(con, "dashboard.score_bins", {"width": width})}
    first, last = summary["lo"] // width * width, summary["hi"] // width * width
    bins = [{"lo": lo, "hi": lo + width - 1, "residents": counts.get(lo, 0)}
            for lo in range(first, last + 1, width)]
    return {**summary, "width": width, "bins": bins, "bands": bands}


def grades(con: duckdb.DuckDBPyConnection, policy: Policy) -> Row:
    """Residents by grade, overall and by district, in the policy's order (highest grade first)."""
    order = [g.grade for g in policy.doc.grades or []]
    overall = {r["grade"]: r["residents"] for r in _rows(con, "dashboard.grades")}
    districts: dict[str, dict[str, int]] = {}
    for r in _rows(con, "dashboard.grades_by_district"):
        districts.setdefault(r["district"], dict.fromkeys(order, 0))[r["grade"]] = r["residents"]
    return {"order": order, "overall": {g: overall.get(g, 0) for g in order},
            "by_district": [{"district": d, "grades": g, "residents": sum(g.values())}
                            for d, g in sorted(districts.items())]}


def lists(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime) -> list[Row]:
    """Every list of the policy with the residents it holds now and those pending on it."""
    sizes = {r["list"]: r for r in _rows(con, "dashboard.list_sizes", {"now": now})}
    empty = {"in_force": 0, "pending": 0}
    return [{"list": name, "title": d.title, "kind": d.kind, "grace": d.grace,
             "in_force": sizes.get(name, empty)["in_force"], "pending": sizes.get(name, empty)["pending"]}
            for name, d in policy.doc.lists.items()]


def decisions(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime, days: int) -> Row:
    """Decisions and denials per city-time day and action over the ``days`` days up to today."""
    today = now.date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time())
    until = datetime.combine(today + timedelta(days=1), time())
    day_list = [first + timedelta(days=i) for i in range(days)]
    actions: dict[str, dict[date, dict[str, int]]] = {}
    for r in _rows(con, "dashboard.decisions_per_day", {"since": since, "until": until}):
        per_day = actions.setdefault(r["action"], {d: {"allow": 0, "deny": 0} for d in day_list})
        per_day[r["day"]][r["decision"]] = r["decisions"]
    out = []
    for action in sorted(actions):
        per_day = actions[action]
        out.append({"action": action, "title": policy.doc.actions.get(action, action),
                    "decisions": sum(v["allow"] + v["deny"] for v in per_day.values()),
                    "denied": sum(v["deny"] for v in per_day.values()),
                    "days": [{"day": d.isoformat(), **per_day[d]} for d in day_list]})
    return {"from": first.isoformat(), "to": today.isoformat(), "days": days, "actions": out}


def objection_summary(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime, limit: int) -> Row:
    """Open and overdue objections by agency, and the unresolved ones themselves (overdue first)."""
    every = objections.listing(con, policy, now)
    unresolved = [o for o in every if o["status"] in ("open", "overdue")]
    by_agency: dict[str, dict[str, int]] = {}
    for o in unresolved:
        counts = by_agency.setdefault(o["agency"], {"open": 0, "overdue": 0})
        counts["open"] += 1
        counts["overdue"] += o["status"] == "overdue"
    return {"open": len(unresolved), "overdue": sum(o["status"] == "overdue" for o in unresolved),
            "resolved": len(every) - len(unresolved), "deadline": policy.doc.objection_deadline,
            "by_agency": [{"agency": a, **c} for a, c in sorted(by_agency.items())],
            "unresolved": unresolved[:limit]}


def rejects(con: duckdb.DuckDBPyConnection) -> Row:
    rows = _rows(con, "dashboard.rejects_by_reason")
    return {"total": sum(r["n"] for r in rows), "by_reason": rows}


def policy_summary(con: duckdb.DuckDBPyConnection, policy: Policy) -> Row:
    applied = (_rows(con, "dashboard.policy_applied", {"version": policy.version})
               or [{"applied_at": None, "applied_by": None}])[0]
    return {"label": policy.label, "name": policy.name, "version": policy.version, "sha256": policy.sha256,
            "timezone": policy.tz, "applied_at": iso(applied["applied_at"], policy.tz),
            "applied_by": applied["applied_by"],
            "record_types": len(policy.doc.record_types), "lists": len(policy.doc.lists),
            "actions": len(policy.doc.actions), "measures": len(policy.doc.measures),
            "disputed": policy.doc.disputed, "warnings": [str(w) for w in policy.warnings],
            "text": policy.text}


def overview(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime, *, days: int = 30,
             objections_shown: int = 50) -> Row:
    """Everything the dashboard shows, at ``now``."""
    return {"as_of": iso(now, policy.tz), "scores": scores(con, policy), "grades": grades(con, policy),
            "lists": lists(con, policy, now), "decisions": decisions(con, policy, now, days),
            "objections": objection_summary(con, policy, now, objections_shown), "rejects": rejects(con),
            "redress": redress_summary(con, policy, now), "policy": policy_summary(con, policy),
            "review": review.summary(con, policy, now)}


REDRESS_OLD_DAYS = 3
"""An item that has needed redress for longer than this many days is shown as old (spec §8: the SPC
removes a debtor from the list within three working days)."""


def redress_summary(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime) -> Row:
    """Decisions that need redress, by the provider told: how many, the oldest, how many are old."""
    rows = _rows(con, "redress.open_by_provider", {"now": now, "old_days": REDRESS_OLD_DAYS})
    by = [{**r, "oldest": iso(r["oldest"], policy.tz), "oldest_days": (now - r["oldest"]).days} for r in rows]
    return {"open": sum(r["open"] for r in rows), "old": sum(r["old"] for r in rows), "old_days": REDRESS_OLD_DAYS,
            "by_provider": by}


def accesses(con: duckdb.DuckDBPyConnection, resident: int, tz: str, limit: int) -> Row:
    """The latest audit entries about one resident, newest first, and how many there are in all."""
    total = _rows(con, "dashboard.resident_access_count", {"resident": resident})[0]["n"]
    rows = _rows(con, "dashboard.resident_accesses", {"resident": resident, "limit": limit})
    return {"total": total, "entries": [{**r, "logged_at": iso(r["logged_at"], tz)} for r in rows]}
