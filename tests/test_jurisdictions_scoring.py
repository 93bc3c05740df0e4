"""Scoring per (resident, jurisdiction) (spec §9), held to the plain reference by a property test:
random policies per jurisdiction (each keeping some of the test policy's types, with its own base
score and dispute rule), residents in random districts, some moving during the ledger's years; the
store's full run gives every jurisdiction holding a resident the reference's standing under its
policy, home is the longest matching prefix, and an incremental run equals the full one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credo import policy as policies
from credo import scoring
from credo.store import connect
from tests import reference
from tests.scoring_city import POLICY, answers, cases, expected, write

LAYERS = [("national", None), ("capital", ["11"]), ("chaoyang", ["110105"]), ("lakeside", ["3301", "3302"])]
"""The jurisdictions a case draws from: everyone, a city, a district inside it, a city of two prefixes."""
DISTRICTS = ["110105", "110108", "330106", "330211", "440305"]
OPTIONAL = ["a.good", "b.star"]
"""Types a jurisdiction's policy may leave out (no other type resolves them)."""


def layer_policy(name: str, regions: list[str] | None, keep: list[str], base: int, suspend: bool) -> policies.Policy:
    doc: dict[str, Any] = yaml.safe_load(POLICY)
    doc["policy"] = f"{name}-1"
    doc["jurisdiction"] = {"name": name, **({"regions": regions} if regions else {})}
    doc["record_types"] = {c: t for c, t in doc["record_types"].items() if c not in OPTIONAL or c in keep}
    doc["base_score"] = base
    doc["disputed"] = "suspend" if suspend else "count"
    return policies.load(yaml.safe_dump(doc))


@st.composite
def layers(draw: st.DrawFn) -> list[policies.Policy]:
    chosen = draw(st.lists(st.sampled_from(LAYERS), min_size=1, max_size=4, unique_by=lambda layer: layer[0]))
    out = []
    for version, (name, regions) in enumerate(chosen, start=1):
        p = layer_policy(name, regions, draw(st.lists(st.sampled_from(OPTIONAL), unique=True)),
                         draw(st.sampled_from([60, 100, 140])), draw(st.booleans()))
        p.version = version
        out.append(p)
    return out


Moves = dict[int, list[tuple[datetime | None, str]]]
"""Each resident's districts: (received_at, district), the first registered with no time."""


@st.composite
def moves(draw: st.DrawFn, residents: list[int]) -> Moves:
    out: Moves = {}
    for r in residents:
        steps: list[tuple[datetime | None, str]] = [(None, draw(st.sampled_from(DISTRICTS)))]
        for _ in range(draw(st.integers(0, 2))):
            at = draw(st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 1, 1)))
            steps.append((at.replace(microsecond=0), draw(st.sampled_from(DISTRICTS))))
        out[r] = [steps[0], *sorted(steps[1:], key=lambda s: s[0] or datetime.min)]
    return out


def district_at(steps: list[tuple[datetime | None, str]], t: datetime) -> str:
    """The reference: the latest district received by T, else the first registered."""
    held = [d for at, d in steps if at is None or at <= t]
    return held[-1]


def holding(in_force: list[policies.Policy], district: str) -> tuple[list[str], str | None]:
    """The reference: every jurisdiction holding a district, and the home (longest prefix, then first applied)."""
    found = []
    for rank, p in enumerate(in_force):
        depth = max((len(r) for r in p.regions if district.startswith(r)), default=-1) if p.regions else 0
        if depth >= 0:
            found.append((depth, -rank, p.jurisdiction))
    return sorted(j for _, _, j in found), max(found)[2] if found else None


def write_moves(con: duckdb.DuckDBPyConnection, steps: Moves) -> None:
    """Districts with their batches: the first registered (batch NULL), each move a batch received then."""
    con.execute("DELETE FROM districts")
    con.execute("DELETE FROM batches")
    batch = 0
    for resident, history in steps.items():
        con.execute("UPDATE residents SET district = ? WHERE resident = ?", [history[-1][1], resident])
        for at, district in history:
            number = None
            if at is not None:
                batch += 1
                number = batch
                con.execute("INSERT INTO batches (batch, agency, received_at) VALUES (?, 'population', ?)",
                            [number, at])
            con.execute("INSERT INTO districts VALUES (?, ?, ?)", [resident, district, number])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(Path(tmp_path_factory.mktemp("jur")) / "j.duckdb")
    yield con
    con.close()


def stored(con: duckdb.DuckDBPyConnection, jurisdiction: str) -> tuple[pa.Table, pa.Table]:
    scored = con.sql("SELECT resident, score, grade, changes_at FROM standings WHERE jurisdiction = $j",
                     params={"j": jurisdiction}).to_arrow_table()
    hits = con.sql("SELECT * FROM standing_hits WHERE jurisdiction = $j", params={"j": jurisdiction}).to_arrow_table()
    return scored, hits


def snapshot(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return (con.execute("SELECT resident, jurisdiction, home, score, grade, changes_at FROM standings ORDER BY ALL")
            .fetchall() + con.execute("SELECT * EXCLUDE (expires_at) FROM standing_hits ORDER BY ALL").fetchall())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases(), in_force=layers(), data=st.data())
def test_every_jurisdiction_scores_its_residents_by_its_policy(store: duckdb.DuckDBPyConnection,
                                                               case: tuple[reference.City, datetime],
                                                               in_force: list[policies.Policy],
                                                               data: st.DataObject) -> None:
    city, t = case
    steps = data.draw(moves(city.residents))
    write(store, city)
    write_moves(store, steps)
    scoring.rescore(store, in_force, t)
    homes = dict(store.execute("SELECT resident, jurisdiction FROM standings WHERE home").fetchall())
    for resident in city.residents:
        names, home = holding(in_force, district_at(steps[resident], t))
        got = sorted(j for (j,) in store.execute(
            "SELECT jurisdiction FROM standings WHERE resident = ?", [resident]).fetchall())
        assert got == names, (resident, steps[resident])
        assert homes.get(resident) == home
    for p in in_force:
        scored, hits = stored(store, p.jurisdiction)
        want = {r: s for r, s in expected(p, city, t, records=False).items()
                if p.jurisdiction in holding(in_force, district_at(steps[r], t))[0]}
        assert answers(t, scored, hits) == want, p.jurisdiction
    full = snapshot(store)
    shares = scoring.WHOLE_SHARE, scoring.WHOLE_MIN
    scoring.WHOLE_SHARE, scoring.WHOLE_MIN = 0.0, 0  # every city as a full run with its members' rows kept
    try:
        scoring.rescore(store, in_force, t)
    finally:
        scoring.WHOLE_SHARE, scoring.WHOLE_MIN = shares
    assert snapshot(store) == full
    some = data.draw(st.lists(st.sampled_from(city.residents), min_size=1, unique=True))
    scoring.rescore(store, in_force, t, some)
    assert snapshot(store) == full


def test_a_single_jurisdiction_holding_everyone_is_scored_as_before(store: duckdb.DuckDBPyConnection) -> None:
    """No block: one run, no membership, every standing home; the same standings as the policy alone."""
    city = reference.City([11010519800101001, 11010519800101002],
                          [reference.Record("a", "r1", "a.bad", 11010519800101001, datetime(2024, 3, 1))])
    write(store, city)
    plain = policies.load(POLICY)
    plain.version = 1
    t = datetime(2024, 6, 1) + timedelta(hours=1)
    assert scoring.rescore(store, plain, t) == 2
    assert store.execute("SELECT jurisdiction, home, count(*) FROM standings GROUP BY ALL").fetchall() == [
        ("props-1", True, 2)]
    scored, hits = stored(store, "props-1")
    assert answers(t, scored, hits) == expected(plain, city, t, records=False)
