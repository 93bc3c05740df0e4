"""Described subjects matched against the population registry with Splink (spec §10), on DuckDB or Spark.

A row that names no ID but a name, a birth date and a district is compared with the residents of the
registry who could be that person, and each candidate gets a match probability and the comparison
levels behind it. Nothing here decides: the candidates go to the review queue (``credo.review``) and a
person confirms one or declines.

Blocking: a candidate lives in the same district and was born on the same date, or on a date with the
same digits in another order (``1987-06-12``, ``1987-06-21`` and ``1987-12-06`` share the key
``01126789``) with a name whose pinyin starts with the same letter. A transposed birth date is one of the
usual mistakes of hand-kept records, and blocking on the exact date alone would make it unfindable; the
initial keeps the transposed blocks small (a digit key alone admits dozens of real dates, so ~77
candidates a row on a registry of a million, against ~15 with it). The registry rows inside the district
and digit blocks are read from the store by one join (``review.blocked_registry``) and handed, with the
described rows, to Splink: on a DuckDB connection of its own, so Splink's working tables never enter the
store, or (``CREDO_MATCH_ENGINE=spark``) on the Spark session (``credo.matchspark``). Only that step
(``Predict``) differs between the engines; the frames, the blocks and the ranking are this module's.

Comparisons (the levels, best first): the name (the same Hanzi; the same pinyin, a homophone written
with other characters; pinyin one edit apart; pinyin Jaro-Winkler at least 0.88; anything else), the
birth date (exact; its digits transposed, the same digits in another order; other), the district
(exact, or not). The transposed level is what lets a right name with a slipped date outweigh a stranger
born on the slipped date: among random pairs it is rare (its ``u`` is small), unlike "any other date".

Parameters, following Splink's Fellegi-Sunter model: ``u`` (how often a level occurs between two
different people) is estimated from random pairs of the registry itself, where almost every pair is two
different people; ``m`` (how often a level occurs between two records of the same person) cannot be
estimated without labelled pairs or enough described rows for expectation-maximisation, so it comes
from the documented priors in ``M_PRIORS``; the prior match probability is one in the registry's size.
The model (Splink's JSON) is written to a file the operator can read (``CREDO_IDENTITY_MODEL``) and is
estimated again whenever the registry has taken a batch since (docs/identity.md).
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from credo.sql import q

M_PRIORS: dict[str, tuple[float, ...]] = {
    "name": (0.86, 0.05, 0.05, 0.02, 0.02),
    "birth_date": (0.95, 0.045, 0.005),
    "district": (0.98, 0.02),
}
"""m per comparison level, best level first: the share of a person's own records, as hand-kept systems
write them, that fall in each level. A name is copied exactly most of the time; a homophone in other
characters, a one-letter slip and a looser likeness share most of the rest. A birth date is right 95
times in 100 and transposed in most of the rest. The district is almost always the one the registry
holds. Written down, not fitted: see docs/identity.md."""

U_FALLBACK: dict[str, tuple[float, ...]] = {
    "name": (0.001, 0.001, 0.002, 0.01, 0.986),
    "birth_date": (0.0001, 0.002, 0.9979),
    "district": (0.05, 0.95),
}
"""u where the registry is too small for random pairs to reach a level (a town of three in the tests):
used only for the levels the sampling left untrained."""

MIN_PROBABILITY = 0.001
"""Candidates less probable than this are not shown: a reviewer has nothing to weigh in them."""
U_PAIRS = 1_000_000
"""Random registry pairs Splink samples to estimate u."""
U_SAMPLE = 200_000
"""Registry rows the pairs are drawn from (all of them when the registry is smaller)."""
TOP = 5
"""Candidates kept per described row, best first."""
LEVELS: dict[str, tuple[str, ...]] = {
    "name": ("same name", "same pinyin", "pinyin one edit apart", "pinyin alike (Jaro-Winkler >= 0.88)",
             "different name"),
    "birth_date": ("same birth date", "birth date digits transposed", "other birth date"),
    "district": ("same district", "other district"),
}
"""The label of each comparison level, best first, as the review queue shows them."""

_LETTERS = re.compile(r"[^a-z]")
logging.getLogger("splink").setLevel(logging.ERROR)


@lru_cache(maxsize=200_000)
def pinyin(name: str) -> str:
    """A name as toneless pinyin letters only (``李伟`` and ``Li Wei`` are both ``liwei``), so that names
    written in Hanzi and in the Latin alphabet, or with homophones, compare alike."""
    from pypinyin import lazy_pinyin

    return _LETTERS.sub("", "".join(lazy_pinyin(name)).lower())


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
    """A query's rows as an Arrow table, without the copy a DB-API result makes."""
    relation = con.sql(sql, params=params)
    assert relation is not None
    return relation.to_arrow_table()


def _frame(rows: pa.Table) -> pa.Table:
    """Rows of ``unique_id, name, birth_date, district`` as Splink compares them: with each name's pinyin
    (computed once per distinct name) and the birth date's blocking key (in SQL, over the column)."""
    names = rows.column("name")
    distinct = pc.unique(names)
    spelt = pa.array([pinyin(n) if n is not None else None for n in distinct.to_pylist()], pa.string())
    with_pinyin = rows.append_column("name_pinyin", pc.take(spelt, pc.index_in(names, value_set=distinct)))
    con = duckdb.connect()
    try:
        con.register("frame_in", with_pinyin)
        return _arrow(con, q("review.framed"))
    finally:
        con.close()


def _settings(prior: float) -> Any:
    """Splink's settings: the comparisons with their priors, for a dedupe of the registry (u's pairs);
    ``estimate`` turns the estimated model into a link of described rows to the registry."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def level(kind: Any, name: str, i: int) -> Any:
        return kind.configure(m_probability=M_PRIORS[name][i], u_probability=U_FALLBACK[name][i],
                              label_for_charts=LEVELS[name][i])

    name = cl.CustomComparison(output_column_name="name", comparison_levels=[
        cll.NullLevel("name_pinyin"),
        level(cll.ExactMatchLevel("name"), "name", 0),
        level(cll.ExactMatchLevel("name_pinyin"), "name", 1),
        level(cll.DamerauLevenshteinLevel("name_pinyin", 1), "name", 2),
        level(cll.JaroWinklerLevel("name_pinyin", 0.88), "name", 3),
        level(cll.ElseLevel(), "name", 4)])

    born = cl.CustomComparison(output_column_name="birth_date", comparison_levels=[
        cll.NullLevel("birth_date"), level(cll.ExactMatchLevel("birth_date"), "birth_date", 0),
        level(cll.ExactMatchLevel("birth_digits"), "birth_date", 1), level(cll.ElseLevel(), "birth_date", 2)])
    district = cl.CustomComparison(output_column_name="district", comparison_levels=[
        cll.NullLevel("district"), level(cll.ExactMatchLevel("district"), "district", 0),
        level(cll.ElseLevel(), "district", 1)])
    return SettingsCreator(link_type="dedupe_only", unique_id_column_name="unique_id",
                           comparisons=[name, born, district],
                           blocking_rules_to_generate_predictions=[
                               block_on("district", "birth_date"),
                               block_on("district", "birth_digits", "name_initial")],
                           probability_two_random_records_match=prior, retain_matching_columns=True,
                           retain_intermediate_calculation_columns=True)


@dataclass(frozen=True)
class Model:
    """Splink's settings with their estimated parameters, and what they were estimated from."""

    settings: dict[str, Any]
    residents: int
    registry_batch: int

    def to_json(self) -> str:
        return json.dumps({"credo": {"residents": self.residents, "registry_batch": self.registry_batch,
                                     "m": "documented priors (credo.matching.M_PRIORS)",
                                     "u": f"random pairs of the registry (up to {U_PAIRS:,})"},
                           "splink": self.settings}, indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Model:
        doc = json.loads(text)
        return cls(doc["splink"], int(doc["credo"]["residents"]), int(doc["credo"]["registry_batch"]))


def in_dialect(model: Model, dialect: str) -> dict[str, Any]:
    """The model's parameters (every level's ``m`` and ``u``, the prior) on the comparisons and blocking
    rules as Splink writes them for another SQL ``dialect`` (``spark``): the stored model's conditions are
    DuckDB's SQL (``jaro_winkler_similarity``), which another engine does not read. The levels are matched
    by their labels, so a model written for other comparisons is refused rather than misread."""
    out: dict[str, Any] = _settings(float(model.settings["probability_two_random_records_match"])) \
        .create_settings_dict(dialect)
    out["link_type"] = model.settings["link_type"]
    for made, stored in zip(out["comparisons"], model.settings["comparisons"], strict=True):
        for level, given in zip(made["comparison_levels"], stored["comparison_levels"], strict=True):
            if level["label_for_charts"] != given["label_for_charts"]:
                raise ValueError(f"the identity model's level {given['label_for_charts']!r} is not "
                                 f"{level['label_for_charts']!r}: estimate it again")
            level.update({k: given[k] for k in ("m_probability", "u_probability") if k in given})
    return out


def registry_state(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(residents, the registry's last batch): a model estimated at another state is estimated again."""
    residents, batch = con.execute(q("review.registry_state")).fetchall()[0]
    return int(residents), int(batch or 0)


def estimate(con: duckdb.DuckDBPyConnection) -> Model:
    """u from random pairs of the registry (a dedupe of the registry with itself), m from ``M_PRIORS``."""
    from splink import DuckDBAPI, Linker

    residents, batch = registry_state(con)
    sample = _frame(_arrow(con, q("review.registry_sample"), {"n": U_SAMPLE}))
    db = DuckDBAPI(duckdb.connect())
    linker = Linker(db.register(sample, table_name="registry"), _settings(1 / max(residents, 2)),
                    log_level=logging.ERROR)
    if sample.num_rows >= 2:
        linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=1)
    settings: dict[str, Any] = linker.misc.save_model_to_json(None)
    settings["link_type"] = "link_only"
    db.duckdb_con.close()
    return Model(settings, residents, batch)


PREDICTED = ("unique_id_l", "unique_id_r", "match_probability", "match_weight",
             "gamma_name", "mw_name", "name_l", "name_r", "gamma_birth_date", "mw_birth_date", "birth_date_l",
             "birth_date_r", "gamma_district", "mw_district", "district_l", "district_r")
"""The columns of Splink's predictions that the ranking reads (``review.ranked``), on any engine."""

Predict = Callable[[pa.Table, pa.Table, Model], pa.Table]
"""Splink's predictions (``PREDICTED``, those at least ``MIN_PROBABILITY`` probable) for the described rows
(left) against their blocks of the registry (right) under a model: the one step that runs on
an engine of the operator's choice (``CREDO_MATCH_ENGINE``). The blocks, the frames and the ranking
around it are the same whatever the engine, so the candidates are too."""


def predict_on_duckdb(left: pa.Table, right: pa.Table, model: Model) -> pa.Table:
    """``Predict`` with Splink on a DuckDB connection of its own (so its working tables never enter the
    store)."""
    from splink import DuckDBAPI, Linker

    db = DuckDBAPI(duckdb.connect())
    try:
        linker = Linker([db.register(left, table_name="described"), db.register(right, table_name="registry")],
                        copy.deepcopy(model.settings), log_level=logging.ERROR)
        predicted = linker.inference.predict(threshold_match_probability=MIN_PROBABILITY).as_duckdbpyrelation()
        return predicted.select(*PREDICTED).to_arrow_table()
    finally:
        db.duckdb_con.close()


def candidates(con: duckdb.DuckDBPyConnection, model: Model, described: pa.Table,
               predict: Predict = predict_on_duckdb) -> pa.Table:
    """For each described row (``pos, name, birth_date, district``): up to ``TOP`` registry residents in
    its blocks, best first, as ``pos, rank, resident, probability, weight, comparisons`` (JSON: per
    comparison its level and weight). ``predict`` runs Splink (on DuckDB, or ``credo.matchspark``)."""
    empty = pa.table({"pos": pa.array([], pa.int64()), "rank": pa.array([], pa.int32()),
                      "resident": pa.array([], pa.int64()), "probability": pa.array([], pa.float64()),
                      "weight": pa.array([], pa.float64()), "comparisons": pa.array([], pa.string())})
    if not described.num_rows:
        return empty
    left = _frame(described.select(["pos", "name", "birth_date", "district"]).rename_columns(
        ["unique_id", "name", "birth_date", "district"]))
    con.register("described_in", left.select(["unique_id", "district", "birth_digits"]))
    try:
        found = _arrow(con, q("review.blocked_registry"))
    finally:
        con.unregister("described_in")
    if not found.num_rows:
        return empty
    predicted = predict(left, _frame(found), model)
    ranking = duckdb.connect()
    try:
        ranking.register("predicted", predicted)
        ranking.register("shown", pa.table({"top": [TOP], "least": [MIN_PROBABILITY]}))
        ranking.register("levels", _levels())
        ranked = _arrow(ranking, q("review.ranked"))
    finally:
        ranking.close()
    return ranked.set_column(1, "rank", pc.cast(ranked.column("rank"), pa.int32()))


def _levels() -> pa.Table:
    """Splink's gamma values per comparison (the highest is the best level) with the levels' labels."""
    rows = [(name, len(labels) - 1 - i, label) for name, labels in LEVELS.items() for i, label in enumerate(labels)]
    return pa.table({"comparison": [r[0] for r in rows], "gamma": [r[1] for r in rows], "label": [r[2] for r in rows]})
