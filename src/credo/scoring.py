"""Standings from the ledger: the scoring pipeline run for everyone or for a set of residents.

A full recompute and the incremental update of touched residents run the same
SQL over the same inputs; only the scope differs, which is why they agree
(and a property test holds them to it). Standings are stored with the time
they were computed for and the policy version, and are recomputed before
being served past their ``changes_at``.

This is the orchestration around the engines (``credo.engines``), which know nothing of the store's
meaning: which residents a run covers, where standings are stored, and for Spark which snapshot it
reads (the lake's Parquet, or an export of the store) and how its standings come back.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset

from credo import jurisdictions, settings
from credo.engines import spark as seam
from credo.engines.base import SOURCES
from credo.engines.duckdb import DuckDBScoring, unordered
from credo.known import Known
from credo.policy import Policy
from credo.sql import q
from credo.store import transaction

OUTPUTS = {"scored": "standings", "hits": "standing_hits"}
"""A Spark run's output -> the folder it is written to, under the run's output folder."""


def _engine(con: duckdb.DuckDBPyConnection, policy: Policy, as_of: datetime,
            scope: np.ndarray | None, known: Known | None = None) -> DuckDBScoring:
    engine = DuckDBScoring(con)
    engine.bind(policy.tables(), as_of, scope, None if known is None else known.table())
    return engine


WHOLE_SHARE, WHOLE_MIN = 0.25, 50_000
"""A scope of at least ``WHOLE_MIN`` residents and ``WHOLE_SHARE`` of the city is rescored as a
full run: a scoped run scans the ledger anyway and then filters every step by the scope, which
past about a quarter of the city costs more than scoring everyone. Smaller scopes take tens of
milliseconds either way and stay scoped."""


def better_whole(con: duckdb.DuckDBPyConnection, scope: np.ndarray) -> bool:
    """Whether rescoring ``scope`` is cheaper as a full run (see ``WHOLE_SHARE``)."""
    if len(scope) < WHOLE_MIN:
        return False
    residents = int(con.execute("SELECT count(*) FROM residents").fetchall()[0][0])
    return len(scope) >= WHOLE_SHARE * residents


def rescore(con: duckdb.DuckDBPyConnection, policy: Policy | Sequence[Policy], as_of: datetime,
            residents: Iterable[int] | np.ndarray | None = None) -> int:
    """Recompute and store standings (everyone when ``residents`` is None) under ``policy``, or under the
    policy of each jurisdiction in force (``credo.jurisdictions``): one run of the pipeline per
    jurisdiction, with its policy's tables and its members as the scope (one holding everyone: the
    run's own scope), so the SQL stays the one definition and a single jurisdiction holding everyone
    runs exactly as before, with no membership to compute.

    The caller holds the transaction, so a batch and its standings land together.
    Returns the number of residents whose standings were written.
    """
    in_force = [policy] if isinstance(policy, Policy) else list(policy)
    scope = None if residents is None else np.unique(np.fromiter(residents, np.int64))
    if scope is not None and len(scope) == 0:
        return 0
    runs = _runs(con, in_force, as_of, scope)
    with unordered(con):
        _clear(con, scope)
        count = 0
        for p, among, home in runs:
            if among is not None and len(among) == 0:
                continue
            only = None
            if among is not None and scope is None and p.regions and better_whole(con, among):
                among, only = None, among  # a city of most residents: a full run, its members' rows kept
            engine = _engine(con, p, as_of, among)
            write_standings(con, p, as_of, home, only)
            count = max(count, int(con.execute("SELECT count(*) FROM residents_in").fetchall()[0][0]))
            engine.release()
    if len(in_force) > 1 and any(p.regions for p in in_force):
        con.register("credo_rescored", pa.table({"resident": pa.array([] if scope is None else scope, pa.int64())}))
        count = int(con.execute(q("standing.residents_scored"), {"every": scope is None}).fetchall()[0][0])
        con.unregister("credo_rescored")
    return count


Home = bool | np.ndarray | None
"""Whose home a run's jurisdiction is: everyone's (True), no one's (None), or these residents'."""
Run = tuple[Policy, np.ndarray | None, Home]
"""One jurisdiction's run: its policy, its scope (None: everyone) and whose home it is."""


def _runs(con: duckdb.DuckDBPyConnection, in_force: Sequence[Policy], as_of: datetime,
          scope: np.ndarray | None) -> list[Run]:
    """The run of each jurisdiction; no membership is read when none has regions (everyone's home is then
    the first applied)."""
    if all(not p.regions for p in in_force):
        return [(p, scope, True if i == 0 else None) for i, p in enumerate(in_force)]
    members = jurisdictions.members(con, in_force, as_of, scope=scope)
    return [(p, *_members_of(members, p, scope)) for p in in_force]


def _members_of(members: pa.Table, policy: Policy, scope: np.ndarray | None) -> tuple[np.ndarray | None, Home]:
    """A jurisdiction's run: its members (None: the run's whole scope, for one holding everyone) and homes."""
    mine = members.filter(pc.equal(members.column("jurisdiction"), policy.jurisdiction))
    residents = mine.column("resident").to_numpy(zero_copy_only=False)
    homes = residents[mine.column("home").to_numpy(zero_copy_only=False)]
    return (scope if not policy.regions else residents), homes


def _clear(con: duckdb.DuckDBPyConnection, scope: np.ndarray | None) -> None:
    """Remove the standings a run replaces: every jurisdiction's (a resident who moved leaves one)."""
    if scope is None:
        con.execute("DELETE FROM standings")
        con.execute("DELETE FROM standing_hits")
        return
    con.register("credo_rescored", pa.table({"resident": pa.array(scope, pa.int64())}))
    con.execute("DELETE FROM standings WHERE resident IN (SELECT resident FROM credo_rescored)")
    con.execute("DELETE FROM standing_hits WHERE resident IN (SELECT resident FROM credo_rescored)")
    con.unregister("credo_rescored")


def write_standings(con: duckdb.DuckDBPyConnection, policy: Policy, as_of: datetime, home: Home = True,
                    only: np.ndarray | None = None) -> None:
    """Append the bound pipeline's standings and hits (``only``: of these residents), named by the policy's
    jurisdiction (the caller removed those they replace)."""
    listed = home is not None and not isinstance(home, bool)
    con.register("credo_only", pa.table({"resident": pa.array([] if only is None else only, pa.int64())}))
    con.register("credo_homes", pa.table({"resident": pa.array(home if listed else [], pa.int64())}))
    params = {"every": only is None, "home_listed": listed, "home_all": bool(home) if not listed else False,
              "jurisdiction": policy.jurisdiction}
    try:
        con.execute(q("standing.write_scored"), {**params, "scores": policy.doc.scores, "as_of": as_of,
                                                 "version": policy.version})
        con.execute(q("standing.write_hits"), params)
    finally:
        con.unregister("credo_only")
        con.unregister("credo_homes")


def compute(con: duckdb.DuckDBPyConnection, policy: Policy, as_of: datetime,
            residents: Iterable[int], *, records: bool = False, known: Known | None = None) -> dict[str, pa.Table]:
    """Standings, list hits and (with ``records``) each record's part, at any time T and, with
    ``known``, from only what was known at K (``credo.known``); nothing stored."""
    engine = _engine(con, policy, as_of, np.fromiter(residents, np.int64), known)
    out = {"scored": engine.arrow("scored"), "hits": engine.arrow("hits")}
    if records:
        out["explained"] = engine.arrow("explained", "ORDER BY resident, occurred_at, agency, record_id")
    engine.release()
    return out


def export(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, str]:
    """Write the store's scoring inputs to Parquet files in ``folder``; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in SOURCES:
        path = folder / f"{name}.parquet"
        con.execute(f"COPY ({q(f'spark.{name}')}) TO ? (FORMAT parquet)", [str(path)])
        paths[name] = str(path)
    return paths


def lake_sources(lake: str) -> dict[str, str]:
    """The input paths of a data lake folder (a local path or a URI Spark can read)."""
    base = lake.rstrip("/")
    return {name: f"{base}/{name}" for name in SOURCES}


@contextmanager
def snapshot(con: duckdb.DuckDBPyConnection, lake: str | None) -> Iterator[tuple[dict[str, str], str]]:
    """A Spark run's Parquet sources and the folder its outputs go to: the lake's own, or else one
    snapshot of the store exported to a temporary folder that lives as long as the run."""
    with tempfile.TemporaryDirectory(prefix="credo-spark-") as tmp:
        if lake:
            yield lake_sources(lake), lake.rstrip("/")
            return
        with transaction(con):  # one snapshot of the four tables
            sources = export(con, Path(tmp) / "in")
        yield sources, f"{tmp}/out"


def rescore_on_spark(con: duckdb.DuckDBPyConnection, policy: Policy | Sequence[Policy], as_of: datetime, *,
                     lake: str | None = None, spark: Any = None) -> int:
    """Recompute everyone's standing on Spark and store them, replacing the tables whole.

    The same pipeline as ``rescore``, run by ``credo.engines.spark`` over Parquet: the lake folder
    ``lake`` when given (the standings are written back under it, ``standings/`` and
    ``standing_hits/``; with several jurisdictions, under ``JURISDICTION/``), else a snapshot of the
    store exported for the run. As in ``rescore``, one run per jurisdiction, its members as the scope
    (membership is read from the store in SQL). The store changes in one transaction at the end, so a
    failed job leaves the old standings in place.
    """
    in_force = [policy] if isinstance(policy, Policy) else list(policy)
    runs = _runs(con, in_force, as_of, None)
    with snapshot(con, lake) as (sources, out):
        engine = seam.SparkScoring(spark if spark is not None else seam.session(), sources, keep=True)
        places = {p.jurisdiction: out if len(in_force) == 1 else f"{out}/{p.jurisdiction}" for p in in_force}
        try:
            for p, among, _ in runs:
                engine.bind(p.tables(), as_of, among)
                for output, folder in OUTPUTS.items():
                    engine.write(output, f"{places[p.jurisdiction]}/{folder}")
        finally:
            engine.release()
        with transaction(con), unordered(con):
            _clear(con, None)
            for p, _, home in runs:
                readable = places[p.jurisdiction].replace("s3a://", "s3://", 1)  # Spark's name; pyarrow's is s3://
                for output, folder in OUTPUTS.items():  # scanned lazily, column by column, by DuckDB
                    con.register(f"spark_{output}", pyarrow.dataset.dataset(f"{readable}/{folder}", format="parquet"))
                    con.execute(f"CREATE OR REPLACE TEMP VIEW {output} AS SELECT * FROM spark_{output}")
                write_standings(con, p, as_of, home)
                for output in OUTPUTS:
                    con.unregister(f"spark_{output}")
        return int(con.execute("SELECT count(DISTINCT resident) FROM standings").fetchall()[0][0])


class _Service(Protocol):
    """What ``score_with_spark`` needs of ``credo.service.Credo`` (named here, not imported)."""

    con: duckdb.DuckDBPyConnection

    @property
    def in_force(self) -> list[Policy]: ...


def score_with_spark(credo: _Service, when: datetime) -> int:
    """``credo score --engine spark``: score everyone on Spark and load the standings into the store.

    Reads the lake named by ``CREDO_SPARK_LAKE`` when set (standings are written back under it),
    else a Parquet export of the store. Returns the number of standings written.
    """
    lake = settings.current().spark_lake
    return rescore_on_spark(credo.con, credo.in_force, when, lake=lake)
