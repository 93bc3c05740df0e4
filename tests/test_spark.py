"""The Spark seam: each dialect construct means the same on both engines, and ``credo score
--engine spark`` stores the standings DuckDB would, from the store or from a data lake."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from credo import scoring
from credo.engines.base import EngineError
from credo.engines.dialect import DUCKDB_MACROS, to_spark
from credo.sql import statements
from credo.store import connect, transaction
from tests.reference import City, ObjectionStep, Record, Revocation
from tests.scoring_city import SUSPEND, write

D = datetime
PROBES = [
    # (DuckDB expression, expected value): each constructs the pipeline relies on
    ("ADD_DURATION(TIMESTAMP '2024-01-31 10:30:00', 1, 0)", D(2024, 2, 29, 10, 30)),
    ("ADD_DURATION(TIMESTAMP '2024-02-29 00:00:00', 12, 0)", D(2025, 2, 28)),
    ("ADD_DURATION(TIMESTAMP '2024-02-29 00:00:00', 1, 0)", D(2024, 3, 29)),
    ("ADD_DURATION(TIMESTAMP '2024-03-09 23:00:00', 0, 1)", D(2024, 3, 10, 23)),
    ("ADD_DURATION(TIMESTAMP '2023-12-31 23:59:00', 0, 0)", D(2023, 12, 31, 23, 59)),
    ("least(CAST(NULL AS INTEGER), 3, NULL)", 3),
    ("greatest(CAST(NULL AS INTEGER), -2)", -2),
    ("least(CAST(NULL AS TIMESTAMP), CAST(NULL AS TIMESTAMP))", None),
    ("year(TIMESTAMP '2024-12-31 23:30:00')", 2024),
    ("CAST(greatest(0, least(200, 100 + 250)) AS INTEGER)", 200),
]


def duck(expr: str) -> Any:
    con = duckdb.connect()
    con.execute(DUCKDB_MACROS)
    return con.execute(f"SELECT {expr}").fetchall()[0][0]


@pytest.mark.parametrize(("expr", "value"), PROBES, ids=[p[0] for p in PROBES])
def test_construct_on_duckdb(expr: str, value: Any) -> None:
    assert duck(expr) == value


@pytest.mark.spark
def test_constructs_on_spark(spark: Any) -> None:
    got = spark.sql(to_spark("SELECT " + ", ".join(e for e, _ in PROBES))).collect()[0]
    assert list(got) == [v for _, v in PROBES]


@pytest.mark.spark
def test_window_order_puts_nulls_where_duckdb_does(spark: Any) -> None:
    sql = ("SELECT k, sum(v) OVER (PARTITION BY g, v > 0 ORDER BY k, j ROWS BETWEEN UNBOUNDED PRECEDING "
           "AND CURRENT ROW) AS run FROM (SELECT * FROM (VALUES (1, NULL, 1, 'a'), (2, 1, 2, 'a'), "
           "(3, 0, -1, 'a'), (4, 2, 3, 'a')) t(k, j, v, g)) ORDER BY k")
    assert [tuple(r) for r in spark.sql(to_spark(sql)).collect()] == duckdb.connect().execute(sql).fetchall()


@pytest.mark.parametrize("name", list(statements("score")))
def test_every_step_translates(name: str) -> None:
    text = to_spark(statements("score")[name])
    assert "ADD_DURATION" not in text.upper() and "MIN_BY" not in text.upper()


R = 11010519800101001
CITY = City(
    [R, R + 1, R + 2],
    [Record("a", "x", "a.bad", R, D(2024, 6, 1)), Record("a", "f", "a.fix", R, D(2024, 7, 1), "x"),
     Record("a", "g1", "a.good", R + 1, D(2024, 12, 31, 23, 30)),
     Record("a", "g2", "a.good", R + 1, D(2025, 1, 1)),
     Record("b", "p", "b.penalty", R + 1, D(2025, 1, 10)), Record("b", "s", "b.star", R + 2, D(2024, 5, 1))],
    [Revocation("a", "f", D(2024, 8, 1))],
    [ObjectionStep(1, "opened", "b", "s", D(2025, 1, 5))],
)
T = D(2025, 1, 20)


@pytest.fixture
def store(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con: duckdb.DuckDBPyConnection = connect(tmp_path / "credo.duckdb")
    write(con, CITY)
    return con


def tables(con: duckdb.DuckDBPyConnection) -> tuple[list[Any], list[Any]]:
    return (con.execute("SELECT * FROM standings ORDER BY resident").fetchall(),
            con.execute("SELECT * FROM standing_hits ORDER BY ALL").fetchall())


@pytest.mark.spark
def test_score_on_spark_stores_what_duckdb_stores(spark: Any, store: duckdb.DuckDBPyConnection) -> None:
    with transaction(store):
        scoring.rescore(store, SUSPEND, T)
    on_duckdb = tables(store)
    assert scoring.rescore_on_spark(store, SUSPEND, T, spark=spark) == 3
    assert tables(store) == on_duckdb
    assert len(on_duckdb[0]) == 3 and on_duckdb[1]


@pytest.mark.spark
def test_spark_scores_per_jurisdiction_as_duckdb_does(spark: Any, store: duckdb.DuckDBPyConnection) -> None:
    """Several jurisdictions (credo.jurisdictions): one Spark run per jurisdiction, its members as the scope
    (membership read from the store), the same standings and hits per (resident, jurisdiction) as DuckDB's."""
    from tests.test_jurisdictions_scoring import layer_policy

    in_force = [layer_policy("national", None, ["b.star"], 100, True),
                layer_policy("capital", ["11"], ["a.good"], 140, False)]
    for version, p in enumerate(in_force, start=1):
        p.version = version
    store.execute("UPDATE residents SET district = CASE WHEN resident = ? THEN '330106' ELSE '110105' END", [R + 2])
    store.execute("INSERT INTO districts SELECT resident, district, NULL FROM residents")
    with transaction(store):
        scoring.rescore(store, in_force, T)
    on_duckdb = tables(store)
    assert scoring.rescore_on_spark(store, in_force, T, spark=spark) == 3
    assert tables(store) == on_duckdb
    assert sorted((r[0], r[6]) for r in on_duckdb[0]) == [(R, "capital"), (R, "national"), (R + 1, "capital"),
                                                         (R + 1, "national"), (R + 2, "national")]


@pytest.mark.spark
def test_a_ledger_in_a_lake_is_scored_without_duckdb(spark: Any, store: duckdb.DuckDBPyConnection,
                                                     tmp_path: Path) -> None:
    """A lake of Parquet folders (no revocations folder at all) scored on Spark, standings written back
    under the lake and loaded; the store's own ledger is empty, so they can only come from the lake."""
    with transaction(store):
        scoring.rescore(store, SUSPEND, T)
    expected = tables(store)
    lake = tmp_path / "lake"
    for name, sql in [("residents", "SELECT resident FROM residents"),
                      ("ledger", "SELECT * FROM ledger"),
                      ("objection_events", "SELECT * FROM objection_events")]:
        (lake / name).mkdir(parents=True)
        store.execute(f"COPY ({sql}) TO ? (FORMAT parquet)", [str(lake / name / "part-0.parquet")])
    revoked = store.execute("SELECT * FROM revocations").fetchall()
    store.execute("DELETE FROM ledger")
    store.execute("DELETE FROM revocations")
    assert scoring.rescore_on_spark(store, SUSPEND, T, lake=str(lake), spark=spark) == 3
    assert (lake / "standings").is_dir() and (lake / "standing_hits").is_dir()
    assert revoked  # the lake has no revocations: a:f still resolves R's a:x, the others are unchanged
    got = tables(store)
    assert got[0][1:] == expected[0][1:]
    assert (got[0][0][1], expected[0][0][1]) == (100, 65)


@pytest.mark.spark
def test_a_broken_step_on_spark_names_itself_and_shows_its_sql(spark: Any, store: duckdb.DuckDBPyConnection,
                                                               tmp_path: Path) -> None:
    """As on DuckDB: the step is named and the SQL shown is the text Spark ran, translated."""
    from credo.engines.spark import SparkScoring

    tables = SUSPEND.tables()
    tables["p_type_lists"] = tables["p_type_lists"].drop_columns(["grace_days"])
    engine = SparkScoring(spark, scoring.export(store, tmp_path / "in"))
    with pytest.raises(EngineError) as caught:
        engine.bind(tables, T)
    err = caught.value
    assert (err.engine, err.step, err.code) == ("spark", "hits", "engine_failed")
    assert "grace_days" in str(err).splitlines()[0]
    assert str(err).endswith(to_spark(statements("score")["hits"]))


@pytest.mark.spark
def test_credo_score_engine_spark(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's entry point: the store's policy in force, its ledger (or the lake named by
    ``CREDO_SPARK_LAKE``), the standings stored."""
    from credo import policy as policies
    from credo.scoring import score_with_spark
    from credo.service import Credo
    from tests.scoring_city import POLICY

    path = tmp_path / "credo.duckdb"
    con = connect(path)
    write(con, CITY)
    with transaction(con):
        policies.save(con, policies.load(POLICY), by="test", now=T)
        scoring.rescore(con, policies.current(con), T)
    expected = tables(con)
    con.close()
    credo = Credo.open(path)
    try:
        monkeypatch.delenv("CREDO_SPARK_LAKE", raising=False)
        assert score_with_spark(credo, T) == 3
        assert tables(credo.con)[0] == [(*row[:5], 1, *row[6:]) for row in expected[0]]
        monkeypatch.setenv("CREDO_SPARK_LAKE", str(tmp_path / "nowhere"))
        with pytest.raises(Exception, match="nowhere"):
            score_with_spark(credo, T)
        assert tables(credo.con)[0] == [(*row[:5], 1, *row[6:]) for row in expected[0]]  # a failed job changes nothing
    finally:
        credo.close()
