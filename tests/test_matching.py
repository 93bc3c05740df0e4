"""The matching of described subjects (credo.matching, Splink on DuckDB): names in Hanzi and in
pinyin, the blocks, the levels and the ranking, on a registry written straight into a real store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from credo import ids, matching, store

BORN = date(1987, 6, 12)
PEOPLE = [  # (key's parts, name, district)
    (("110112", BORN, 101), "李伟", "110112"),
    (("110112", BORN, 103), "李威", "110112"),  # a homophone, born the same day in the same district
    (("110112", date(1987, 6, 21), 105), "李伟", "110112"),  # a namesake born on the transposed date
    (("110112", date(1990, 1, 1), 107), "王芳", "110112"),
    (("110105", BORN, 109), "李伟", "110105"),  # the same name and date, another district
]
KEYS = [ids.resident_key(ids.make_resident_id(*parts)) for parts, _, _ in PEOPLE]


@pytest.fixture()
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = store.connect(tmp_path / "m.duckdb")
    c.executemany("INSERT INTO residents VALUES (?, ?, ?, 'active', NULL, NULL, 1)",
                  [[k, name, district] for k, (_, name, district) in zip(KEYS, PEOPLE, strict=True)])
    yield c
    c.close()


@pytest.mark.parametrize(("name", "spelt"), [("李伟", "liwei"), ("Li Wei", "liwei"), ("欧阳·娜娜", "ouyangnana"),
                                             ("ZHANG  San", "zhangsan"), ("吕", "lv")])
def test_names_compare_in_toneless_pinyin(name: str, spelt: str) -> None:
    assert matching.pinyin(name) == spelt


def _match(con: duckdb.DuckDBPyConnection, name: str, born: date, district: str) -> list[dict[str, object]]:
    model = matching.estimate(con)
    described = pa.table({"pos": pa.array([7], pa.int64()), "name": [name], "birth_date": pa.array([born], pa.date32()),
                          "district": [district]})
    return matching.candidates(con, model, described).to_pylist()


def test_the_same_person_ranks_first_with_the_levels_behind_it(con: duckdb.DuckDBPyConnection) -> None:
    found = _match(con, "李伟", BORN, "110112")
    assert [f["resident"] for f in found][:3] == [KEYS[0], KEYS[1], KEYS[2]]
    assert all(f["pos"] == 7 for f in found) and [f["rank"] for f in found] == list(range(1, len(found) + 1))
    levels = [{k: v["level"] for k, v in json.loads(str(f["comparisons"])).items()} for f in found]
    assert levels[0] == {"name": "same name", "birth_date": "same birth date", "district": "same district"}
    assert levels[1]["name"] == "same pinyin"
    assert levels[2]["birth_date"] == "birth date digits transposed"
    assert KEYS[3] not in [f["resident"] for f in found]  # another date, not a transposition: not in a block
    assert KEYS[4] not in [f["resident"] for f in found]  # another district
    probabilities = [float(str(f["probability"])) for f in found]
    assert probabilities == sorted(probabilities, reverse=True) and probabilities[0] > probabilities[1] > 0.001


def test_a_name_written_in_pinyin_finds_the_hanzi(con: duckdb.DuckDBPyConnection) -> None:
    [first, *_] = _match(con, "Li Wei", BORN, "110112")
    assert first["resident"] in (KEYS[0], KEYS[1])
    assert json.loads(str(first["comparisons"]))["name"]["level"] == "same pinyin"


def test_a_transposed_date_still_finds_the_person(con: duckdb.DuckDBPyConnection) -> None:
    found = _match(con, "王芳", date(1990, 1, 10), "110112")  # 1990-01-01 written as 1990-01-10
    assert found[0]["resident"] == KEYS[3]
    assert json.loads(str(found[0]["comparisons"]))["birth_date"]["level"] == "birth date digits transposed"


def test_nobody_in_the_blocks_gives_no_candidate(con: duckdb.DuckDBPyConnection) -> None:
    assert _match(con, "李伟", date(1955, 3, 3), "110112") == []
