"""Identity matching on Spark (spec §10, ``CREDO_MATCH_ENGINE=spark``): the same Splink model on Splink's
Spark API, for a backlog too large for one DuckDB process to compare at once.

Only Splink's step moves (``credo.matching.Predict``): the described rows and their blocks of the registry
are framed as on DuckDB (the same pinyin, the same blocking keys, read from the store by the same join),
handed to Spark as Arrow, compared and scored there with the model's own settings (the same blocking
rules, comparison levels, ``m``, ``u`` and prior, from the store or the operator's file), and only the
predictions at least ``MIN_PROBABILITY`` probable come back to be ranked by the same SQL. The views a
run made (its inputs, Splink's persisted steps) are uncached and dropped when it ends, so a long-lived
process does not accumulate them. The names'
levels use Splink's ``jaro_winkler`` and ``damerau_levenshtein`` for Spark SQL, from the jar the session
loads at its start (``credo.engines.spark.similarity_jar``); tests/test_matchspark.py holds the ranked
candidates and their probabilities to those of DuckDB.

The session is the process's one scoring session (``credo.engines.spark.session``: ``CREDO_SPARK_MASTER``).
Splink's intermediate tables are persisted in the session (not written as Parquet checkpoints, which
would need a checkpoint folder every executor can write).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import pyarrow as pa

from credo.matching import MIN_PROBABILITY, PREDICTED, Model, Predict, in_dialect

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def predict_on_spark(spark: SparkSession) -> Predict:
    """``credo.matching.Predict`` with Splink's Spark API on ``spark``."""

    def predict(left: pa.Table, right: pa.Table, model: Model) -> pa.Table:
        from splink import Linker, SparkAPI

        run = uuid.uuid4().hex[:12]
        names = (f"described_{run}", f"registry_{run}")  # the described rows stay Splink's left side
        before = _views(spark)
        db = SparkAPI(spark_session=spark, break_lineage_method="persist")  # type: ignore[no-untyped-call]
        try:
            linker = Linker([db.register(left, table_name=names[0]), db.register(right, table_name=names[1])],
                            in_dialect(model, "spark"), log_level=logging.ERROR)
            frame = linker.inference.predict(threshold_match_probability=MIN_PROBABILITY)
            out: pa.Table = frame.as_spark_dataframe().select(*PREDICTED).toArrow()
        finally:
            for name in _views(spark) - before:  # Splink's persisted steps and the two inputs, freed
                if spark.catalog.isCached(name):
                    spark.catalog.uncacheTable(name)
                spark.catalog.dropTempView(name)
        return out

    return predict


def _views(spark: SparkSession) -> set[str]:
    """The session's temporary views: what a run leaves is what it made."""
    return {t.name for t in spark.catalog.listTables() if t.isTemporary}
