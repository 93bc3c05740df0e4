"""The Spark seam: the scoring pipeline's one SQL text, translated by sqlglot, over Parquet.

Why Spark at all: a city fits one machine, a country does not. The ledger a country keeps in a
data lake is scored where it lies, by the same named steps DuckDB runs (``credo.sql`` score.sql,
translated by ``credo.engines.dialect.to_spark``), so a second copy of the rules can never drift.

Inputs are the store's tables as Parquet (``sql/spark.sql`` names the columns read): either a
folder kept by the operator (the data lake, ``CREDO_SPARK_LAKE``: ``residents/``, ``ledger/``,
``revocations/``, ``objection_events/``) or, when none is set, an export of the DuckDB store made
for the run. The policy travels as its compiled tables, the clock as a one-row table.

Time: the store keeps naive city wall-clock time. The session uses ``TIMESTAMP_NTZ`` as its
timestamp type and UTC as its zone, so no value is ever shifted, ``year()`` is the city's year,
and interval arithmetic is calendar arithmetic, clamped at month ends as DuckDB does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa

from credo import settings
from credo.engines.dialect import to_spark
from credo.sql import q, statements
from credo.store import transaction

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SOURCES = ("residents", "ledger", "revocations", "objection_events")
"""The store tables scoring reads, each a Parquet file or folder of that name in a lake."""
OPTIONAL = ("revocations", "objection_events")
"""Sources a lake may lack (read as empty): a ledger with no revocation or objection yet."""
KEPT = ("marks", "hits")
"""Steps cached for a full run: each is small and read by two later steps (as in the DuckDB seam)."""
OUTPUTS = {"scored": "standings", "hits": "standing_hits"}
"""Pipeline output -> the folder it is written to, under the run's output folder."""

LOCAL_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}
"""Local mode stays on loopback, opens no UI port, and shuffles into a few partitions (the default
200 tiny tasks per stage cost more than the work on a few cores)."""
CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
}


def session(master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The Spark session for scoring (one per process; a second call returns the first).

    ``master`` defaults to ``CREDO_SPARK_MASTER`` (``local[2]``); a cluster URL (``spark://``,
    ``yarn``, ``k8s://``) is used as given, and its own settings come from ``conf`` or the
    cluster's ``spark-defaults.conf``.
    """
    import os

    from pyspark.sql import SparkSession

    master = master or settings.get("CREDO_SPARK_MASTER")
    builder = SparkSession.builder.master(master).appName("credo-score")
    options = {**CONF, **(dict(LOCAL_CONF) if master.startswith("local") else {}), **(conf or {})}
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for key, value in options.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


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
def inputs(con: duckdb.DuckDBPyConnection, lake: str | None) -> Iterator[tuple[dict[str, str], str]]:
    """A run's Parquet sources and the folder its outputs go to: the lake's own, or else one
    snapshot of the store exported to a temporary folder that lives as long as the run."""
    with tempfile.TemporaryDirectory(prefix="credo-spark-") as tmp:
        if lake:
            yield lake_sources(lake), lake.rstrip("/")
            return
        with transaction(con):  # one snapshot of the four tables
            sources = export(con, Path(tmp) / "in")
        yield sources, f"{tmp}/out"


class SparkScoring:
    """Binds the pipeline's inputs in a Spark session, then serves or writes its outputs by name."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._cached: list[str] = []

    def bind(self, tables: Mapping[str, pa.Table], as_of: datetime, sources: Mapping[str, str], *,
             keep: bool = False) -> None:
        """Register inputs and every step as temporary views; ``keep`` caches the shared steps."""
        spark = self.spark
        self.release()
        for name, path in sources.items():
            self._source(name, path).createOrReplaceTempView(name)
        for name, table in tables.items():
            spark.createDataFrame(table).createOrReplaceTempView(name)
        spark.createDataFrame(pa.table({"t": pa.array([as_of], pa.timestamp("us"))})) \
            .createOrReplaceTempView("clock_in")
        inputs = {
            "residents_in": q("inputs.residents_all"),
            "ledger_in": q("inputs.ledger_all"),
            "revocations_in": q("inputs.revocations_all"),
            "disputes_in": q("inputs.disputes_all"),
        }
        for name, sql in [*inputs.items(), *statements("score").items()]:
            spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {to_spark(sql)}")
            if keep and name in KEPT:
                spark.catalog.cacheTable(name)
                self._cached.append(name)

    def _source(self, name: str, path: str) -> Any:
        """A Parquet source. An optional one that does not exist reads as empty, with the store's
        columns; any other failure (a corrupt file, no permission) stops the run: silently scoring
        without the revocations would count revoked records."""
        from pyspark.errors import AnalysisException

        try:
            return self.spark.read.parquet(path)
        except AnalysisException as exc:
            if name not in OPTIONAL or exc.getCondition() != "PATH_NOT_FOUND":
                raise
            return self.spark.createDataFrame(_EMPTY[name])

    def release(self) -> None:
        """Uncache what the last bind kept."""
        for name in self._cached:
            self.spark.catalog.uncacheTable(name)
        self._cached.clear()

    def arrow(self, output: str) -> pa.Table:
        """An output collected to the driver (for tests and one resident, not for a city)."""
        return self.spark.table(output).toArrow()

    def write(self, output: str, path: str) -> None:
        """An output written as Parquet by the executors, replacing what ``path`` held."""
        self.spark.table(output).write.mode("overwrite").parquet(path)


_EMPTY: dict[str, pa.Table] = {
    "revocations": pa.table({"agency": pa.array([], pa.string()), "record_id": pa.array([], pa.string()),
                             "revoked_at": pa.array([], pa.timestamp("us"))}),
    "objection_events": pa.table({"objection": pa.array([], pa.int32()), "step": pa.array([], pa.string()),
                                  "agency": pa.array([], pa.string()), "record_id": pa.array([], pa.string()),
                                  "happened_at": pa.array([], pa.timestamp("us"))}),
}


class _Service(Protocol):
    """What ``score_with_spark`` needs of ``credo.service.Credo`` (named here, not imported)."""

    con: duckdb.DuckDBPyConnection

    @property
    def policy(self) -> Any: ...


def score_with_spark(credo: _Service, when: datetime) -> int:
    """``credo score --engine spark``: score everyone on Spark and load the standings into the store.

    Reads the lake named by ``CREDO_SPARK_LAKE`` when set (standings are written back under it),
    else a Parquet export of the store. Returns the number of standings written.
    """
    from credo import scoring  # the domain's orchestration; this is only the CLI's entry point

    lake = settings.get("CREDO_SPARK_LAKE") or None
    return scoring.rescore_on_spark(credo.con, credo.policy, when, lake=lake)
