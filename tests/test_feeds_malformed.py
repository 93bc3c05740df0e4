"""The malformed-feed corpus (tests/fixtures/malformed/): every file gets a clear answer, nothing is lost.

A file is either refused whole (``UnreadableFeed``: exit 2, the message names the file and, where there
is one, the line and column) or read, with each bad row kept as a reject naming its line and field.
For a readable file, rows accepted + duplicates + rejected equal the rows in the file, counted here by
an independent reader (Python's csv module, a line count, Parquet metadata).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from credo.errors import UnreadableFeed
from credo.service import Credo
from tests.fixtures.ingest_city import NOW, city
from tests.fixtures.malformed_corpus import HERE, agency_of, corpus

Unreadable = str  # words the refusal must contain (besides the file's name)
Outcome = tuple[int, Counter[str]]  # (accepted, rejected by reason)

EXPECT: dict[str, Unreadable | Outcome] = {
    "utf8_bom.csv": (2, Counter()),
    "utf16_bom.csv": "line 1: the file is UTF-16",
    "utf16_no_bom.csv": "line 1: the header holds NUL bytes",
    "latin1.csv": "line 3, column 'attributes': byte 0xE9 is not UTF-8",
    "gbk.csv": "line 3, column 'attributes': byte 0xB1 is not UTF-8",
    "semicolon.csv": "line 1: the header is separated by semicolons",
    "tabs.csv": "line 1: the header is separated by tabs",
    "crlf.csv": (2, Counter({"missing_subject": 1})),
    "cr_only.csv": (2, Counter({"missing_subject": 1})),
    "quoted_newlines.csv": (1, Counter({"bad_attributes": 1, "missing_subject": 1})),
    "blank_lines.csv": (1, Counter({"unknown_type": 1})),
    "unbalanced_quote.csv": (1, Counter({"malformed_row": 1})),
    "short_and_long_rows.csv": (1, Counter({"malformed_row": 2})),
    "quoted_header.csv": (1, Counter()),
    "spaced_header.csv": (1, Counter()),
    "huge_fields.csv": (1, Counter({"attributes_too_large": 1, "record_id_too_long": 1})),
    "sql_looking.csv": (1, Counter({"unknown_type": 1, "id_length": 1, "bad_date": 1})),
    "control_and_nul.csv": (0, Counter({"unsafe_characters": 1, "id_length": 1})),  # BEL in a record_id
    "fullwidth_digits.csv": (0, Counter({"id_format": 1})),
    "odd_dates.csv": (0, Counter({"bad_date": 9})),
    "empty.csv": "line 1: empty file",
    "blank_only.csv": "line 1: empty file",
    "header_only.csv": (0, Counter()),
    "header_only_no_newline.csv": (0, Counter()),
    "extra_column.csv": "line 1: unknown column 'colour'",
    "missing_column.csv": "line 1: missing column 'attributes'",
    "duplicate_column.csv": "line 1: column 'type' appears twice",
    "trailing_comma_header.csv": "line 1: unknown column ''",
    "header_case.csv": "line 1: unknown column 'Record_ID'",
    "not_a_csv.csv": "line 1: this is a Parquet file",
    "wrong_extension.txt": "unknown feed format '.txt'",
    "jsonl_broken_line.jsonl": (2, Counter({"malformed_row": 1})),
    "jsonl_duplicate_keys.jsonl": (1, Counter({"malformed_row": 1})),
    "jsonl_nan_infinity.jsonl": (1, Counter({"malformed_row": 2})),
    "jsonl_not_objects.jsonl": (1, Counter({"malformed_row": 4})),
    "jsonl_typed_values.jsonl": (3, Counter({"bad_attributes": 2, "bad_date": 1, "id_length": 1,
                                             "missing_date": 1})),
    "jsonl_unknown_field.jsonl": (1, Counter({"malformed_row": 1})),
    "jsonl_empty.jsonl": "line 1: empty file",
    "jsonl_latin1.jsonl": "line 1: byte 0xE9 is not UTF-8",
    "jsonl_bom.jsonl": (1, Counter()),
    "jsonl_huge_value.jsonl": (1, Counter({"attributes_too_large": 1})),
    "jsonl_truncated.jsonl": (1, Counter({"malformed_row": 1})),
    "jsonl_blank_lines.jsonl": (1, Counter({"unknown_type": 1})),
    "truncated.parquet": "not a readable Parquet file",
    "garbage.parquet": "not a readable Parquet file",
    "empty.parquet": "not a readable Parquet file",
    "zero_rows.parquet": (0, Counter()),
    "not_a_parquet.parquet": "not a readable Parquet file",
    "typed_columns.parquet": (2, Counter({"missing_subject": 1})),
    "float_nan_inf.parquet": (0, Counter({"bad_date": 2, "id_length": 2, "missing_subject": 1})),
    "mixed_values.parquet": (2, Counter({"id_length": 2, "missing_subject": 2})),
    "list_column.parquet": (0, Counter({"id_length": 2})),
    "binary_latin1.parquet": "row 2, column 'record_id': bytes that are not UTF-8",
    "dictionary_and_large.parquet": (2, Counter()),
    "extra_column.parquet": "schema: unknown column 'colour'",
    "missing_column.parquet": "schema: missing column 'subject'",
    "population_bad_rows.csv": (1, Counter({"id_length": 1, "missing_name": 1, "bad_district": 1,
                                            "bad_status": 1, "bad_date": 1})),
    "telecom_overlaps.csv": (0, Counter({"overlapping_holder": 3, "bad_phone": 1, "bad_period": 1})),
}
"""What each file must give: the words of its refusal, or (rows accepted, rejects by reason)."""

FILES = sorted(p.name for p in HERE.iterdir())

# Lines and fields of some rejects, where the line is the point (quoted newlines, blank lines, CR).
WHERE = {
    "quoted_newlines.csv": {(2, "attributes"), (6, "subject")},
    "blank_lines.csv": {(5, "type")},
    "cr_only.csv": {(4, "subject")},
    "jsonl_blank_lines.jsonl": {(6, "type")},
    "jsonl_duplicate_keys.jsonl": {(2, "subject")},
    "jsonl_unknown_field.jsonl": {(2, "colour")},
    "short_and_long_rows.csv": {(3, "(row)"), (4, "(row)")},
}


def test_corpus_is_large_and_current() -> None:
    assert len(FILES) >= 40
    assert set(FILES) == set(corpus()) == set(EXPECT)
    for name, make in corpus().items():  # the checked-in files are what the generator makes
        assert (HERE / name).read_bytes() == make(Path(name).stem), f"regenerate {name}"


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Credo]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDO_NOW", NOW)
        credo = city(tmp_path_factory.mktemp("corpus"))
        yield credo
        credo.close()


def rows_in(path: Path) -> int:
    """Rows in a readable file, counted without credo's readers."""
    if path.suffix == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    text = path.read_bytes().decode("utf-8-sig")
    if path.suffix == ".jsonl":
        return sum(1 for line in text.split("\n") if line.strip())
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    return len(records) - 1


@pytest.mark.parametrize("name", FILES)
def test_malformed_feed(town: Credo, name: str) -> None:
    path = HERE / name
    agency = agency_of(name)
    expected = EXPECT[name]
    if isinstance(expected, str):
        with pytest.raises(UnreadableFeed) as refused:
            town.ingest_files(agency, [path])
        assert str(path) in refused.value.message and expected in refused.value.message
        return
    result = town.ingest_files(agency, [path])[0]
    assert (result.accepted, result.rejected) == expected
    assert result.rows == rows_in(path)
    assert result.accepted + result.duplicates + sum(result.rejected.values()) == result.rows  # nothing lost
    kept = [r for r in town.rejects(agency, limit=100_000)["rejects"] if r["source"] == str(path)]
    assert Counter(r["reason"] for r in kept) == result.rejected
    for r in kept:
        assert r["line"] >= 1 and r["field"] and r["row_text"]
        assert r["message"].startswith(f"{r['field']}: ") or r["field"] == "(row)"
    if name in WHERE:
        assert WHERE[name] <= {(r["line"], r["field"]) for r in kept}


def test_cli_answers_every_file_without_a_traceback(tmp_path: Path) -> None:
    """One `credo ingest` over the whole corpus: each unreadable file is named, the rest load, exit 2."""
    exe = Path(sys.executable).parent / "credo"
    env = {"CREDO_NOW": NOW, "CREDO_DB": str(tmp_path / "city.duckdb"), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDO_NOW", NOW)
        city(tmp_path).close()
    for agency in ("tax", "population", "telecom"):
        names = [n for n in FILES if agency_of(n) == agency]
        proc = subprocess.run([str(exe), "ingest", "--agency", agency, *[str(HERE / n) for n in names]],
                              capture_output=True, text=True, env=env, timeout=300)
        assert "Traceback" not in proc.stderr + proc.stdout
        refused = [n for n in names if isinstance(EXPECT[n], str)]
        assert proc.returncode == (2 if refused else 1), proc.stderr
        for n in refused:
            assert f"error: {HERE / n}:" in proc.stderr
        for n in names:
            if not isinstance(EXPECT[n], str):
                assert f"{HERE / n}: " in proc.stdout
