"""Reading feed files (CSV, JSON Lines, Parquet) into Arrow tables of text.

Every column is read as text so that validation, not the reader, decides what
is wrong with a value, and says so with the line and field. A row the reader
cannot split is kept as a reject rather than failing the file; a file that
cannot be read at all (missing, not UTF-8, truncated Parquet, wrong header)
raises ``UnreadableFeed`` naming the file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from credo.errors import UnreadableFeed

RECORD_COLUMNS = ("record_id", "type", "subject", "occurred_at", "resolves", "attributes")
COLUMNS: dict[str, tuple[str, ...]] = {
    "population": ("resident_id", "name", "district", "status", "status_date"),
    "telecom": ("phone", "resident_id", "valid_from", "valid_to"),
}
OPTIONAL = frozenset({"resolves", "attributes", "status", "status_date", "valid_to"})
"""Columns that may be left out of a JSON Lines or Parquet feed (CSV headers are exact)."""


def columns_for(agency: str) -> tuple[str, ...]:
    return COLUMNS.get(agency, RECORD_COLUMNS)


@dataclass
class Feed:
    """A feed read into text columns, with each row's line number and the rows that failed to split."""

    source: str
    table: pa.Table
    broken: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, message)


def read(path: Path, columns: tuple[str, ...]) -> Feed:
    if not path.is_file():
        raise UnreadableFeed(f"{path}: no such file")
    suffix = path.suffix.lower()
    readers = {".csv": _read_csv, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".parquet": _read_parquet}
    if suffix not in readers:
        raise UnreadableFeed(f"{path}: unknown feed format {suffix!r} (use .csv, .jsonl or .parquet)")
    try:
        return readers[suffix](path, columns)
    except UnreadableFeed:
        raise
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, ValueError) as exc:
        raise UnreadableFeed(f"{path}: cannot be read: {exc}") from exc


def _check_header(path: Path, found: list[str], columns: tuple[str, ...], *, exact: bool) -> None:
    unknown = [c for c in found if c not in columns]
    missing = [c for c in columns if c not in found and (exact or c not in OPTIONAL)]
    dupes = sorted({c for c in found if found.count(c) > 1})
    problems = [f"unknown column {c!r}" for c in unknown] + [f"missing column {c!r}" for c in missing]
    problems += [f"column {c!r} appears twice" for c in dupes]
    if problems:
        raise UnreadableFeed(f"{path}: line 1: " + "; ".join(problems) + f" (expected: {', '.join(columns)})")


def _text_table(columns: tuple[str, ...], data: dict[str, pa.Array], lines: np.ndarray) -> pa.Table:
    n = len(lines)
    arrays = [data[c] if c in data else pa.nulls(n, pa.string()) for c in columns]
    return pa.table([*arrays, pa.array(lines, pa.int64())], names=[*columns, "_line"])


def _read_csv(path: Path, columns: tuple[str, ...]) -> Feed:
    with path.open("rb") as f:
        head = f.readline().decode("utf-8-sig")
    if not head.strip():
        raise UnreadableFeed(f"{path}: line 1: empty file, expected a header row")
    header = next(csv.reader(io.StringIO(head)))
    _check_header(path, [h.strip() for h in header], columns, exact=True)
    broken: list[tuple[int, str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        broken.append((row.number or 0, row.text,
                       f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    table = table.rename_columns([h.strip() for h in table.column_names])
    # Line of each good row: its index + 2 (header, 1-based), shifted past broken rows before it.
    lines = np.arange(table.num_rows, dtype=np.int64) + 2
    for bad in sorted(b[0] for b in broken if b[0]):
        lines[lines >= bad] += 1
    data = {c: table.column(c).combine_chunks() for c in columns if c in table.column_names}
    return Feed(str(path), _text_table(columns, data, lines), broken)


def _read_jsonl(path: Path, columns: tuple[str, ...]) -> Feed:
    values: dict[str, list[str | None]] = {c: [] for c in columns}
    lines: list[int] = []
    broken: list[tuple[int, str, str]] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                broken.append((number, raw.decode("utf-8", "replace")[:4096], f"not valid JSON: {exc}"))
                continue
            if not isinstance(obj, dict):
                broken.append((number, raw.decode("utf-8", "replace")[:4096], "a line must be a JSON object"))
                continue
            extra = [k for k in obj if k not in columns]
            if extra:
                broken.append((number, raw.decode("utf-8", "replace")[:4096], f"unknown field(s) {extra}"))
                continue
            lines.append(number)
            for c in columns:
                values[c].append(_as_text(obj.get(c)))
    if not lines and not broken:
        raise UnreadableFeed(f"{path}: empty file")
    data = {c: pa.array(v, pa.string()) for c, v in values.items()}
    return Feed(str(path), _text_table(columns, data, np.array(lines, np.int64)), broken)


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode() if not isinstance(value, bool) else str(value).lower()
    return orjson.dumps(value).decode()


def _read_parquet(path: Path, columns: tuple[str, ...]) -> Feed:
    table = pq.read_table(path)
    _check_header(path, table.column_names, columns, exact=False)
    data = {c: pc.cast(table.column(c), pa.string()).combine_chunks() for c in table.column_names}
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return Feed(str(path), _text_table(columns, data, lines))


def from_rows(rows: list[dict[str, object]], columns: tuple[str, ...], source: str) -> Feed:
    """A batch sent over the API as JSON objects: one 'line' per array element."""
    broken: list[tuple[int, str, str]] = []
    values: dict[str, list[str | None]] = {c: [] for c in columns}
    lines: list[int] = []
    for i, row in enumerate(rows, start=1):
        extra = [k for k in row if k not in columns] if isinstance(row, dict) else ["(not an object)"]
        if extra:
            broken.append((i, orjson.dumps(row).decode()[:4096], f"unknown field(s) {extra}"))
            continue
        lines.append(i)
        for c in columns:
            values[c].append(_as_text(row.get(c)))
    data = {c: pa.array(v, pa.string()) for c, v in values.items()}
    return Feed(source, _text_table(columns, data, np.array(lines, np.int64)), broken)
