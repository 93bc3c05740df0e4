"""Jurisdictions (spec §9): the checks across policies, table-driven, and the commands that apply and list
them, run as the real ``credo`` script against a real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from credo import jurisdictions
from credo import policy as policies
from credo.errors import PolicyInvalid
from tests.test_policy import BASE

CREDO = str(Path(sys.executable).with_name("credo"))


def doc(name: str, jurisdiction: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """BASE renamed, with a jurisdiction block (None: none) and top-level changes."""
    out: dict[str, Any] = json.loads(json.dumps(BASE))
    out["policy"] = name
    if jurisdiction is not None:
        out["jurisdiction"] = jurisdiction
    out.update(changes)
    return out


def load(d: dict[str, Any]) -> policies.Policy:
    return policies.load(yaml.safe_dump(d))


NATIONAL = doc("national-1", {"name": "national"})
BEIJING = doc("beijing-1", {"name": "beijing", "regions": ["11"]})
OTHER_COURT = {"court.default": {**BASE["record_types"]["court.default"], "agency": "tribunal"}}  # type: ignore[dict-item]

# (case, the policies together, what the one problem must say, on which policy)
TOGETHER: list[tuple[str, list[dict[str, Any]], str]] = [
    ("another time zone", [NATIONAL, doc("b-1", {"name": "b", "regions": ["11"]}, timezone="Asia/Tokyo")],
     "b-1: timezone: Asia/Tokyo differs from Asia/Shanghai (national-1)"),
    ("a type under another agency", [NATIONAL, doc("b-1", {"name": "b", "regions": ["11"]}, record_types=OTHER_COURT)],
     "b-1: record_types.court.default.agency: 'tribunal', but national-1 assigns 'court.default' to 'court'"),
    ("a region claimed twice", [BEIJING, doc("b-2", {"name": "capital", "regions": ["3301", "11"]})],
     "b-2: jurisdiction.regions: region '11' is already claimed by beijing-1"),
    ("a jurisdiction named twice", [BEIJING, doc("b-2", {"name": "beijing", "regions": ["12"]})],
     "b-2: jurisdiction.name: jurisdiction 'beijing' is already beijing-1's"),
    ("a block's name equal to a policy without one", [doc("city"), doc("c-2", {"name": "city", "regions": ["11"]})],
     "c-2: jurisdiction.name: jurisdiction 'city' is already city's"),
    ("two policies without a block", [doc("one"), doc("two")], "two: jurisdiction: like one, it names no jurisdiction"),
]


@pytest.mark.parametrize(("case", "given", "says"), TOGETHER, ids=[c[0] for c in TOGETHER])
def test_policies_that_cannot_be_in_force_together(case: str, given: list[dict[str, Any]], says: str) -> None:
    problems = jurisdictions.check_together([(d["policy"], load(d)) for d in given])
    assert [str(p) for p in problems if str(p).startswith(says)], [str(p) for p in problems]
    assert len(problems) == 1, [str(p) for p in problems]
    with pytest.raises(PolicyInvalid) as refused:
        jurisdictions.require_together([(d["policy"], load(d)) for d in given])
    assert any(says in d for d in refused.value.details)


# a country's layers agree: nested prefixes are allowed (the longest is home), a type shared with its agency
AGREE: list[tuple[str, list[dict[str, Any]]]] = [
    ("national and a city", [NATIONAL, BEIJING]),
    ("a city and a district inside it", [BEIJING, doc("chaoyang-1", {"name": "chaoyang", "regions": ["1105"]})]),
    ("one policy without a block", [doc("city")]),
    ("a city beside a policy without a block", [doc("city"), BEIJING]),
]


@pytest.mark.parametrize(("case", "given"), AGREE, ids=[c[0] for c in AGREE])
def test_policies_that_agree(case: str, given: list[dict[str, Any]]) -> None:
    assert jurisdictions.check_together([(d["policy"], load(d)) for d in given]) == []


OWN: list[tuple[str, dict[str, Any], str]] = [
    ("empty regions", doc("x", {"name": "x", "regions": []}), "jurisdiction.regions: is empty"),
    ("a region twice", doc("x", {"name": "x", "regions": ["11", "11"]}),
     "jurisdiction.regions: region '11' is given twice"),
    ("a region not digits", doc("x", {"name": "x", "regions": ["BJ"]}), "jurisdiction.regions.0: string should match"),
    ("a name not a code", doc("x", {"name": "Bei Jing"}), "jurisdiction.name: string should match"),
    ("an unknown key", doc("x", {"name": "x", "capital": True}), "jurisdiction.capital: unknown key"),
]


@pytest.mark.parametrize(("case", "given", "says"), OWN, ids=[c[0] for c in OWN])
def test_a_jurisdiction_block_refused(case: str, given: dict[str, Any], says: str) -> None:
    with pytest.raises(PolicyInvalid) as refused:
        load(given)
    assert any(d.startswith(says) for d in refused.value.details), refused.value.details


def test_the_jurisdiction_of_a_policy() -> None:
    assert (load(BEIJING).jurisdiction, load(BEIJING).regions, load(BEIJING).slot) == ("beijing", ("11",), "beijing")
    assert (load(NATIONAL).jurisdiction, load(NATIONAL).regions) == ("national", ())
    plain = load(doc("city-7"))
    assert (plain.jurisdiction, plain.regions, plain.slot) == ("city-7", (), None)


# -- the commands ------------------------------------------------------------------------------

def credo(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDO_NOW": "2025-06-01T12:00:00+08:00"}
    return subprocess.run([CREDO, "--db", str(db), *args], capture_output=True, text=True, timeout=120, env=env)


def write(root: Path, d: dict[str, Any]) -> str:
    path = root / f"{d['policy']}.yaml"
    path.write_text(yaml.safe_dump(d), encoding="utf-8")
    return str(path)


def test_check_several_files_together(tmp_path: Path) -> None:
    a, b = write(tmp_path, BEIJING), write(tmp_path, doc("b-2", {"name": "capital", "regions": ["11"]}))
    refused = credo(tmp_path / "x.duckdb", "policy", "check", a, b)
    assert refused.returncode == 1
    assert f"refuse: {b}: jurisdiction.regions: region '11' is already claimed by {a}" in refused.stderr
    assert "together: refused (1 refusal(s))" in refused.stdout
    ok = credo(tmp_path / "x.duckdb", "policy", "check", write(tmp_path, NATIONAL), a)
    assert ok.returncode == 0, ok.stderr
    assert "together: ok" in ok.stdout


def test_init_apply_and_list_per_jurisdiction(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    made = credo(db, "init", "--policy", write(tmp_path, NATIONAL), "--policy", write(tmp_path, BEIJING))
    assert made.returncode == 0, made.stderr
    assert "national-1@1, beijing-1@2" in made.stdout
    newer = doc("beijing-2", {"name": "beijing", "regions": ["11", "1201"]})
    assert credo(db, "policy", "apply", write(tmp_path, newer)).returncode == 0
    clash = doc("tianjin-1", {"name": "tianjin", "regions": ["1201"]})
    refused = credo(db, "policy", "apply", write(tmp_path, clash))
    assert refused.returncode != 0
    assert "region '1201' is already claimed by beijing-2@3" in refused.stderr
    listed = json.loads(credo(db, "policy", "list", "--json").stdout)
    assert [(j["jurisdiction"], j["regions"], j["policy"]) for j in listed] == [
        ("national", None, "national-1@1"), ("beijing", ["11", "1201"], "beijing-2@3")]
    assert [(v["policy"], v["in_force"]) for v in listed[1]["versions"]] == [("beijing-1@2", False),
                                                                            ("beijing-2@3", True)]
    assert "beijing (11, 1201): beijing-2@3" in credo(db, "policy", "list").stdout


def test_init_refuses_policies_that_disagree_and_leaves_no_file(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    other = doc("tokyo-1", {"name": "tokyo", "regions": ["13"]}, timezone="Asia/Tokyo")
    refused = credo(db, "init", "--policy", write(tmp_path, NATIONAL), "--policy", write(tmp_path, other))
    assert refused.returncode == 2
    assert "tokyo-1: timezone" in refused.stderr
    assert not db.exists()


def test_a_policy_without_a_block_still_replaces_the_one_in_force(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    assert credo(db, "init", "--policy", write(tmp_path, doc("city-1"))).returncode == 0
    assert credo(db, "policy", "apply", write(tmp_path, doc("city-2"))).returncode == 0
    listed = json.loads(credo(db, "policy", "list", "--json").stdout)
    assert [(j["jurisdiction"], j["policy"], len(j["versions"])) for j in listed] == [("city-2", "city-2@2", 2)]


# -- membership --------------------------------------------------------------------------------

HANGZHOU = doc("hangzhou-1", {"name": "hangzhou", "regions": ["3301"]})
CHAOYANG = doc("chaoyang-1", {"name": "chaoyang", "regions": ["110105"]})


def test_membership_follows_the_district_at_t_known_at_k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Home is the longest matching prefix; a move counts from the time its batch is received (at T) and
    only once known (at K); everyone belongs to the national layer; a resident registered after K reads
    as first registered."""
    from datetime import date, datetime

    from credo import ids
    from credo.known import Known
    from credo.service import Credo
    from tests.cityfactory import write_csv

    li = ids.make_resident_id("110105", date(1987, 6, 12), 101)  # Chaoyang, Beijing
    wang = ids.make_resident_id("330106", date(1993, 3, 18), 202)  # Xihu, Hangzhou, moving to Beijing
    zhao = ids.make_resident_id("440305", date(1970, 1, 1), 303)  # Shenzhen: national only
    header = ("resident_id", "name", "district", "status", "status_date")
    monkeypatch.setenv("CREDO_NOW", "2024-01-01T09:00:00+08:00")
    credo = Credo.open(tmp_path / "c.duckdb")
    in_force = credo.apply_policies([yaml.safe_dump(d) for d in (NATIONAL, BEIJING, HANGZHOU, CHAOYANG)])
    credo.ingest_files("population", [write_csv(tmp_path / "p1.csv", [
        header, (li, "Li", "110105", "", ""), (wang, "Wang", "330106", "", ""), (zhao, "Zhao", "440305", "", "")])])
    monkeypatch.setenv("CREDO_NOW", "2024-06-01T09:00:00+08:00")
    credo.ingest_files("population", [write_csv(tmp_path / "p2.csv", [header, (wang, "Wang", "110108", "", "")])])

    def held(t: str, k: str | None = None) -> dict[str, list[tuple[str, bool]]]:
        when = datetime.fromisoformat(t)
        table = jurisdictions.members(credo.con, in_force, when, Known(datetime.fromisoformat(k)) if k else None)
        names = {ids.parse_resident_id(r).key: r for r in (li, wang, zhao)}
        out: dict[str, list[tuple[str, bool]]] = {}
        for row in table.to_pylist():
            out.setdefault(names[row["resident"]], []).append((row["jurisdiction"], row["home"]))
        return out

    before = held("2024-03-01T00:00:00")
    assert before[li] == [("beijing", False), ("chaoyang", True), ("national", False)]
    assert before[wang] == [("hangzhou", True), ("national", False)]
    assert before[zhao] == [("national", True)]
    assert held("2024-07-01T00:00:00")[wang] == [("beijing", True), ("national", False)]
    assert held("2024-07-01T00:00:00", "2024-03-01T00:00:00")[wang] == [("hangzhou", True), ("national", False)]
    assert held("2023-06-01T00:00:00")[li] == [("beijing", False), ("chaoyang", True), ("national", False)]
    credo.close()


# -- standing, explanation and decision across jurisdictions ------------------------------------

CITY_LAYER = {
    "policy": "capital-1", "jurisdiction": {"name": "capital", "regions": ["11"]}, "timezone": "Asia/Shanghai",
    "base_score": 100, "score_bounds": [0, 200], "grades": [{"grade": "A", "min": 100}, {"grade": "B", "min": 0}],
    "record_types": {"civic.volunteer": {"agency": "volunteer", "category": "civic", "points": 5, "valid_for": "1y",
                                         "basis": "City volunteer regulations"}},
    "actions": {"admin.approval": "Administrative approval", "flight.book": "Book a flight"},
    "measures": [{"grades": ["A"], "action": "admin.approval", "effect": "green_channel"}],
}


def test_a_national_list_follows_a_resident_into_a_city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The national black list denies in every city; the city's green channel applies to its residents only;
    each reason names its jurisdiction, and every policy consulted is listed; an action no jurisdiction
    holding the resident names is an error; a record counts only where a policy defines its type."""
    from datetime import date

    from credo import ids
    from credo.decisions import UnknownAction
    from credo.service import Credo
    from tests.cityfactory import RECORD_COLUMNS, write_csv

    li = ids.parse_resident_id(ids.make_resident_id("110105", date(1987, 6, 12), 101))
    wang = ids.parse_resident_id(ids.make_resident_id("440305", date(1993, 3, 18), 202))
    monkeypatch.setenv("CREDO_NOW", "2024-06-01T09:00:00+08:00")
    credo = Credo.open(tmp_path / "c.duckdb")
    credo.apply_policies([yaml.safe_dump(NATIONAL), yaml.safe_dump(CITY_LAYER)])
    credo.ingest_files("population", [write_csv(tmp_path / "p.csv", [
        ("resident_id", "name", "district", "status", "status_date"),
        (li.text, "Li", "110105", "", ""), (wang.text, "Wang", "440305", "", "")])])
    credo.ingest_files("court", [write_csv(tmp_path / "c.csv", [
        RECORD_COLUMNS, ("c1", "court.default", li.text, "2024-05-01", "", "")])])
    credo.ingest_files("volunteer", [write_csv(tmp_path / "v.csv", [
        RECORD_COLUMNS, ("v1", "civic.volunteer", li.text, "2024-05-02", "", "")])])

    st = credo.standing(li).to_json("Asia/Shanghai")
    assert (st["jurisdiction"], st["score"], st["grade"], st["policy"]) == ("capital", 105, "A", "capital-1@2")
    assert [(j["jurisdiction"], j["score"], j["lists"]) for j in st["jurisdictions"]] == [
        ("capital", 105, []), ("national", 900, ["debtors"])]
    flight = credo.check(li, "flight.book")
    assert flight.decision == "deny"
    assert [(r["code"], r["jurisdiction"]) for r in flight.reasons] == [("list:debtors", "national")]
    assert list(flight.policies) == ["capital-1@2", "national-1@1"]  # the home one first
    approval = credo.check(li, "admin.approval")
    assert (approval.decision, approval.benefits) == ("allow", ["green_channel"])
    assert [(r["code"], r["jurisdiction"]) for r in approval.reasons] == [("grade:A", "capital")]
    with pytest.raises(UnknownAction):
        credo.check(wang, "admin.approval")
    assert credo.standing(wang).to_json("Asia/Shanghai")["jurisdiction"] == "national"
    explained = credo.explain(li)
    counts = {j["jurisdiction"]: {r["record_id"]: (r["counts"], r["points"]) for r in j["records"]}
              for j in explained["jurisdictions"]}
    assert counts == {"capital": {"c1": (False, 0), "v1": (True, 5)}, "national": {"c1": (True, -100),
                                                                                  "v1": (False, 0)}}
    past = credo.standing(li, as_of=credo.when("2024-04-01")).to_json("Asia/Shanghai")
    assert [(j["jurisdiction"], j["score"]) for j in past["jurisdictions"]] == [("capital", 100), ("national", 1000)]
    credo.close()


# -- a policy giving lists only -------------------------------------------------------------------

LISTS_ONLY = {k: v for k, v in doc("national-1", {"name": "national"}).items()
              if k not in ("base_score", "score_bounds", "grades")}
LISTS_ONLY["record_types"] = {c: {k: v for k, v in t.items() if k != "points"}
                              for c, t in LISTS_ONLY["record_types"].items()}

SCORING: list[tuple[str, dict[str, Any], str]] = [
    ("points in a policy without scoring",
     {**LISTS_ONLY, "record_types": {**LISTS_ONLY["record_types"], "court.extra": {
         "agency": "court", "category": "j", "points": -5, "basis": "x y z"}}},
     "record_types.court.extra.points: a policy without base_score, score_bounds and grades gives lists only"),
    ("grades left out of a policy that scores", {k: v for k, v in BASE.items() if k != "grades"},
     "grades: is required: a policy that scores gives base_score, score_bounds and grades"),
    ("points left out in a policy that scores",
     {**BASE, "record_types": {**BASE["record_types"],  # type: ignore[dict-item]
                               "court.extra": {"agency": "court", "category": "j", "basis": "x y z"}}},
     "record_types.court.extra.points: is required in a policy that scores"),
]


@pytest.mark.parametrize(("case", "given", "says"), SCORING, ids=[c[0] for c in SCORING])
def test_scoring_all_or_nothing(case: str, given: dict[str, Any], says: str) -> None:
    with pytest.raises(PolicyInvalid) as refused:
        load(given)
    assert any(d.startswith(says) for d in refused.value.details), refused.value.details


def test_a_lists_only_jurisdiction_has_no_score_or_grade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date

    from credo import ids
    from credo.service import Credo
    from tests.cityfactory import RECORD_COLUMNS, write_csv

    li = ids.parse_resident_id(ids.make_resident_id("110105", date(1987, 6, 12), 101))
    monkeypatch.setenv("CREDO_NOW", "2024-06-01T09:00:00+08:00")
    credo = Credo.open(tmp_path / "c.duckdb")
    credo.apply_policies([yaml.safe_dump(LISTS_ONLY), yaml.safe_dump(CITY_LAYER)])
    credo.ingest_files("population", [write_csv(tmp_path / "p.csv", [
        ("resident_id", "name", "district", "status", "status_date"), (li.text, "Li", "110105", "", "")])])
    credo.ingest_files("court", [write_csv(tmp_path / "c.csv", [
        RECORD_COLUMNS, ("c1", "court.default", li.text, "2024-05-01", "", "")])])
    st = credo.standing(li).to_json("Asia/Shanghai")
    assert [(j["jurisdiction"], j["score"], j["grade"], j["lists"]) for j in st["jurisdictions"]] == [
        ("capital", 100, "A", []), ("national", None, None, ["debtors"])]
    assert credo.check(li, "flight.book").decision == "deny"
    credo.close()


def test_the_shipped_policies_of_a_country_agree() -> None:
    """The national layer gives lists only and holds everyone; it can be in force beside either city."""
    national = policies.load(policies.shipped("national"))
    assert (national.jurisdiction, national.regions, national.doc.scores) == ("national", (), False)
    assert {"dishonest_debtor", "major_tax_violator", "rail_restricted"} <= set(national.doc.lists)
    for city in ("beijing", "hangzhou"):
        layer = policies.load(policies.shipped(city))
        assert jurisdictions.check_together([("national", national), (city, layer)]) == []
