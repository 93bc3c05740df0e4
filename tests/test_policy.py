"""The policy check of spec §4: one case per refusal and per warning, table-driven."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from credo import policy as policies
from credo.errors import PolicyInvalid
from credo.times import Duration

BASE = {
    "policy": "test-1",
    "timezone": "Asia/Shanghai",
    "base_score": 1000,
    "score_bounds": [0, 2000],
    "disputed": "suspend",
    "objection_deadline": "15d",
    "grades": [{"grade": "A", "min": 1000}, {"grade": "B", "min": 0}],
    "record_types": {
        "court.default": {"agency": "court", "category": "judicial", "points": -100, "valid_for": "2y",
                          "lists": ["debtors"], "basis": "Provisions on dishonest debtors"},
        "court.fulfilled": {"agency": "court", "category": "judicial", "points": 0,
                            "resolves": ["court.default"], "basis": "Provisions on dishonest debtors"},
    },
    "lists": {"debtors": {"title": "Dishonest debtors", "kind": "black", "grace": "10d", "restricts": ["flight.*"]}},
    "actions": {"flight.book": "Book a flight", "school.enrol": "Enrol a child in a school"},
    "measures": [{"list": "debtors", "action": "flight.book", "effect": "deny"}],
}


def variant(change: dict[str, object]) -> str:
    """BASE with dotted-path edits applied; a value of None deletes the key."""
    doc = json.loads(json.dumps(BASE))
    for path, value in change.items():
        *parents, last = path.split("/")
        node = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is None:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return yaml.safe_dump(doc, allow_unicode=True)


REFUSALS = [
    ("unknown top-level key", {"colour": "red"}, "colour: unknown key"),
    ("unknown type key", {"record_types/court.default/weight": 3}, "record_types.court.default.weight: unknown key"),
    ("points not an integer", {"record_types/court.default/points": "lots"},
     "record_types.court.default.points: must be an integer"),
    ("type with no agency", {"record_types/court.default/agency": None},
     "record_types.court.default.agency: is required"),
    ("type with no basis", {"record_types/court.default/basis": None}, "record_types.court.default.basis: is required"),
    ("type naming an unknown list", {"record_types/court.default/lists": ["nobody"]}, "unknown list 'nobody'"),
    ("measure naming an unknown list", {"measures/0/list": "nobody"}, "measures.0.list: unknown list 'nobody'"),
    ("measure naming an unknown action", {"measures/0/action": "space.launch"}, "unknown action 'space.launch'"),
    ("measure naming an unknown grade", {"measures": [{"grades": ["S"], "action": "flight.book",
                                                       "effect": "green_channel"}]}, "unknown grade 'S'"),
    ("grade bands out of order", {"grades": [{"grade": "B", "min": 0}, {"grade": "A", "min": 1000}]},
     "bands must be listed highest first"),
    ("lowest band above the lower bound", {"grades": [{"grade": "A", "min": 1000}, {"grade": "B", "min": 10}]},
     "some scores get no grade"),
    ("rule keyed on ethnicity", {"record_types/ethnicity.minority": {
        "agency": "court", "category": "civic", "points": -5, "valid_for": "1y", "basis": "none"}},
     "protected attribute (ethnicity)"),
    ("category keyed on religion", {"record_types/court.default/category": "religion"},
     "record_types.court.default.category: keyed on a protected attribute (religion)"),
    ("list keyed on political opinion", {"lists/debtors/title": "Political opinion holders"},
     "lists.debtors.title: keyed on a protected attribute"),
    ("resolves another agency's type", {"record_types/tax.paid": {
        "agency": "tax", "category": "tax", "points": 0, "resolves": ["court.default"], "basis": "Tax law"}},
     "belongs to another agency"),
    ("bad duration", {"record_types/court.default/valid_for": "2 years"}, "valid_for"),
    ("measure with list and grades", {"measures/0/grades": ["A"]}, "needs exactly one of list or grades"),
    ("base outside the bounds", {"base_score": 5000}, "base_score: must lie within score_bounds"),
    ("deny outside the list's purpose", {"measures": [BASE["measures"][0],
                                                      {"list": "debtors", "action": "school.enrol", "effect": "deny"}]},
     "measures.1.action: list 'debtors' may not restrict 'school.enrol'"),
    ("black list without a purpose", {"lists/debtors/restricts": None},
     "lists.debtors.restricts: a black list must name the actions"),
    ("black list with an empty purpose", {"lists/debtors/restricts": []}, "lists.debtors.restricts: a black list must"),
    ("red list with a purpose", {"lists/heroes": {"title": "Heroes", "kind": "red", "restricts": ["flight.*"]}},
     "lists.heroes.restricts: only a black list restricts actions"),
    ("purpose not an action pattern", {"lists/debtors/restricts": ["flight*"]}, "lists.debtors.restricts.0"),
    ("deadline in half days", {"objection_deadline": "3hd"}, "objection_deadline"),
]


@pytest.mark.parametrize(("name", "change", "expected"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal(name: str, change: dict[str, object], expected: str) -> None:
    _, problems = policies.check_text(variant(change))
    refusals = [str(p) for p in problems if p.severity == "refuse"]
    assert any(expected in r for r in refusals), refusals
    with pytest.raises(PolicyInvalid):
        policies.load(variant(change))


WARNINGS = [
    ("lifelong penalty", {"record_types/court.default/valid_for": None},
     "record_types.court.default.valid_for: a negative type with no valid_for is a lifelong penalty"),
    ("working days past the calendar", {"objection_deadline": "3wd"},
     "objection_deadline: working days are counted on China's official calendar, known up to"),
    ("black list with no way out", {"record_types/court.default/valid_for": None,
                                    "record_types/court.fulfilled/resolves": []},
     "lists.debtors: no way to leave this black list"),
]


@pytest.mark.parametrize(("name", "change", "expected"), WARNINGS, ids=[w[0] for w in WARNINGS])
def test_warning(name: str, change: dict[str, object], expected: str) -> None:
    loaded = policies.load(variant(change))  # warnings never refuse
    assert any(expected in str(w) for w in loaded.warnings), loaded.warnings


def test_clean_policy_has_no_problems() -> None:
    loaded = policies.load(variant({}))
    assert loaded.warnings == []
    assert loaded.resolvers_of("court.default") == ["court.fulfilled"]


def test_all_problems_reported_together() -> None:
    text = variant({"colour": "red", "record_types/court.default/points": "x", "measures/0/action": "nope"})
    _, problems = policies.check_text(text)
    paths = {p.path for p in problems}
    assert {"colour", "record_types.court.default.points"} <= paths


@pytest.mark.parametrize("name", ["beijing", "hangzhou"])
def test_shipped_policies_pass(name: str) -> None:
    loaded = policies.load(policies.shipped(name))
    doc = loaded.doc
    assert len(doc.record_types) >= 30
    assert len(loaded.agencies) >= 10
    assert all(t.valid_for for t in doc.record_types.values() if t.points < 0)
    assert not [w for w in loaded.warnings if "no way to leave" in w.message]


def test_shipped_policies_differ_where_hangzhou_rewards_more() -> None:
    bj, hz = (policies.load(policies.shipped(n)).doc for n in ("beijing", "hangzhou"))
    bj_good = sum(t.points for t in bj.record_types.values() if t.points > 0)
    hz_good = sum(t.points for t in hz.record_types.values() if t.points > 0)
    assert hz_good > bj_good


DURATIONS = [
    ("2024-01-31", "1m", "2024-02-29"),
    ("2024-02-29", "1y", "2025-02-28"),
    ("2024-03-31", "1m", "2024-04-30"),
    ("2023-12-25", "10d", "2024-01-04"),
    ("2024-08-01", "2y", "2026-08-01"),
]


@pytest.mark.parametrize(("start", "duration", "end"), DURATIONS)
def test_calendar_durations(start: str, duration: str, end: str) -> None:
    from datetime import date, datetime, time

    got = Duration.parse(duration).add_to(datetime.combine(date.fromisoformat(start), time()))
    assert got.date().isoformat() == end


def test_compiled_tables_carry_the_policy() -> None:
    tables = policies.load(variant({})).tables()
    types = {r["type"]: r for r in tables["p_types"].to_pylist()}
    assert types["court.default"]["valid_months"] == 24 and types["court.default"]["points"] == -100
    assert tables["p_type_lists"].to_pylist() == [
        {"type": "court.default", "list": "debtors", "grace_months": 0, "grace_days": 10}]
    assert tables["p_grades"].to_pylist()[1] == {"grade": "B", "rank": 1, "lo": 0, "hi": 1000}


def test_cli_check_exit_codes(tmp_path: object) -> None:
    from pathlib import Path

    good, bad = Path(str(tmp_path)) / "good.yaml", Path(str(tmp_path)) / "bad.yaml"
    good.write_text(variant({"record_types/court.default/valid_for": None}))
    bad.write_text(variant({"colour": "red"}))
    run = [sys.executable, "-m", "credo.cli"]
    assert subprocess.run([*run, "policy", "check", str(good)], capture_output=True).returncode == 0
    r = subprocess.run([*run, "policy", "check", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and "colour: unknown key" in r.stderr
    schema = json.loads(subprocess.run([*run, "policy", "schema"], capture_output=True, text=True).stdout)
    assert "record_types" in schema["properties"]


ONE_PASS = [
    # (what an author got wrong, edits, problems expected together: path -> a word of the message)
    ("a missing key and a short basis beside an unknown list, bad grades and a protected word",
     {"record_types/court.fulfilled/category": None, "record_types/court.default/basis": "no",
      "measures/0/list": "nowhere", "grades": [{"grade": "B", "min": 0}, {"grade": "A", "min": 1000}],
      "record_types/health.check": {"agency": "court", "category": "judicial", "points": 0, "basis": "Some law"}},
     {"record_types.court.fulfilled.category": "required", "record_types.court.default.basis": "at least",
      "measures.0.list": "unknown list", "grades": "highest first", "record_types.health.check": "protected"}),
    ("a bad top-level setting beside an unknown action",
     {"base_score": "lots", "measures/0/action": "train.book"},
     {"base_score": "integer", "measures.0.action": "unknown action"}),
    ("a broken measure beside a type naming an unknown list",
     {"measures/0/effect": "shame", "record_types/court.default/lists": ["debtors", "ghosts"]},
     {"measures.0.effect": "", "record_types.court.default.lists": "unknown list 'ghosts'"}),
]


@pytest.mark.parametrize(("name", "change", "expected"), ONE_PASS, ids=[c[0] for c in ONE_PASS])
def test_structural_and_semantic_problems_in_one_pass(name: str, change: dict[str, object],
                                                      expected: dict[str, str]) -> None:
    _, problems = policies.check_text(variant(change))
    found = [(p.path, p.message) for p in problems]
    for path, word in expected.items():
        assert any(at == path and word in message for at, message in found), (path, found)


def test_an_item_set_aside_is_not_reported_again_as_unknown() -> None:
    """A list that fails the schema is not also 'unknown' where types and measures name it."""
    _, problems = policies.check_text(variant({"lists/debtors/kind": "grey"}))
    assert [p.path for p in problems if p.severity == "refuse"] == ["lists.debtors.kind"]


def test_piped_output_is_not_wrapped_to_a_terminal(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path)) / ("a-folder-with-a-long-name-" * 4)
    folder.mkdir()
    path = folder / "policy.yaml"
    path.write_text(variant({"record_types/court.default/lists": ["debtors", "an_unknown_list_with_a_long_name"]}))
    run = subprocess.run([sys.executable, "-m", "credo.cli", "policy", "check", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert f"{path}: refused (1 refusal(s), 0 warning(s))" in run.stdout.splitlines()
    assert "refuse: record_types.court.default.lists: unknown list 'an_unknown_list_with_a_long_name'" in (
        run.stderr.splitlines())
