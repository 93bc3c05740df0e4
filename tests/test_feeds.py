"""Feed readers and the vectorised value checks: line numbers, ISO 8601 parsing, repeated keys, progress."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credo import feeds, ingest

TZ = "Asia/Shanghai"

# (text, expected city wall time or None when it is not an ISO 8601 date or date-time)
TIMES: list[tuple[str, datetime | None]] = [
    ("2024-08-01", datetime(2024, 8, 1)),
    ("2024-08-01T09:30", datetime(2024, 8, 1, 9, 30)),
    ("2024-08-01 09:30:15", datetime(2024, 8, 1, 9, 30, 15)),
    ("2024-08-01T09:30:15.5", datetime(2024, 8, 1, 9, 30, 15, 500000)),
    ("2024-08-01T09:30:15,25", datetime(2024, 8, 1, 9, 30, 15, 250000)),
    ("2024-08-01T09:30:15.123456789", datetime(2024, 8, 1, 9, 30, 15, 123456)),
    ("2024-08-01T01:00:00Z", datetime(2024, 8, 1, 9, 0)),
    ("2024-08-01T09:00+08:00", datetime(2024, 8, 1, 9, 0)),
    ("2024-08-01T09:00:00+0800", datetime(2024, 8, 1, 9, 0)),
    ("2024-08-01T09:00:00+08", datetime(2024, 8, 1, 9, 0)),
    ("2024-08-01T09:00:00-05:30", datetime(2024, 8, 1, 22, 30)),
    ("2024-08-01T00:00:00.000000Z", datetime(2024, 8, 1, 8, 0)),  # how Arrow prints a UTC timestamp
    ("1988-07-01T00:00:00Z", datetime(1988, 7, 1, 9, 0)),  # China kept summer time in 1988: +09:00
    ("2024-02-29", datetime(2024, 2, 29)),
    ("2000-02-29", datetime(2000, 2, 29)),
    ("1850-01-01", datetime(1850, 1, 1)),  # parsed; "before 1900" is a separate rule
    ("2023-02-29", None),
    ("1900-02-29", None),
    ("2024-13-01", None),
    ("2024-00-10", None),
    ("2024-04-31", None),
    ("2024-08-01T24:00", None),
    ("2024-08-01T23:60", None),
    ("2024-08-01T23:59:60", None),
    ("2024-08-01T10", None),
    ("2024-08-01T10:00:0", None),
    ("2024-08-01T10:00:00.", None),
    ("2024-08-01T10:00:00+25:00", None),
    ("2024-08-01T10:00:00+08:61", None),
    ("2024-8-1", None),
    ("20240801", None),
    ("2024/08/01", None),
    ("01-08-2024", None),
    ("2024-W31", None),
    ("infinity", None),
    ("NaN", None),
    ("２０２４-08-01", None),
    ("2024-08-01x", None),
    ("2024-08-01T10:00:00.1234567890", None),
    ("2024-08-01T10:00:00 +08:00", None),
    ("", None),
]


def parse(texts: list[str]) -> list[datetime | None]:
    t = ingest.parse_times(ingest.clean(pa.array(texts, pa.string())), TZ)
    return [
        datetime(1970, 1, 1) + timedelta(microseconds=int(m)) if ok else None
        for m, ok in zip(t.micros, t.ok, strict=True)
    ]


@pytest.mark.parametrize(("text", "expected"), TIMES, ids=[t or "(empty)" for t, _ in TIMES])
def test_iso_8601(text: str, expected: datetime | None) -> None:
    assert parse([text]) == [expected]


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 31)),
    st.sampled_from(["date", "minutes", "seconds", "micros"]),
    st.sampled_from(["T", " "]),
    st.one_of(st.none(), st.integers(-12 * 60, 14 * 60).map(lambda m: m - m % 15)),
)
def test_iso_8601_agrees_with_python(when: datetime, shape: str, sep: str, offset: int | None) -> None:
    if shape == "date":
        text, offset = when.date().isoformat(), None
    else:
        spec = {"minutes": "minutes", "seconds": "seconds", "micros": "microseconds"}[shape]
        text = when.isoformat(sep=sep, timespec=spec)
    if offset is not None:
        text += (
            "Z"
            if offset == 0
            else datetime(2000, 1, 1, tzinfo=timezone(timedelta(minutes=offset))).strftime("%z")
        )
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(ZoneInfo(TZ)).replace(tzinfo=None)
    assert parse([text]) == [value]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab1é\u3000", min_size=0, max_size=5), max_size=40))
def test_repeated_finds_exactly_the_repeated_values(values: list[str]) -> None:
    counts = Counter(values)
    found = ingest.repeated(pa.array(values, pa.string()), __import__("numpy").ones(len(values), bool))
    assert list(found) == [counts[v] > 1 for v in values]


def test_csv_lines_are_physical_lines(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(
        b"record_id,type,subject,occurred_at,resolves,attributes\r\n\r\n"
        b'a,t,s,d,,"{""x"":\r\n1}"\r\n'  # lines 3-4
        b"b,t,s,d\r\n"  # line 5, short
        b"\r\n"
        b"c,t,s,d,,"
    )  # line 7, no final newline
    feed = feeds.read(path, feeds.RECORD_COLUMNS)
    assert feed.table.column("_line").to_pylist() == [3, 7]
    assert [(b.line, b.field) for b in feed.broken] == [(5, "(row)")]
    assert feed.rows == 3


def test_jsonl_lines_and_types(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(
        '\n{"record_id": 7, "subject": 13900000000, "attributes": {"a": [1, 2.5]}}\n'
        '{"record_id": "x", "occurred_at": 1.0, "resolves": true}\n',
        encoding="utf-8",
    )
    feed = feeds.read(path, feeds.RECORD_COLUMNS)
    assert feed.table.column("_line").to_pylist() == [2, 3]
    rows = feed.table.to_pylist()
    assert (rows[0]["record_id"], rows[0]["subject"], rows[0]["attributes"]) == (
        "7",
        "13900000000",
        '{"a":[1,2.5]}',
    )
    assert (rows[1]["occurred_at"], rows[1]["resolves"]) == ("1", "true")


def test_progress_reports_every_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.ingest_city import LI, NOW, RECORD_HEADER, city, write_csv

    monkeypatch.setenv("CREDO_NOW", NOW)
    credo = city(tmp_path)
    seen: list[tuple[str, int, int]] = []
    rows = [RECORD_HEADER, *[(f"r{i}", "tax.arrears", LI, "2024-08-01", "", "") for i in range(5)]]
    credo.ingest_files("tax", [write_csv(tmp_path / "a.csv", rows)], progress=lambda *a: seen.append(a))
    assert [p for p, _, _ in seen if p != "read"][-1] == "score"
    assert {p for p, _, _ in seen} == {"read", "check", "store", "score"}
    assert seen[-1][1:] == (5, 5)


@pytest.mark.parametrize(("given", "expected"), [
    (["a", " a", "a\t", "\u3000a\u00a0", "\ufeffa", "a b"], ["a", "a", "a", "a", "a", "a b"]),
    (["x", "", "  ", None, "\n"], ["x", None, None, None, None]),
    (["no", "edges", "here"], ["no", "edges", "here"]),
])
def test_clean_trims_and_blanks_are_missing(given: list[str | None], expected: list[str | None]) -> None:
    assert ingest.clean(pa.array(given, pa.string())).to_pylist() == expected
    assert ingest.clean(pa.chunked_array([given[:1], given[1:]], pa.string())).to_pylist() == expected
