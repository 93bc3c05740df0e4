"""What-if and fairness (issue 9) on hand-built ledgers whose answers are worked out by hand.

Each ledger is inserted straight into a real store (``credo.store.connect``) under a small policy
applied through ``Credo.apply_policy``, so the reports run on the same tables and scoring SQL as in
production, without depending on ingest. The comments beside each resident give the scores the
expected numbers come from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from credo import governance, ids
from credo import policy as policies
from credo.cli import app
from credo.engines.dialect import to_spark
from credo.errors import CredoError, PolicyInvalid
from credo.service import Credo
from credo.sql import statements
from tests.fixtures import POLICIES

T = datetime(2024, 9, 1, 12, 0)
NOW = "2024-09-01T12:00:00+08:00"
NORTH, SOUTH, WEST = "110105", "310101", "440106"

POLICY_A = (POLICIES / "gov-a.yaml").read_text(encoding="utf-8")

# Harsher on court defaults but shorter (-110 for 3y), tax arrears moved onto the debtors list,
# the tax list dropped, debtors denied trains too, grade D denied administrative approval.
POLICY_B = (POLICIES / "gov-b.yaml").read_text(encoding="utf-8")


def key(region: str, born: date, seq: int) -> int:
    return ids.resident_key(ids.make_resident_id(region, born, seq))


class City:
    """A store under test: residents and records go straight into its tables."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.credo = Credo.open(path)
        self.con = self.credo.con
        self.credo.apply_policy(POLICY_A)
        self._n = 0

    def resident(self, region: str, born: date = date(1990, 5, 1), *, male: bool = True) -> int:
        self._n += 1
        k = key(region, born, self._n * 2 + (1 if male else 0))
        self.con.execute("INSERT INTO residents VALUES (?, 'Test', ?, 'active', NULL, ?, 0)", [k, region, T])
        return k

    def record(self, resident: int, type_: str, occurred: datetime) -> None:
        self._n += 1
        agency = type_.split(".")[0]
        self.con.execute("INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, 0)",
                         [agency, f"r{self._n}", type_, resident, rid(resident), occurred])

    def tables(self) -> dict[str, Any]:
        """Every table of the store, whole: the store 'is exactly as before' means this is equal."""
        names = [r[0] for r in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY table_name").fetchall()]
        return {n: sorted(self.con.execute(f"SELECT * FROM {n}").fetchall(), key=repr) for n in names}


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[City]:
    monkeypatch.setenv("CREDO_NOW", NOW)
    c = City(tmp_path / "gov.duckdb")
    yield c
    c.credo.close()


@pytest.fixture
def six(city: City) -> dict[str, int]:
    """Six residents whose standings under A and B are worked out in the comments."""
    r = {name: city.resident(region) for name, region in
         [("r1", NORTH), ("r2", NORTH), ("r6", NORTH), ("r3", SOUTH), ("r4", SOUTH), ("r5", SOUTH)]}
    city.record(r["r1"], "court.default", datetime(2024, 1, 10))     # A: 940 B, debtors  B: 890 D, debtors
    city.record(r["r2"], "tax.arrears", datetime(2024, 2, 1))        # A: 970 B, tax      B: 970 B, debtors
    city.record(r["r6"], "court.default", datetime(2020, 10, 1))     # A: 940 B, debtors  B: expired, 1000 A
    city.record(r["r4"], "volunteer.service", datetime(2024, 3, 1))  # A: 1010 A          B: 1010 A
    city.record(r["r5"], "court.default", datetime(2024, 4, 1))      # A: 950 B, debtors  B: 900 C, debtors
    city.record(r["r5"], "volunteer.service", datetime(2024, 4, 2))  # r3 has nothing: 1000 A under both
    city.credo.score(T)
    return r


def rid(k: int) -> str:
    return ids.resident_id_from_key(k)


# -- what-if -------------------------------------------------------------------------------------

def test_whatif_transitions(city: City, six: dict[str, int]) -> None:
    w = city.credo.whatif(POLICY_B, T)
    assert w["residents"] == 6
    assert w["residents_changed_grade"] == 3
    assert w["transitions"] == {"B->A": 1, "B->C": 1, "B->D": 1}
    assert w["matrix"] == {"A": {"A": 2}, "B": {"A": 1, "B": 1, "C": 1, "D": 1}, "C": {}, "D": {}}
    assert w["grades"] == {"before": {"A": 2, "B": 4, "C": 0, "D": 0},
                           "after": {"A": 3, "B": 1, "C": 1, "D": 1}}
    assert w["policy"] == "gov-a@1" and w["proposed"]["policy"] == "gov-b"


def test_whatif_lists_join_and_leave(city: City, six: dict[str, int]) -> None:
    lists = city.credo.whatif(POLICY_B, T)["lists"]
    assert lists["debtors"] == {"kind": "black", "in_force": True, "proposed": True, "before": 3, "after": 3,
                                "joined": 1, "left": 1, "sample_joined": [rid(six["r2"])],
                                "sample_left": [rid(six["r6"])]}
    assert lists["tax_defaulters"] == {"kind": "black", "in_force": True, "proposed": False, "before": 1,
                                       "after": 0, "joined": 0, "left": 1, "sample_joined": [],
                                       "sample_left": [rid(six["r2"])]}


def test_whatif_denials_and_benefits(city: City, six: dict[str, int]) -> None:
    m = city.credo.whatif(POLICY_B, T)["measures"]
    assert m["flight.book"] == {"denied_before": 3, "denied_after": 3, "delta": 0, "newly_denied": 1,
                                "no_longer_denied": 1, "benefits": {}}
    assert m["rail.book"] == {"denied_before": 1, "denied_after": 3, "delta": 2, "newly_denied": 2,
                              "no_longer_denied": 0, "benefits": {}}
    assert m["admin.approval"] == {"denied_before": 0, "denied_after": 1, "delta": 1, "newly_denied": 1,
                                   "no_longer_denied": 0,
                                   "benefits": {"green_channel": {"before": 2, "after": 3}}}


def test_whatif_by_district(city: City, six: dict[str, int]) -> None:
    d = city.credo.whatif(POLICY_B, T)["by_district"]
    assert d[NORTH] == {
        "residents": 3, "changed_grade": 2, "score_up": 1, "score_down": 1,
        "lists": {"debtors": {"joined": 1, "left": 1}, "tax_defaulters": {"joined": 0, "left": 1}},
        "denied": {"admin.approval": {"before": 0, "after": 1}, "flight.book": {"before": 2, "after": 2},
                   "rail.book": {"before": 1, "after": 2}}}
    assert d[SOUTH] == {"residents": 3, "changed_grade": 1, "score_up": 0, "score_down": 1, "lists": {},
                        "denied": {"flight.book": {"before": 1, "after": 1},
                                   "rail.book": {"before": 0, "after": 1}}}


def test_whatif_of_the_policy_in_force_changes_nothing(city: City, six: dict[str, int]) -> None:
    w = city.credo.whatif(POLICY_A, T)
    assert w["residents_changed_grade"] == 0 and w["transitions"] == {}
    assert all(v["joined"] == v["left"] == 0 for v in w["lists"].values())
    assert all(v["denied_before"] == v["denied_after"] and v["newly_denied"] == 0
               for v in w["measures"].values())


def test_whatif_counts_lists_in_force_not_pending(city: City) -> None:
    """A grace period makes a fresh record's list pending, not in force: the denial goes, the grade stays."""
    k = city.resident(NORTH)
    city.record(k, "court.default", datetime(2024, 8, 25))
    graced = POLICY_A.replace("debtors: {title: Debtors, kind: black, restricts: [flight.*, rail.*]}",
                              "debtors: {title: Debtors, kind: black, restricts: [flight.*, rail.*], grace: 30d}")
    w = city.credo.whatif(graced, T)
    assert w["residents_changed_grade"] == 0
    assert w["lists"]["debtors"]["left"] == 1 and w["lists"]["debtors"]["after"] == 0
    assert w["measures"]["flight.book"]["no_longer_denied"] == 1


def test_whatif_writes_nothing(city: City, six: dict[str, int]) -> None:
    """Nothing but the audit log changes: one entry per report run, chained on."""
    before = city.tables()
    assert before["standings"] and before["standing_hits"]
    city.credo.whatif(POLICY_B, T)
    city.credo.fairness(T, min_group=1)
    after = city.tables()
    logged = after.pop("audit")[len(before.pop("audit")):]
    assert [row[4] for row in logged] == ["read.report", "read.report"]
    assert {k: v for k, v in after.items() if k != "meta"} == {k: v for k, v in before.items() if k != "meta"}
    assert city.credo.verify_audit().ok
    temps = city.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert not [t for (t,) in temps if t.startswith("gov_")]
    assert city.credo.policy.label == "gov-a@1"


def test_whatif_refuses_another_time_zone(city: City) -> None:
    with pytest.raises(PolicyInvalid, match="timezone"):
        city.credo.whatif(POLICY_B.replace("Asia/Shanghai", "Europe/Paris"), T)


# -- fairness ------------------------------------------------------------------------------------

def _people(city: City, region: str, n: int, debtors: int, *, born: date = date(1990, 5, 1)) -> list[int]:
    """``n`` residents of ``region``, alternately male and female; the first ``debtors`` are court debtors."""
    keys = [city.resident(region, born, male=i % 2 == 0) for i in range(n)]
    for k in keys[:debtors]:
        city.record(k, "court.default", datetime(2024, 1, 10))
    return keys


def _group(report: dict[str, Any], dimension: str, group: str) -> dict[str, Any]:
    return next(g for g in report["dimensions"][dimension] if g["group"] == group)


def test_fairness_flags_a_constructed_disparity(city: City) -> None:
    _people(city, NORTH, 10, 6)      # 6 of 10 on the debtors list: favourable 0.4
    south = _people(city, SOUTH, 10, 0)
    city.record(south[0], "volunteer.service", datetime(2024, 3, 1))
    f = city.credo.fairness(T, min_group=5)
    north = _group(f, "district", NORTH)
    assert north["black_list_rate"] == 0.6 and north["denial_rate"] == 0.6
    assert north["grades"] == {"A": 4, "B": 6}
    assert north["impact_ratio"] == {"not_black_listed": 0.4, "not_denied": 0.4}
    assert sorted(north["flagged"]) == ["not_black_listed", "not_denied"]
    assert _group(f, "district", SOUTH)["flagged"] == []
    # 3 of 10 men and 3 of 10 women are debtors; everyone is in one age band: no other flag
    assert [(x["dimension"], x["group"], x["outcome"]) for x in f["flags"]] == [
        ("district", NORTH, "not_black_listed"), ("district", NORTH, "not_denied")]
    for flag in f["flags"]:
        assert flag["best_group"] == SOUTH and flag["best_rate"] == 1.0 and flag["rate"] == 0.4
        assert flag["drivers"] == [{"type": "court.default", "group_rate": 0.6, "best_rate": 0.0,
                                    "difference": 0.6, "share_of_gap": 1.0}]
    assert f["overall"]["residents"] == 20 and f["overall"]["black_listed"] == 6


def test_fairness_drivers_leave_out_small_differences(city: City) -> None:
    north = _people(city, NORTH, 40, 20)     # favourable 0.5 against 1.0: a gap of 0.5
    _people(city, SOUTH, 40, 0)
    city.record(north[0], "tax.arrears", datetime(2024, 2, 1))  # 0.025 more than SOUTH: 5 % of the gap
    f = city.credo.fairness(T, min_group=5)
    assert f["flags"] and all([d["type"] for d in x["drivers"]] == ["court.default"] for x in f["flags"])


def test_fairness_risk_ratio_shows_what_four_fifths_misses(city: City) -> None:
    _people(city, NORTH, 50, 10)             # 20 % black-listed: favourable 0.8 against 0.98 is 0.816
    _people(city, SOUTH, 50, 1)              # 2 %
    f = city.credo.fairness(T, min_group=5)
    assert f["flags"] == []
    assert _group(f, "district", NORTH)["risk_ratio"] == {"black_listed": 10.0, "denied": 10.0}
    assert _group(f, "district", SOUTH)["risk_ratio"] == {"black_listed": 1.0, "denied": 1.0}


def test_fairness_no_flag_on_an_equal_population(city: City) -> None:
    _people(city, NORTH, 10, 2)
    _people(city, SOUTH, 10, 2)
    f = city.credo.fairness(T, min_group=5)
    assert f["flags"] == []
    assert {g["group"]: g["impact_ratio"]["not_black_listed"] for g in f["dimensions"]["district"]} == {
        NORTH: 1.0, SOUTH: 1.0}


def test_fairness_just_above_four_fifths_is_not_flagged(city: City) -> None:
    _people(city, NORTH, 10, 2)      # favourable 0.8 = four-fifths of 1.0 exactly: not below it
    _people(city, SOUTH, 10, 0)
    assert city.credo.fairness(T, min_group=5)["flags"] == []


def test_fairness_small_groups_are_reported_not_judged(city: City) -> None:
    _people(city, NORTH, 10, 1)      # favourable 0.9
    _people(city, SOUTH, 10, 1)
    _people(city, WEST, 2, 2)        # favourable 0: too small to flag
    f = city.credo.fairness(T, min_group=5)
    west = _group(f, "district", WEST)
    assert west["small"] and west["flagged"] == [] and west["black_list_rate"] == 1.0
    assert f["flags"] == []
    assert _group(f, "district", WEST)["impact_ratio"]["not_black_listed"] == 0.0


def test_fairness_age_bands_and_sex_from_the_key(city: City) -> None:
    births = [date(2006, 9, 1), date(2006, 9, 2), date(1994, 9, 1), date(1994, 9, 2), date(1979, 9, 1),
              date(1964, 9, 2), date(1949, 9, 1), date(1949, 9, 2)]
    for i, born in enumerate(births):
        city.resident(NORTH, born, male=i < 3)
    f = city.credo.fairness(T, min_group=1)
    bands = {g["group"]: g["residents"] for g in f["dimensions"]["age_band"]}
    assert list(bands) == ["0-17", "18-29", "30-44", "45-59", "60-74", "75+"]
    assert bands == {"0-17": 1, "18-29": 2, "30-44": 1, "45-59": 2, "60-74": 1, "75+": 1}
    assert {g["group"]: g["residents"] for g in f["dimensions"]["sex"]} == {"female": 5, "male": 3}


def test_fairness_grade_denial_drivers_are_penalties(city: City) -> None:
    """With a grade denied an action, any type that takes points can drive a denial gap."""
    policy_c = POLICY_B.replace("policy: gov-b", "policy: gov-c")
    city.credo.apply_policy(policy_c)
    north = _people(city, NORTH, 10, 0)
    _people(city, SOUTH, 10, 0)
    for k in north[:5]:               # two court defaults: 780, grade D, denied approval; on the list too
        city.record(k, "court.default", datetime(2024, 1, 10))
        city.record(k, "court.default", datetime(2024, 2, 10))
    for k in north[5:8]:              # tax arrears: 970 B, on the debtors list too
        city.record(k, "tax.arrears", datetime(2024, 2, 1))
    f = city.credo.fairness(T, min_group=5)
    flag = next(x for x in f["flags"] if x["group"] == NORTH and x["outcome"] == "not_denied")
    assert flag["rate"] == 0.2
    assert [d["type"] for d in flag["drivers"]] == ["court.default", "tax.arrears"]


# -- the command line, and the SQL staying portable ----------------------------------------------

def test_cli_whatif_and_fairness(city: City, six: dict[str, int], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    city.credo.close()
    monkeypatch.setenv("CREDO_DB", str(city.path))
    proposed = tmp_path / "b.yaml"
    proposed.write_text(POLICY_B, encoding="utf-8")
    runner = CliRunner()
    got = runner.invoke(app, ["whatif", str(proposed), "--as-of", "2024-09-01T12:00:00", "--json"])
    assert got.exit_code == 0, got.output
    w = json.loads(got.stdout)
    assert {"residents_changed_grade", "transitions", "lists", "measures", "by_district"} <= set(w)
    assert w["transitions"] == {"B->A": 1, "B->C": 1, "B->D": 1}
    text = runner.invoke(app, ["whatif", str(proposed)])
    assert text.exit_code == 0, text.output
    assert "grade transitions" in text.stdout and "debtors" in text.stdout and "by district" in text.stdout
    got = runner.invoke(app, ["fairness", "--json", "--min-group", "1"])
    assert got.exit_code == 0, got.output
    assert set(json.loads(got.stdout)["dimensions"]) == {"district", "sex", "age_band"}
    text = runner.invoke(app, ["fairness", "--min-group", "1"])
    assert text.exit_code == 0, text.output
    assert "by age band" in text.stdout
    city.credo = Credo.open(city.path)  # for the fixture's close


@pytest.mark.parametrize("name", list(statements("governance")))
def test_governance_sql_translates_for_spark(name: str) -> None:
    """The seam for Spark can run this text: every statement goes through the dialect translation."""
    assert to_spark(statements("governance")[name])


def test_spark_translation_keeps_integer_division() -> None:
    people = to_spark(statements("governance")["people"])
    assert "DIV 100000000000" in people and "DIV 10000" in people


def test_sessions_leave_the_callers_binding_alone(city: City, six: dict[str, int]) -> None:
    """The reports rebind scoring names on their own cursor: the caller's views still mean policy A."""
    con: duckdb.DuckDBPyConnection = city.con
    city.credo.score(T)
    grades_before = con.execute("SELECT count(*) FROM p_grades").fetchall()
    governance.whatif(con, city.credo.policy, policies.load(POLICY_B), T)
    assert con.execute("SELECT count(*) FROM p_grades").fetchall() == grades_before
    assert con.execute("SELECT count(*) FROM p_measures").fetchall() == [(3,)]


def _normal(value: Any) -> Any:
    """A report compared across engines: floats to 9 places (sums may round differently)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return round(value, 9) if isinstance(value, float) else value


@pytest.mark.spark
def test_reports_agree_on_spark(city: City, six: dict[str, int], spark: Any) -> None:
    """Both reports run whole on Spark — the scoring pipeline captured twice, every step, every
    report — over a Parquet snapshot of the store, and give exactly DuckDB's answers."""
    north = _people(city, NORTH, 10, 6)
    city.record(north[7], "tax.arrears", datetime(2024, 2, 1))
    _people(city, WEST, 10, 0, born=date(1950, 1, 1))
    credo = city.credo
    duck = credo.whatif(POLICY_B, T, sample=3)
    assert duck["residents_changed_grade"] and any(x["sample_joined"] for x in duck["lists"].values())
    assert _normal(credo.whatif(POLICY_B, T, sample=3, engine="spark")) == _normal(duck)
    duck = credo.fairness(T, min_group=3)
    assert any(flag["drivers"] for flag in duck["flags"])
    assert _normal(credo.fairness(T, min_group=3, engine="spark")) == _normal(duck)
    logged = [(e["event"], json.loads(e["detail"])) for e in credo.export_audit() if e["event"] == "read.report"]
    assert [(d["report"], d["engine"]) for _, d in logged] == [
        ("whatif", "duckdb"), ("whatif", "spark"), ("fairness", "duckdb"), ("fairness", "spark")]
    assert logged[1][1]["proposed"] == policies.load(POLICY_B).label and logged[1][1]["residents"] == 26


def test_reports_are_audited_and_bounded_by_role(city: City, six: dict[str, int]) -> None:
    """Each run is an operator's (or for fairness an auditor's) read of everyone, logged with its purpose."""
    from credo.errors import Forbidden
    from credo.principals import Principal

    city.credo.fairness(T, who=Principal("auditor:ann", "auditor"), purpose="quarterly review")
    for role, run in [("auditor", lambda who: city.credo.whatif(POLICY_B, T, who=who)),
                      ("provider", lambda who: city.credo.fairness(T, who=who))]:
        with pytest.raises(Forbidden):
            run(Principal(f"{role}:x", role))
    entry = list(city.credo.export_audit())[-1]
    assert (entry["principal"], entry["role"], entry["event"], entry["purpose"]) == (
        "auditor:ann", "auditor", "read.report", "quarterly review")
    assert json.loads(entry["detail"])["report"] == "fairness"
    with pytest.raises(CredoError, match="engine"):
        city.credo.fairness(T, engine="polars")
