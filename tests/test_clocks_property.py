"""The second clock, K, against the plain reference (``tests.reference.known``): random histories in
which records (by their batch), revocations, objection steps and policy applications arrive at
random known times, scored at random (T, K). The SQL scored from only what was known at K, under
the policy in force at K, equals the reference run on the city as it was held at K: scoped (one
resident's page) and full on DuckDB, and full on Spark for a few examples (a Spark run costs
seconds here).

A batch's known time is read from its ``known`` row when it has one, else from the batch's
``received_at``; the histories use both (a ``known`` row always wins over ``received_at``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credo import known, scoring
from credo import policy as policies
from credo.engines.duckdb import DuckDBScoring
from credo.known import Known
from credo.policy import Policy
from credo.store import connect
from tests.reference import City
from tests.reference import known as held
from tests.scoring_city import POLICY, answers, cities, expected, instants, write

TEXTS = {"suspend": POLICY,
         "count": POLICY.replace("disputed: suspend", "disputed: count").replace("props-1", "props-2")}
FIRST = datetime(2022, 12, 1)
"""The first policy's application: before any instant the histories use, so one is always in force."""

History = tuple[City, list[tuple[datetime, str]]]


@st.composite
def histories(draw: st.DrawFn) -> History:
    """A city whose records each arrive at a random known time, and one to three policy applications."""
    city = draw(cities(10))
    city.records = [replace(r, known_at=draw(instants())) for r in city.records]
    times = sorted(draw(st.lists(instants(), max_size=2)))
    applied = [(FIRST, draw(st.sampled_from(sorted(TEXTS))))] + [(t, draw(st.sampled_from(sorted(TEXTS))))
                                                                 for t in times]
    return city, applied


def store_history(con: duckdb.DuckDBPyConnection, city: City, applied: list[tuple[datetime, str]]) -> None:
    """The city into the store, each record in a batch of its own; every other batch's known time is
    a ``known`` row (its ``received_at`` a day earlier, to be overruled), the rest its ``received_at``."""
    write(con, city)
    for table in ("batches", "known", "policies"):
        con.execute(f"DELETE FROM {table}")
    for n, r in enumerate(city.records, 1):
        assert r.known_at is not None
        con.execute("UPDATE ledger SET batch = ? WHERE agency = ? AND record_id = ?", [n, r.agency, r.record_id])
        received = r.known_at - timedelta(days=1) if n % 2 else r.known_at
        con.execute("INSERT INTO batches VALUES (?, ?, 'test', 'test', ?, 1, 0, 0)", [n, r.agency, received])
        if n % 2:
            known.note(con, n, r.known_at, "batch", batch=n)
    for at, name in applied:
        policies.save(con, policies.load(TEXTS[name]), by="test", now=at)


def in_force(applied: list[tuple[datetime, str]], k: datetime) -> Policy:
    return policies.load(TEXTS[[name for at, name in applied if at <= k][-1]])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(tmp_path_factory.mktemp("clocks") / "credo.duckdb")
    yield con
    con.close()


def check_duckdb(con: duckdb.DuckDBPyConnection, history: History, t: datetime, k: datetime) -> None:
    city, applied = history
    store_history(con, city, applied)
    then = Known(k)
    policy = known.policy_at(con, then)
    assert policy.name == in_force(applied, k).name
    want = expected(policy, held(city, k), t)
    out = scoring.compute(con, policy, t, city.residents, records=True, known=then)
    assert answers(t, out["scored"], out["hits"], out["explained"]) == want
    engine = DuckDBScoring(con)  # the full run reads the unscoped inputs
    engine.bind(policy.tables(), t, None, then.table())
    full = {name: engine.arrow(name) for name in ("scored", "hits", "explained")}
    engine.release()
    assert answers(t, full["scored"], full["hits"], full["explained"]) == want


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), instants(), instants())
def test_known_at_matches_the_reference_on_duckdb(store: duckdb.DuckDBPyConnection, history: History,
                                                  t: datetime, k: datetime) -> None:
    check_duckdb(store, history, t, k)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), st.data())
def test_known_at_the_moments_things_arrive(store: duckdb.DuckDBPyConnection, history: History,
                                            data: st.DataObject) -> None:
    """K exactly at a known time (a record's, a revocation's, an objection step's): held from that instant."""
    city, _ = history
    moments = [r.known_at for r in city.records if r.known_at] + [v.revoked_at for v in city.revocations] + \
        [o.at for o in city.objections]
    k = data.draw(st.sampled_from(moments)) if moments else datetime(2024, 6, 1)
    check_duckdb(store, history, data.draw(instants()), k)


@pytest.mark.spark
def test_known_at_matches_the_reference_on_spark(spark: Any, store: duckdb.DuckDBPyConnection,
                                                 tmp_path: Path) -> None:
    from credo.engines import spark as seam

    @settings(max_examples=4, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(histories(), instants(), instants())
    def holds(history: History, t: datetime, k: datetime) -> None:
        city, applied = history
        store_history(store, city, applied)
        then = Known(k)
        policy = known.policy_at(store, then)
        engine = seam.SparkScoring(spark, scoring.export(store, tmp_path))
        engine.bind(policy.tables(), t, None, then.table())
        out = {name: engine.arrow(name) for name in ("scored", "hits", "explained")}
        assert answers(t, out["scored"], out["hits"], out["explained"]) == expected(policy, held(city, k), t)

    holds()
