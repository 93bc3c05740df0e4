"""The Spark seam: the scoring pipeline's one SQL text, translated by sqlglot, over Parquet.

Why Spark at all: a city fits one machine, a country does not. The ledger a country keeps in a
data lake is scored where it lies, by the same named steps DuckDB runs (``credo.sql`` score.sql,
translated by ``credo.engines.dialect.to_spark``), so a second copy of the rules can never drift.

Inputs are Parquet sources named as the store's tables (``credo.engines.base.SOURCES``; the
columns read are those of ``sql/spark.sql``): a data lake's folders or an export of the store,
which the caller (``credo.scoring``) chooses. The policy travels as its compiled tables, the clock
as a one-row table. The governance reports run here too (``SparkGovernance``).

Time: the store keeps naive city wall-clock time. The session uses ``TIMESTAMP_NTZ`` as its
timestamp type and UTC as its zone, so no value is ever shifted, ``year()`` is the city's year,
and interval arithmetic is calendar arithmetic, clamped at month ends as DuckDB does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from credo import settings
from credo.engines.base import Engine, Reports
from credo.engines.dialect import to_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OPTIONAL = ("revocations", "objection_events", "batches", "known")
"""Sources a lake may lack (read as empty): a ledger with no revocation or objection yet, and the
known times, read only by a run at a known-at time (``credo.known``)."""
KEPT = ("marks", "hits")
"""Steps cached for a full run: each is small and read by two later steps (as in the DuckDB seam)."""

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
    cluster's ``spark-defaults.conf``. Splink's similarity jar is always added to ``spark.jars``.
    """
    import os
    import sys

    from pyspark.sql import SparkSession

    master = master or settings.current().spark_master
    builder = SparkSession.builder.master(master).appName("credo-score")
    options = {**CONF, **(dict(LOCAL_CONF) if master.startswith("local") else {}), **(conf or {})}
    options["spark.jars"] = ",".join(j for j in (options.get("spark.jars"), similarity_jar()) if j)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python UDFs run where credo is installed
    for key, value in options.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def similarity_jar() -> str:
    """Splink's string-similarity functions for Spark SQL (``jaro_winkler``, ``damerau_levenshtein``),
    a jar shipped inside the splink package for the Spark major version installed: on the session's
    class path from its start, so that identity matching on Spark compares names as it does on DuckDB
    (``credo.matchspark``). Scoring never calls them."""
    from splink.backends.spark import similarity_jar_location

    return str(similarity_jar_location())


class SparkScoring(Engine):
    """Binds the pipeline's inputs in a Spark session, then serves or writes its outputs by name.

    ``sources`` are the Parquet inputs by name (``SOURCES``); ``keep`` caches the steps a full run
    shares (worth it for a city, not for a test's few rows read once)."""

    name = "spark"

    def __init__(self, spark: SparkSession, sources: Mapping[str, str], *, keep: bool = False) -> None:
        self.spark, self.sources, self.keep = spark, sources, keep
        self._cached: list[str] = []

    def kept(self, scoped: bool) -> tuple[str, ...]:
        return KEPT if self.keep and not scoped else ()

    def translate(self, sql: str) -> str:
        return to_spark(sql)

    def _prepare(self) -> None:
        for name, path in self.sources.items():
            self._source(name, path).createOrReplaceTempView(name)

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

    def _register(self, name: str, table: pa.Table) -> None:
        self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def _view(self, name: str, sql: str) -> None:
        self.spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {sql}")

    def _keep(self, name: str, sql: str) -> None:
        self._view(name, sql)
        self.spark.catalog.cacheTable(name)
        self._cached.append(name)

    def _fetch(self, sql: str) -> pa.Table:
        """Collected to the driver (for tests and one resident, not for a city)."""
        return self.spark.sql(sql).toArrow()

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        return [row.asDict() for row in self.spark.sql(sql).collect()]

    def write(self, output: str, path: str) -> None:
        """An output written as Parquet by the executors, replacing what ``path`` held."""
        self.attempt(output, f"SELECT * FROM {output}",
                     lambda sql: self.spark.sql(sql).write.mode("overwrite").parquet(path))


_EMPTY: dict[str, pa.Table] = {
    "revocations": pa.table({"agency": pa.array([], pa.string()), "record_id": pa.array([], pa.string()),
                             "revoked_at": pa.array([], pa.timestamp("us"))}),
    "objection_events": pa.table({"objection": pa.array([], pa.int32()), "step": pa.array([], pa.string()),
                                  "resident": pa.array([], pa.int64()), "agency": pa.array([], pa.string()),
                                  "record_id": pa.array([], pa.string()),
                                  "happened_at": pa.array([], pa.timestamp("us"))}),
    "batches": pa.table({"batch": pa.array([], pa.int32()), "received_at": pa.array([], pa.timestamp("us"))}),
    "known": pa.table({"seq": pa.array([], pa.int64()), "known_at": pa.array([], pa.timestamp("us")),
                       "kind": pa.array([], pa.string()), "batch": pa.array([], pa.int32()),
                       "agency": pa.array([], pa.string()), "record_id": pa.array([], pa.string()),
                       "objection": pa.array([], pa.int32()), "step": pa.array([], pa.string()),
                       "policy": pa.array([], pa.int32())}),
}


PROPAGATION = "spark.sql.constraintPropagation.enabled"


class SparkGovernance(SparkScoring, Reports):
    """The governance reports on Spark: the same SQL as on DuckDB, translated by sqlglot.

    A capture is checkpointed (computed and kept, its lineage cut) as it is made: rebinding the
    pipeline for the other policy uncaches that run's shared steps, and Spark drops every cache
    built on an uncached view with it, which made each report recompute both scoring runs.
    Constraint propagation is off while the seam is open: on the union of the two sides'
    checkpoints it fails inside Spark 4.0's optimiser (``key not found: score#…``).
    """

    def __init__(self, spark: SparkSession, sources: Mapping[str, str], params: pa.Table) -> None:
        super().__init__(spark, sources, keep=True)
        self._captured: dict[str, DataFrame] = {}
        self._propagation = spark.conf.get(PROPAGATION) or "true"
        spark.conf.set(PROPAGATION, "false")
        self._register("params_in", params)

    def _capture(self, name: str, sql: str, side: int) -> None:
        frame = self.spark.sql(f"SELECT CAST(:side AS INT) AS side, c.* FROM ({sql}) c",
                               args={"side": side}).localCheckpoint()
        if name in self._captured:
            frame = self._captured[name].unionByName(frame)
        self._captured[name] = frame
        frame.createOrReplaceTempView(f"gov_{name}")

    def close(self) -> None:
        """Free what the run cached (its steps and the last capture's shared steps): the session
        outlives it (one per process). Checkpointed captures go with their frames, when the
        context's cleaner collects them."""
        self.release()
        self._captured.clear()
        self.spark.conf.set(PROPAGATION, self._propagation)
