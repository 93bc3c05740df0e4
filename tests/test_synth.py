"""The synthetic city: valid residents, consistent phones and records, dirty rows of every kind.

The checks here are written independently of synth (IDs, dates and JSON are re-validated by hand),
so they catch a generator that agrees with itself but not with spec §2-§3.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from credo.synth import (
    DIRTY_KINDS,
    POPULATION_COLUMNS,
    POPULATION_DIRTY,
    RECORD_COLUMNS,
    TELECOM_COLUMNS,
    TELECOM_DIRTY,
    synth_city,
)

TODAY = date(2025, 6, 15)
YEARS = 5
N = 3000
DIRTY = 0.05
POLICY = Path(__file__).resolve().parents[1] / "src" / "credo" / "policies" / "beijing.yaml"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
DISTRICTS = {"110101", "110102", "110105", "110106", "110107", "110108", "110109", "110111",
             "110112", "110113", "110114", "110115", "110116", "110117", "110118", "110119"}

Row = dict[str, Any]


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("clean")
    return out, synth_city(N, out, seed=7, years=YEARS, today=TODAY)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("dirty")
    return out, synth_city(N, out, seed=7, years=YEARS, today=TODAY, dirty=DIRTY)


def read(path: Path) -> list[Row]:
    if path.suffix == ".csv":
        text = {name: pa.string() for name in (*RECORD_COLUMNS, *POPULATION_COLUMNS, *TELECOM_COLUMNS)}
        options = pacsv.ConvertOptions(column_types=text, strings_can_be_null=True,
                                       quoted_strings_can_be_null=False)
        rows: list[Row] = pacsv.read_csv(path, convert_options=options).to_pylist()
    elif path.suffix == ".parquet":
        table = pq.read_table(path)
        assert all(pa.types.is_string(t) for t in table.schema.types)
        rows = table.to_pylist()
    else:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def feed(out: Path, summary: dict[str, Any], agency: str) -> list[Row]:
    return read(out / summary[agency]["file"])


# -- independent validators ---------------------------------------------------------------------


def id_problem(value: str | None) -> str | None:
    if value is None or len(value) != 18:
        return "bad_id_length"
    if not value[:17].isdigit():
        return "bad_id_length"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "bad_birth_date"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(value[:17], WEIGHTS, strict=True)) % 11]
    return None if value[17] == check else "bad_check_char"


def parse_when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        if len(value) > 10:
            return datetime.fromisoformat(value)
        return datetime.combine(date.fromisoformat(value), datetime.min.time())
    except ValueError:
        return None


class Holders:
    """Who held a phone on a day, from the telecom feed (held from start of valid_from to end of valid_to)."""

    def __init__(self, rows: list[Row]) -> None:
        self.spans: dict[str, list[tuple[date, date, str]]] = defaultdict(list)
        for r in rows:
            start = date.fromisoformat(r["valid_from"])
            end = date.fromisoformat(r["valid_to"]) if r["valid_to"] else date.max
            self.spans[r["phone"]].append((start, end, r["resident_id"]))
        for spans in self.spans.values():
            spans.sort()

    def at(self, phone: str, day: date) -> str | None:
        spans = self.spans.get(phone, [])
        i = bisect_right([s[0] for s in spans], day) - 1
        return spans[i][2] if i >= 0 and spans[i][1] >= day else None


def classify(agency: str, rows: list[Row], policy: dict[str, Any], residents: set[str],
             holders: Holders) -> list[str | None]:
    """The defect of each record row (a DIRTY_KINDS name), or None for a row ingest must accept."""
    types = policy["record_types"]
    seen: dict[str, Row] = {}
    out: list[str | None] = []
    for row in rows:
        out.append(_defect(agency, row, types, residents, holders, seen))
    return out


def _defect(agency: str, row: Row, types: dict[str, Any], residents: set[str], holders: Holders,
            seen: dict[str, Row]) -> str | None:
    rid = row["record_id"]
    if not rid:
        return "empty_record_id"
    if len(rid) > 64:
        return "long_record_id"
    if rid in seen:
        return "identical_duplicate" if seen[rid] == row else "conflicting_duplicate"
    seen[rid] = row
    if row["type"] not in types:
        return "unknown_type"
    if types[row["type"]]["agency"] != agency:
        return "foreign_type"
    when = parse_when(row["occurred_at"])
    if when is None:
        return "impossible_date"
    if when.year < 1900:
        return "date_before_1900"
    if when > datetime.combine(TODAY, datetime.min.time()) + timedelta(days=1):
        return "future_date"
    subject = row["subject"] or ""
    if len(subject) >= 15:
        problem = id_problem(subject)
        if problem:
            return problem
        if subject not in residents:
            return "unknown_resident"
    elif len(subject) == 11 and subject.isdigit() and subject[0] == "1":
        if holders.at(subject, when.date()) is None:
            return "unresolved_phone"
    else:
        return "bad_phone"
    try:
        attrs = json.loads(row["attributes"]) if row["attributes"] else {}
    except ValueError:
        return "attributes_not_object"
    if not isinstance(attrs, dict):
        return "attributes_not_object"
    if row["attributes"] and len(row["attributes"].encode()) > 4096:
        return "attributes_too_big"
    if row["resolves"] and row["resolves"] not in seen:
        return "missing_resolves"
    return None


def record_agencies(summary: dict[str, Any]) -> list[str]:
    return [a for a in summary if a not in ("population", "telecom")]


# -- tests --------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path: Path, clean: tuple[Path, dict[str, Any]]) -> None:
    out, summary = clean
    again = synth_city(N, tmp_path, seed=7, years=YEARS, today=TODAY)
    assert again == summary
    for info in summary.values():
        a, b = out / info["file"], tmp_path / info["file"]
        if a.suffix == ".parquet":
            assert pq.read_table(a).equals(pq.read_table(b))
        else:
            assert a.read_bytes() == b.read_bytes(), info["file"]
    synth_city(N, tmp_path / "other", seed=8, years=YEARS, today=TODAY)
    assert (tmp_path / "other" / "court.csv").read_bytes() != (out / "court.csv").read_bytes()


def test_all_three_formats_and_summary(clean: tuple[Path, dict[str, Any]], policy: dict[str, Any]) -> None:
    out, summary = clean
    agencies = {t["agency"] for t in policy["record_types"].values()}
    assert set(summary) == agencies | {"population", "telecom"}
    assert {Path(v["file"]).suffix for v in summary.values()} == {".csv", ".jsonl", ".parquet"}
    assert summary["population"]["file"] == "population.csv"
    for agency, info in summary.items():
        assert info["file"].startswith(agency + ".")
        assert len(read(out / info["file"])) == info["rows"]
        assert info["dirty"] == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(v["file"] for v in summary.values())
    records = sum(summary[a]["rows"] for a in record_agencies(summary))
    assert 2.0 * N < records < 5.0 * N  # about 3 records per resident over 5 years


def test_residents_are_valid_unique_adults_of_both_sexes(clean: tuple[Path, dict[str, Any]]) -> None:
    out, summary = clean
    rows = feed(out, summary, "population")
    assert list(rows[0]) == ["resident_id", "name", "district", "status", "status_date"]
    ids = [r["resident_id"] for r in rows]
    assert len(set(ids)) == len(ids) == N
    assert all(id_problem(i) is None for i in ids)
    assert all(r["district"] == r["resident_id"][:6] and r["district"] in DISTRICTS for r in rows)
    assert len({r["district"] for r in rows}) == 16
    sexes = Counter(int(i[14:17]) % 2 for i in ids)
    assert 0.4 < sexes[1] / N < 0.6
    ages = []
    for i in ids:
        born = date(int(i[6:10]), int(i[10:12]), int(i[12:14]))
        ages.append(TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day)))
    assert min(ages) >= 18 and max(ages) <= 90
    assert 35 < sorted(ages)[N // 2] < 55  # an adult pyramid, not a uniform spread
    statuses = Counter(r["status"] for r in rows)
    assert statuses[None] > 0.9 * N and statuses["deceased"] > 0 and statuses["moved_out"] > 0
    for r in rows:
        assert (r["status"] is None) == (r["status_date"] is None)
        if r["status_date"]:
            assert TODAY - timedelta(days=366 * YEARS) <= date.fromisoformat(r["status_date"]) < TODAY
        assert r["name"] and " " in r["name"]


def test_phone_holders_never_overlap_and_numbers_are_recycled(clean: tuple[Path, dict[str, Any]]) -> None:
    out, summary = clean
    rows = feed(out, summary, "telecom")
    residents = {r["resident_id"] for r in feed(out, summary, "population")}
    holders = Holders(rows)
    assert all(len(p) == 11 and p.isdigit() and p[0] == "1" for p in holders.spans)
    assert all(r["resident_id"] in residents for r in rows)
    for phone, spans in holders.spans.items():
        for (_, e1, _), (s2, _, _) in pairwise(spans):
            assert e1 < s2, f"{phone} has overlapping holders"
        assert all(s <= e for s, e, _ in spans)
    recycled = [p for p, spans in holders.spans.items() if len(spans) > 1]
    assert len(recycled) > 0.02 * N
    assert all(len({h for _, _, h in holders.spans[p]}) > 1 for p in recycled)
    assert len({r["resident_id"] for r in rows}) == N  # everyone has a phone


def test_records_are_consistent_with_policy_and_each_other(clean: tuple[Path, dict[str, Any]],
                                                            policy: dict[str, Any]) -> None:
    out, summary = clean
    types = policy["record_types"]
    residents = {r["resident_id"] for r in feed(out, summary, "population")}
    holders = Holders(feed(out, summary, "telecom"))
    earliest = datetime.combine(TODAY - timedelta(days=366 * YEARS), datetime.min.time())
    by_phone = resolved = 0
    for agency in record_agencies(summary):
        rows = feed(out, summary, agency)
        assert rows, agency
        assert list(rows[0]) == ["record_id", "type", "subject", "occurred_at", "resolves", "attributes"]
        assert classify(agency, rows, policy, residents, holders) == [None] * len(rows)
        where = {r["record_id"]: (i, r) for i, r in enumerate(rows)}
        assert len(where) == len(rows)
        for i, r in enumerate(rows):
            assert types[r["type"]]["agency"] == agency
            when = parse_when(r["occurred_at"])
            assert when is not None and earliest <= when < datetime.combine(TODAY, datetime.min.time())
            by_phone += len(r["subject"]) == 11
            attrs = json.loads(r["attributes"])
            assert isinstance(attrs, dict) and attrs
            if r["resolves"]:
                resolved += 1
                j, target = where[r["resolves"]]
                assert j < i
                assert parse_when(target["occurred_at"]) < when  # type: ignore[operator]
                assert target["type"] in types[r["type"]]["resolves"]
            else:
                assert not types[r["type"]].get("resolves"), "a resolving record must name what it resolves"
    assert by_phone > 0 and resolved > 0


def test_a_few_percent_are_dishonest_debtors(clean: tuple[Path, dict[str, Any]]) -> None:
    out, summary = clean
    rows = feed(out, summary, "court")
    settled = {r["resolves"] for r in rows if r["resolves"]}
    cutoff = datetime.combine(TODAY - timedelta(days=730), datetime.min.time())
    listed = {r["subject"] for r in rows if r["type"] == "court.judgment_default"
              and r["record_id"] not in settled and parse_when(r["occurred_at"]) >= cutoff}  # type: ignore[operator]
    assert 0.01 * N < len(listed) < 0.06 * N


@pytest.mark.parametrize("policy_name", ["hangzhou"])
def test_other_policy_drives_the_feeds(tmp_path: Path, policy_name: str) -> None:
    path = POLICY.with_name(f"{policy_name}.yaml")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    summary = synth_city(500, tmp_path, seed=3, years=2, today=TODAY, policy_file=path)
    assert set(summary) - {"population", "telecom"} == {t["agency"] for t in doc["record_types"].values()}
    kinds = {r["type"] for r in read(tmp_path / summary["volunteer-registry"]["file"])}
    assert "volunteer.civility_guide" in kinds  # a type only Hangzhou has, at the default rate or its own


def test_dirty_rows_of_every_kind_in_the_requested_share(dirty: tuple[Path, dict[str, Any]],
                                                         clean: tuple[Path, dict[str, Any]],
                                                         policy: dict[str, Any]) -> None:
    out, summary = dirty
    clean_out, clean_summary = clean
    residents = {r["resident_id"] for r in feed(clean_out, clean_summary, "population")}
    holders = Holders(feed(clean_out, clean_summary, "telecom"))
    kinds: Counter[str] = Counter()
    for agency in record_agencies(summary):
        rows = feed(out, summary, agency)
        defects = classify(agency, rows, policy, residents, holders)
        bad = sum(d is not None for d in defects)
        clean_rows = clean_summary[agency]["rows"]
        assert bad == summary[agency]["dirty"] == -(-clean_rows * DIRTY // 1), agency
        assert summary[agency]["rows"] == clean_rows + bad
        # the good rows are exactly the clean city's rows, in the same order
        good = [r for r, d in zip(rows, defects, strict=True) if d is None]
        assert good == feed(clean_out, clean_summary, agency)
        kinds.update(d for d in defects if d is not None)
        assert defects[0] is None or len(rows) < 40  # dirty rows are mixed in, not bunched at the start
    assert set(kinds) == set(DIRTY_KINDS), set(DIRTY_KINDS) - set(kinds)


def test_dirty_population_and_telecom_rows(dirty: tuple[Path, dict[str, Any]],
                                           clean: tuple[Path, dict[str, Any]]) -> None:
    out, summary = dirty
    clean_out, clean_summary = clean
    pop = feed(out, summary, "population")
    good = feed(clean_out, clean_summary, "population")
    bad = [r for r in pop
           if id_problem(r["resident_id"]) or (r["status_date"] and parse_when(r["status_date"]) is None)]
    assert len(bad) == summary["population"]["dirty"] == -(-N * DIRTY // 1)
    assert [r for r in pop if r not in bad] == good
    assert {id_problem(r["resident_id"]) or "impossible_date" for r in bad} == set(POPULATION_DIRTY)

    tel = feed(out, summary, "telecom")
    good_tel = feed(clean_out, clean_summary, "telecom")

    def telecom_problem(r: Row) -> str | None:
        p = r["phone"]
        if not (len(p) == 11 and p.isdigit() and p[0] == "1"):
            return "bad_phone"
        if parse_when(r["valid_from"]) is None:
            return "impossible_date"
        return id_problem(r["resident_id"])

    problems = [telecom_problem(r) for r in tel]
    expected = -(-len(good_tel) * DIRTY // 1)
    assert sum(p is not None for p in problems) == summary["telecom"]["dirty"] == expected
    assert {p for p in problems if p} == set(TELECOM_DIRTY)
    assert [r for r, p in zip(tel, problems, strict=True) if p is None] == good_tel


def test_progress_is_reported(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    summary = synth_city(100, tmp_path, seed=1, today=TODAY,
                         progress=lambda name, rows: seen.append((name, rows)))
    assert {name for name, _ in seen} == set(summary)
    last = {name: rows for name, rows in seen}
    assert last == {name: info["rows"] for name, info in summary.items()}


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        synth_city(0, tmp_path)
    with pytest.raises(ValueError):
        synth_city(10, tmp_path, dirty=1.5)
