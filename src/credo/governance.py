"""Governance reports: what a proposed policy would change (what-if), and who fares worse (fairness).

Both are the scoring pipeline run on the real ledger, never a model of it: a policy's impact is
only credible if it is computed by the very SQL that would score residents once it applies. So
the what-if binds the pipeline twice at the same T on one snapshot of the store, first with the
policy in force and then with the proposed one, captures each run's standings, list memberships
and policy tables (``sql/governance.sql``, ``capture_*``), and compares them in SQL. Fairness
captures the policy in force once and measures outcomes by district, sex and age band.

District, sex and age band are read from the resident key here and nowhere else that decides
anything: the policy check refuses rules keyed on protected attributes, and these reports exist to
show whether a policy that never names them still treats groups unequally. A group is flagged by
the EEOC four-fifths rule: its favourable-outcome rate (not on a black list; not denied any action)
is below four-fifths of the best group's rate in the same dimension. Because favourable rates sit
near 1 when adverse outcomes are rare (2 % against 20 % black-listed is a ratio of 0.82, not
flagged), each group also carries ``risk_ratio``: its adverse rate over the best group's, shown
beside the flag but not a flag itself. Groups smaller than ``min_group`` are reported but neither
flagged nor taken as the best group: a rate over a handful of residents is noise, and one tiny
spotless group would otherwise flag everyone else. A flag names its drivers: the record types
that can cause the outcome and that the flagged group holds more often than the best group.

Nothing is written: the reports run on a cursor of their own, inside a transaction that is
always rolled back, with temporary tables only. The store, its standings included, is exactly as
before, and both captures read the same snapshot even while ingest commits. On Spark the same SQL
(translated by sqlglot) runs over the lake, or one snapshot of the store exported as Parquet. The
engines' side of this (``credo.engines.base.Reports``, on DuckDB and on Spark) is theirs; here is
only which runs to capture, which steps and reports to read, and what the rows mean.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from credo import ids, scoring, settings
from credo.engines.base import Reports
from credo.engines.duckdb import DuckDBGovernance
from credo.engines.spark import SparkGovernance, session
from credo.errors import CredoError, PolicyInvalid
from credo.policy import Policy
from credo.times import iso

IN_FORCE, PROPOSED = 0, 1
"""The ``side`` of a captured relation: which policy it was computed under."""

FOUR_FIFTHS = 0.8
OUTCOMES = {
    "not_black_listed": "share of residents on no black list in force",
    "not_denied": "share of residents denied no action",
}
ADVERSE = {"not_black_listed": "black_listed", "not_denied": "denied"}
"""Each favourable outcome's opposite, whose rate ``risk_ratio`` compares."""
DIMENSIONS = ("district", "sex", "age_band")
AGE_BANDS = ("0-17", "18-29", "30-44", "45-59", "60-74", "75+")

WHATIF_CAPTURES = ("standings", "held", "measures", "grades", "lists")
FAIRNESS_CAPTURES = (*WHATIF_CAPTURES, "counting")
WHATIF_STEPS = ("denials", "people", "moved", "list_moves", "denial_moves")
FAIRNESS_STEPS = ("denials", "people", "outcomes", "groups", "favourable", "best", "judged",
                  "type_holders", "outcome_types")

Row = dict[str, Any]


@dataclass(frozen=True)
class Params:
    """The reports' knobs, bound to the SQL as the one-row table ``params_in``."""

    sample: int = 5
    threshold: float = FOUR_FIFTHS
    min_group: int = 30
    driver_share: float = 0.1

    def table(self) -> pa.Table:
        return pa.table({"sample": pa.array([self.sample], pa.int64()),
                         "threshold": pa.array([self.threshold], pa.float64()),
                         "min_group": pa.array([self.min_group], pa.int64()),
                         "driver_share": pa.array([self.driver_share], pa.float64())})


def lists_table(policy: Policy) -> pa.Table:
    """The policy's lists and their kind: fairness needs to know which lists are black."""
    rows = [{"list": name, "kind": lst.kind} for name, lst in sorted(policy.doc.lists.items())]
    return pa.Table.from_pylist(rows, schema=pa.schema([("list", pa.string()), ("kind", pa.string())]))


def policy_tables(policy: Policy) -> dict[str, pa.Table]:
    """A capture's inputs: the policy's tables and its lists' kinds (``p_lists``)."""
    return {**policy.tables(), "p_lists": lists_table(policy)}


ENGINES = ("duckdb", "spark")


@contextmanager
def _seam(con: duckdb.DuckDBPyConnection, engine: str, params: Params) -> Iterator[Reports]:
    """The reports' engine: DuckDB on the store itself, or Spark on the lake or a snapshot of it."""
    if engine == "duckdb":
        with _session(con) as cur:
            yield DuckDBGovernance(cur, params.table())
    elif engine == "spark":
        with scoring.snapshot(con, settings.current().spark_lake) as (sources, _):
            seam = SparkGovernance(session(), sources, params.table())
            try:
                yield seam
            finally:
                seam.close()
    else:
        raise CredoError(f"engine must be one of {', '.join(ENGINES)}", code="bad_engine")


@contextmanager
def _session(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of its own in a transaction that is always rolled back: one snapshot, nothing kept.

    Its own cursor, because temporary views and registered tables belong to a connection: the
    reports rebind the scoring pipeline's names, which must not disturb the caller's binding.
    """
    cur = con.cursor()
    try:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        finally:
            cur.execute("ROLLBACK")
    finally:
        cur.close()


def _require_same_zone(in_force: Policy, proposed: Policy) -> None:
    """Times are stored as the city's wall clock, so a policy of another zone could never apply."""
    if proposed.tz != in_force.tz:
        raise PolicyInvalid(f"timezone: the database keeps city time in {in_force.tz}; it cannot change",
                            details=[f"timezone: must stay {in_force.tz}"])


# -- what-if -------------------------------------------------------------------------------------

def whatif(con: duckdb.DuckDBPyConnection, in_force: Policy, proposed: Policy, as_of: datetime,
           *, sample: int = 5, engine: str = "duckdb") -> dict[str, Any]:
    """The impact at ``as_of`` of replacing ``in_force`` by ``proposed``; nothing is applied or stored."""
    _require_same_zone(in_force, proposed)
    with _seam(con, engine, Params(sample=sample)) as seam:
        seam.capture(policy_tables(in_force), as_of, IN_FORCE, WHATIF_CAPTURES)
        seam.capture(policy_tables(proposed), as_of, PROPOSED, WHATIF_CAPTURES)
        seam.steps(WHATIF_STEPS)
        got = {name: seam.rows(f"whatif_{name}") for name in (
            "grades", "transitions", "lists", "list_samples", "denials", "benefits",
            "district_grades", "district_lists", "district_denials")}
    return whatif_report(got, in_force, proposed, as_of)


def whatif_report(got: dict[str, list[Row]], in_force: Policy, proposed: Policy,
                  as_of: datetime) -> dict[str, Any]:
    """The what-if's rows as one JSON document (see ``credo whatif --json``)."""
    ranks = [{r["grade"]: r["rank"] for r in got["grades"] if r["side"] == side}
             for side in (IN_FORCE, PROPOSED)]
    cells = sorted(got["transitions"], key=lambda r: (ranks[0].get(r["grade_before"], 99),
                                                      ranks[1].get(r["grade_after"], 99)))
    matrix: dict[str, dict[str, int]] = {g: {} for g in ranks[0]}
    for r in cells:
        matrix.setdefault(r["grade_before"], {})[r["grade_after"]] = r["residents"]
    transitions = {f"{r['grade_before']}->{r['grade_after']}": r["residents"]
                   for r in cells if r["grade_before"] != r["grade_after"]}
    before: dict[str, int] = dict.fromkeys(ranks[0], 0)
    after: dict[str, int] = dict.fromkeys(ranks[1], 0)
    for r in cells:
        before[r["grade_before"]] = before.get(r["grade_before"], 0) + r["residents"]
        after[r["grade_after"]] = after.get(r["grade_after"], 0) + r["residents"]
    return {
        "as_of": iso(as_of, in_force.tz),
        "policy": in_force.label,
        "proposed": {"policy": proposed.name, "sha256": proposed.sha256,
                     "warnings": [str(w) for w in proposed.warnings]},
        "residents": sum(before.values()),
        "residents_changed_grade": sum(transitions.values()),
        "transitions": transitions,
        "matrix": matrix,
        "grades": {"before": before, "after": after},
        "lists": _lists(got, in_force, proposed),
        "measures": _measures(got, in_force, proposed),
        "by_district": _districts(got),
    }


def _lists(got: dict[str, list[Row]], in_force: Policy, proposed: Policy) -> dict[str, Row]:
    kinds = {name: d.kind for p in (in_force, proposed) for name, d in p.doc.lists.items()}
    out: dict[str, Row] = {
        name: {"kind": kinds[name], "in_force": name in in_force.doc.lists,
               "proposed": name in proposed.doc.lists, "before": 0, "after": 0, "joined": 0, "left": 0,
               "sample_joined": [], "sample_left": []}
        for name in sorted(kinds)}
    for r in got["lists"]:
        out[r["list"]].update(before=r["held_before"], after=r["held_after"], joined=r["joined"],
                              left=r["left_list"])
    for r in got["list_samples"]:
        out[r["list"]][f"sample_{r['change']}"].append(ids.resident_id_from_key(r["resident"]))
    return out


def _measures(got: dict[str, list[Row]], in_force: Policy, proposed: Policy) -> dict[str, Row]:
    """Per action that any measure of either policy names: denials and benefits, before and after."""
    actions = sorted({m.action for m in in_force.doc.measures} | {m.action for m in proposed.doc.measures})
    out: dict[str, Row] = {a: {"denied_before": 0, "denied_after": 0, "delta": 0, "newly_denied": 0,
                               "no_longer_denied": 0, "benefits": {}} for a in actions}
    for r in got["denials"]:
        out[r["action"]].update(denied_before=r["denied_before"], denied_after=r["denied_after"],
                                delta=r["denied_after"] - r["denied_before"], newly_denied=r["newly_denied"],
                                no_longer_denied=r["no_longer_denied"])
    effects = {(a, m.effect) for p in (in_force, proposed) for m in p.doc.measures
               for a in [m.action] if m.effect != "deny"}
    for action, effect in sorted(effects):
        out[action]["benefits"][effect] = {"before": 0, "after": 0}
    for r in got["benefits"]:
        side = "after" if r["side"] == PROPOSED else "before"
        out[r["action"]]["benefits"][r["effect"]][side] = r["residents"]
    return out


def _districts(got: dict[str, list[Row]]) -> dict[str, Row]:
    out: dict[str, Row] = {}
    for r in sorted(got["district_grades"], key=lambda r: r["district"]):
        out[r["district"]] = {"residents": r["residents"], "changed_grade": r["changed_grade"],
                              "score_up": r["score_up"], "score_down": r["score_down"],
                              "lists": {}, "denied": {}}
    for r in sorted(got["district_lists"], key=lambda r: (r["district"], r["list"])):
        out[r["district"]]["lists"][r["list"]] = {"joined": r["joined"], "left": r["left_list"]}
    for r in sorted(got["district_denials"], key=lambda r: (r["district"], r["action"])):
        out[r["district"]]["denied"][r["action"]] = {"before": r["denied_before"], "after": r["denied_after"]}
    return out


# -- fairness ------------------------------------------------------------------------------------

def fairness(con: duckdb.DuckDBPyConnection, policy: Policy, as_of: datetime, *,
             min_group: int = 30, threshold: float = FOUR_FIFTHS, drivers: int = 3,
             engine: str = "duckdb") -> dict[str, Any]:
    """Outcomes under ``policy`` at ``as_of`` by district, sex and age band, with four-fifths flags."""
    with _seam(con, engine, Params(threshold=threshold, min_group=min_group)) as seam:
        seam.capture(policy_tables(policy), as_of, IN_FORCE, FAIRNESS_CAPTURES)
        seam.steps(FAIRNESS_STEPS)
        got = {name: seam.rows(f"fairness_{name}") for name in ("counts", "groups", "grades", "drivers")}
    return fairness_report(got, policy, as_of, min_group=min_group, threshold=threshold, drivers=drivers)


def _band_order(dimension: str, group: str) -> tuple[int, str]:
    return (AGE_BANDS.index(group) if dimension == "age_band" and group in AGE_BANDS else 0, group)


def fairness_report(got: dict[str, list[Row]], policy: Policy, as_of: datetime, *, min_group: int,
                    threshold: float, drivers: int) -> dict[str, Any]:
    """The fairness rows as one JSON document (see ``credo fairness --json``)."""
    ranks = {g.grade: i for i, g in enumerate(policy.doc.grades or [])}
    groups: dict[tuple[str, str], Row] = {}
    for r in got["counts"]:
        n = r["residents"]
        groups[(r["dimension"], r["grp"])] = {
            "group": r["grp"], "residents": n, "grades": {},
            "black_listed": r["black"], "black_list_rate": _rate(r["black"], n),
            "denied": r["denied"], "denial_rate": _rate(r["denied"], n),
            "favourable": {}, "impact_ratio": {}, "risk_ratio": {}, "flagged": [], "small": n < min_group}
    for r in sorted(got["grades"], key=lambda r: ranks.get(r["grade"], 99)):
        groups[(r["dimension"], r["grp"])]["grades"][r["grade"]] = r["residents"]
    flags: list[Row] = []
    for r in got["groups"]:
        g = groups[(r["dimension"], r["grp"])]
        g["favourable"][r["outcome"]] = _round(r["rate"])
        g["impact_ratio"][r["outcome"]] = _round(r["impact_ratio"])
        best_adverse = None if r["best_rate"] is None else 1.0 - r["best_rate"]
        risk = (1.0 - r["rate"]) / best_adverse if best_adverse else None
        g["risk_ratio"][ADVERSE[r["outcome"]]] = _round(risk)
        if r["flagged"]:
            g["flagged"].append(r["outcome"])
            flags.append({"dimension": r["dimension"], "group": r["grp"], "outcome": r["outcome"],
                          "rate": _round(r["rate"]), "best_group": r["best_grp"],
                          "best_rate": _round(r["best_rate"]), "impact_ratio": _round(r["impact_ratio"]),
                          "drivers": []})
    by_flag = {(f["dimension"], f["group"], f["outcome"]): f for f in flags}
    for r in got["drivers"]:
        f = by_flag[(r["dimension"], r["grp"], r["outcome"])]
        if len(f["drivers"]) < drivers:
            f["drivers"].append({"type": r["type"], "group_rate": _round(r["group_rate"]),
                                 "best_rate": _round(r["best_rate"]), "difference": _round(r["difference"]),
                                 "share_of_gap": _round(r["share_of_gap"])})
    overall = groups.pop(("all", "all"), None)
    if overall is not None:
        for key in ("group", "favourable", "impact_ratio", "risk_ratio", "flagged", "small"):
            overall.pop(key)
    dims: dict[str, list[Row]] = {d: [] for d in DIMENSIONS}
    for (dim, _), g in sorted(groups.items(), key=lambda kv: (kv[0][0], _band_order(*kv[0]))):
        dims[dim].append(g)
    flags.sort(key=lambda f: (DIMENSIONS.index(f["dimension"]), _band_order(f["dimension"], f["group"]),
                              f["outcome"]))
    return {
        "as_of": iso(as_of, policy.tz),
        "policy": policy.label,
        "rule": {"threshold": threshold, "min_group": min_group, "outcomes": OUTCOMES},
        "residents": overall["residents"] if overall else 0,
        "overall": overall,
        "dimensions": dims,
        "flags": flags,
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
