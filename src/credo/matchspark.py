"""Identity matching on Spark (spec §10, ``CREDO_MATCH_ENGINE=spark``): the same Splink model on Splink's
Spark API, for a backlog too large for one DuckDB process to compare at once.

Only Splink's step moves (``credo.matching.Predict``): the described rows and their blocks of the registry
are framed as on DuckDB (the same pinyin, the same blocking keys, read from the store by the same join),
handed to Spark as Arrow, compared and scored there with the model's own settings (the same blocking
rules, comparison levels, ``m``, ``u`` and prior, from the store or the operator's file), and only the
predictions at least ``MIN_PROBABILITY`` probable come back to be ranked by the same SQL. The views a
run made (its inputs, Splink's persisted steps) are uncached and dropped when it ends, so a long-lived
process does not accumulate them. The names'
levels use Splink's ``damerau_levenshtein`` for Spark SQL, from the jar the session loads at its start
(``credo.engines.spark.similarity_jar``), and ``jaro_winkler`` as DuckDB computes it (a Python UDF,
replacing the jar's, whose variant differs on some pairs); tests/test_matchspark.py holds the
ranked candidates and their probabilities to those of DuckDB.

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
        from pyspark.sql.functions import udf
        from pyspark.sql.types import DoubleType
        from splink import Linker, SparkAPI

        run = uuid.uuid4().hex[:12]
        names = (f"described_{run}", f"registry_{run}")  # the described rows stay Splink's left side
        before = _views(spark)
        db = SparkAPI(spark_session=spark, break_lineage_method="persist")  # type: ignore[no-untyped-call]
        spark.udf.register("jaro_winkler", udf(jaro_winkler, DoubleType(), useArrow=False))
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


def jaro_winkler(s1: str | None, s2: str | None) -> float | None:
    """Jaro-Winkler as DuckDB's ``jaro_winkler_similarity`` computes it (the classic definition: matches
    within half the longer length less one, the common prefix up to 4 weighted 0.1, boosted only above
    0.7). Splink's jar computes another variant on some pairs (``zhangguiying`` and ``zhangjing``: DuckDB
    0.886, above the level's 0.88), which moved candidates; on Spark this function replaces the jar's."""
    if s1 is None or s2 is None:
        return None
    l1, l2 = len(s1), len(s2)
    if not l1 or not l2:
        return 0.0
    window = max(max(l1, l2) // 2 - 1, 0)
    m1, m2 = [False] * l1, [False] * l2
    matches = 0
    for i, c in enumerate(s1):
        for j in range(max(0, i - window), min(l2, i + window + 1)):
            if not m2[j] and s2[j] == c:
                m1[i] = m2[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    t, k = 0, 0
    for i in range(l1):
        if m1[i]:
            while not m2[k]:
                k += 1
            if s1[i] != s2[k]:
                t += 1
            k += 1
    jaro = (matches / l1 + matches / l2 + (matches - t // 2) / matches) / 3
    if jaro <= 0.7:
        return jaro
    prefix = 0
    for a, b in zip(s1[:4], s2[:4], strict=False):
        if a != b:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)
