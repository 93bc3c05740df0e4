"""Stored standings on DuckDB: a full run equals the reference, an incremental run equals a full
one, and ``changes_at`` is sound (nothing a user sees changes before it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credo import scoring
from credo.engines.base import EngineError
from credo.engines.duckdb import DuckDBScoring
from credo.errors import CredoError
from credo.ids import ResidentId
from credo.service import Credo
from credo.sql import statements
from credo.store import connect, transaction
from tests.reference import City, ObjectionStep, Record, Revocation, event_instants, standing
from tests.scoring_city import (
    COUNT,
    POLICY,
    SUSPEND,
    add_objections,
    add_records,
    add_revocations,
    answers,
    cases,
    cities,
    expected,
    instants,
    write,
)

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(tmp_path_factory.mktemp("stored") / "credo.duckdb")
    yield con
    con.close()


def stored(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (con.execute("SELECT * FROM standings ORDER BY resident").fetchall(),
            con.execute("SELECT * FROM standing_hits ORDER BY ALL").fetchall())


@SETTINGS
@given(cases(), st.booleans())
def test_a_full_run_stores_the_reference_standings(store: duckdb.DuckDBPyConnection,
                                                    case: tuple[City, datetime], suspend: bool) -> None:
    city, t = case
    policy = SUSPEND if suspend else COUNT
    write(store, city)
    with transaction(store):
        assert scoring.rescore(store, policy, t) == len(city.residents)
    scored = store.sql("SELECT resident, score, grade, changes_at FROM standings").to_arrow_table()
    hits = store.sql("SELECT * FROM standing_hits").to_arrow_table()
    assert answers(t, scored, hits) == expected(policy, city, t, records=False)


@st.composite
def growth(draw: st.DrawFn, city: City) -> City:
    """What a later batch adds: records for some residents (resolving earlier ones now and then),
    revocations of earlier records, objections opened and closed."""
    more = City(city.residents)
    for i in range(draw(st.integers(1, 6))):
        code = draw(st.sampled_from(sorted(SUSPEND.doc.record_types)))
        agency, resident = code.split(".")[0], draw(st.sampled_from(city.residents))
        earlier = [r for r in [*city.records, *more.records] if r.agency == agency and r.resident == resident]
        resolves = draw(st.sampled_from(earlier)).record_id if code.endswith(".fix") and earlier else None
        more.records.append(Record(agency, f"n{i}", code, resident, draw(instants()), resolves))
    for r in city.records:
        if draw(st.integers(0, 9)) == 0:
            more.revocations.append(Revocation(r.agency, r.record_id, draw(instants())))
        if draw(st.integers(0, 9)) == 0:
            number = 100 + len(more.objections)
            opened = draw(instants())
            more.objections.append(ObjectionStep(number, "opened", r.agency, r.record_id, opened))
            if draw(st.booleans()):
                more.objections.append(ObjectionStep(number, "rejected", r.agency, r.record_id,
                                                     opened + timedelta(days=draw(st.integers(1, 60)))))
    return more


@SETTINGS
@given(st.data(), cities(), instants(), st.booleans())
def test_an_incremental_run_equals_a_full_one(store: duckdb.DuckDBPyConnection, data: st.DataObject,
                                               city: City, t: datetime, suspend: bool) -> None:
    """Rescoring only the residents a batch touches leaves the tables as a full recompute would."""
    policy = SUSPEND if suspend else COUNT
    write(store, city)
    with transaction(store):
        scoring.rescore(store, policy, t)
    more = data.draw(growth(city))
    touched = {r.resident for r in more.records}
    owner = {(r.agency, r.record_id): r.resident for r in city.records}
    touched |= {owner[(v.agency, v.record_id)] for v in more.revocations}
    touched |= {owner[(o.agency, o.record_id)] for o in more.objections}
    with transaction(store):
        add_records(store, more.records)
        add_revocations(store, more.revocations)
        add_objections(store, more.objections, owner)
        assert scoring.rescore(store, policy, t, touched) == len(touched)
    incremental = stored(store)
    with transaction(store):
        scoring.rescore(store, policy, t)
    assert incremental == stored(store)
    whole = City(city.residents, city.records + more.records, city.revocations + more.revocations,
                 city.objections + more.objections)
    scored = store.sql("SELECT resident, score, grade, changes_at FROM standings").to_arrow_table()
    hits = store.sql("SELECT * FROM standing_hits").to_arrow_table()
    assert answers(t, scored, hits) == expected(policy, whole, t, records=False)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.booleans())
def test_changes_at_is_sound(case: tuple[City, datetime], suspend: bool) -> None:
    """Nothing a user sees (score, grade, lists, pending lists) changes before ``changes_at``.

    Checked on the reference at every instant where any rule can switch; the engines equal the
    reference, so this holds for them too."""
    city, t = case
    policy = SUSPEND if suspend else COUNT
    for resident in city.residents:
        now = standing(policy, city, resident, t)
        for at in event_instants(policy, city):
            if t < at and (now.changes_at is None or at < now.changes_at):
                assert standing(policy, city, resident, at).visible() == now.visible(), (resident, at)


def test_a_stale_standing_is_recomputed_before_it_is_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service serves the stored standing while it holds and rescores first once its change is due."""
    r = 11010519800101001
    monkeypatch.setenv("CREDO_NOW", "2024-03-02")
    credo = Credo.open(tmp_path / "credo.duckdb")
    try:
        write(credo.con, City([r], [Record("a", "x", "a.bad", r, datetime(2024, 3, 1, 9))]))
        credo.apply_policy(POLICY)
        monkeypatch.setenv("CREDO_NOW", "2024-03-05")
        served = credo.standing(ResidentId.of_key(r))
        assert (served.score, served.pending(), served.changes_at) == (
            65, [("black1", datetime(2024, 3, 11, 9))], datetime(2024, 3, 11, 9))
        monkeypatch.setenv("CREDO_NOW", "2024-03-11T09:00")
        served = credo.standing(ResidentId.of_key(r))
        assert (served.in_force(), served.changes_at) == (["black1"], datetime(2025, 3, 1, 9))
        assert credo.con.execute("SELECT as_of FROM standings").fetchall() == [(datetime(2024, 3, 11, 9),)]
    finally:
        credo.close()


def test_a_scope_of_unregistered_residents_writes_nothing(store: duckdb.DuckDBPyConnection) -> None:
    write(store, City([11010519800101001]))
    with transaction(store):
        assert scoring.rescore(store, SUSPEND, datetime(2024, 1, 1), [42]) == 0
        assert scoring.rescore(store, SUSPEND, datetime(2024, 1, 1), []) == 0
    assert stored(store) == ([], [])


@pytest.mark.parametrize("scope", [None, [11010519800101001]], ids=["full", "scoped"])
def test_a_broken_step_names_itself_and_shows_its_sql(store: duckdb.DuckDBPyConnection,
                                                      scope: list[int] | None) -> None:
    """A step the engine cannot run fails as one error that names the step and shows its SQL (here
    the policy's list table lacks a column ``hits`` reads; on a full run ``hits`` is kept, on a scoped
    one it is a view, and both fail the same way)."""
    write(store, City([11010519800101001]))
    tables = SUSPEND.tables()
    tables["p_type_lists"] = tables["p_type_lists"].drop_columns(["grace_days"])
    engine = DuckDBScoring(store)
    with pytest.raises(EngineError) as caught:
        engine.bind(tables, datetime(2024, 1, 1), None if scope is None else np.array(scope))
    engine.release()
    err = caught.value
    assert isinstance(err, CredoError)
    assert (err.engine, err.step, err.code, err.status) == ("duckdb", "hits", "engine_failed", 500)
    assert str(err).startswith("duckdb failed at step hits: Binder Error")
    assert "grace_days" in str(err).splitlines()[0]
    assert str(err).endswith(statements("score")["hits"])
