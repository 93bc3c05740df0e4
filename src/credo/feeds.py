"""Reading feed files (CSV, JSON Lines, Parquet) into Arrow tables of text.

Every column is read as text so that validation, not the reader, decides what
is wrong with a value, and says so with the line and field. A row the reader
cannot split is kept as a broken row (a reject with its line and raw text)
rather than failing the file; a file that cannot be read at all (missing,
empty, not UTF-8, truncated Parquet, wrong header) raises ``UnreadableFeed``
naming the file and, where there is one, the line and column.

Line numbers are physical lines of the file (1 = the CSV header), so a person
can open the file at the line a reject names, even when quoted values span
lines or blank lines were skipped. For Parquet the "line" is the row number.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from credo import feedtext
from credo.errors import UnreadableFeed

RECORD_COLUMNS = ("record_id", "type", "subject", "occurred_at", "resolves", "attributes")
DESCRIBED_COLUMNS = ("subject_name", "subject_birth_date", "subject_district")
"""An agency feed's optional columns for a subject that has no ID (spec §10): left out of a file that
never uses them, CSV included."""
AGENCY_COLUMNS = RECORD_COLUMNS + DESCRIBED_COLUMNS
COLUMNS: dict[str, tuple[str, ...]] = {
    "population": ("resident_id", "name", "district", "status", "status_date"),
    "telecom": ("phone", "resident_id", "valid_from", "valid_to"),
}
OPTIONAL = frozenset({"resolves", "attributes", "status", "status_date", "valid_to", *DESCRIBED_COLUMNS})
"""Columns that may be left out of a JSON Lines or Parquet feed (CSV headers are exact, but for the
description columns)."""

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, rows_done, rows_total)``; phases are read, check, store, score."""

_CHUNK = 1 << 22  # CSV block size: ~4 MiB, so progress moves during a long read
_SHOWN = 4096  # most characters of a broken row kept as its text


def columns_for(agency: str) -> tuple[str, ...]:
    return COLUMNS.get(agency, AGENCY_COLUMNS)


@dataclass(frozen=True)
class Broken:
    """A row the reader could not turn into the feed's columns, kept with where and why."""

    line: int
    text: str
    field: str
    message: str


@dataclass
class Feed:
    """A feed read into text columns (plus ``_line``), and the rows that failed to split."""

    source: str
    table: pa.Table
    broken: list[Broken] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Every row the file holds: the ones read and the ones that could not be split."""
        return int(self.table.num_rows) + len(self.broken)


def read(path: Path, columns: tuple[str, ...], progress: Progress | None = None) -> Feed:
    """Read one feed file, by extension; UnreadableFeed (naming the file) when that is impossible."""
    if not path.is_file():
        raise UnreadableFeed(f"{path}: no such file")
    suffix = path.suffix.lower()
    readers = {".csv": _read_csv, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".parquet": _read_parquet}
    if suffix not in readers:
        raise UnreadableFeed(f"{path}: unknown feed format {suffix!r} (use .csv, .jsonl or .parquet)")
    tick: Progress = progress or (lambda phase, done, total: None)
    try:
        return readers[suffix](path, columns, tick)
    except UnreadableFeed:
        raise
    except (pa.ArrowException, UnicodeError, OSError, ValueError, csv.Error) as exc:
        raise UnreadableFeed(f"{path}: cannot be read: {exc}") from exc


def _check_header(path: Path, found: list[str], columns: tuple[str, ...], *, exact: bool,
                  where: str = "line 1") -> None:
    """Column names are fixed (spec §3): unknown, missing (CSV: any; else the required) or repeated
    names refuse the file, all listed at once."""
    expected = f"(expected: {', '.join(columns)})"
    if len(found) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            if sep in found[0]:
                raise UnreadableFeed(f"{path}: line 1: the header is separated by {name}; feeds are "
                                     f"comma-separated {expected}")
    unknown = [c for c in found if c not in columns]
    missing = [c for c in columns if c not in found and c not in DESCRIBED_COLUMNS and (exact or c not in OPTIONAL)]
    dupes = sorted({c for c in found if found.count(c) > 1})
    problems = [f"unknown column {c!r}" for c in unknown] + [f"missing column {c!r}" for c in missing]
    problems += [f"column {c!r} appears twice" for c in dupes]
    if problems:
        raise UnreadableFeed(f"{path}: {where}: " + "; ".join(problems) + f" {expected}")


def _text_table(columns: tuple[str, ...], data: dict[str, pa.ChunkedArray | pa.Array],
                lines: np.ndarray) -> pa.Table:
    """The feed's columns, each one contiguous array (validation works on whole buffers), plus _line."""
    n = len(lines)
    arrays = [_contiguous(data[c]) if c in data else pa.nulls(n, pa.string()) for c in columns]
    return pa.table([*arrays, pa.array(lines, pa.int64())], names=[*columns, "_line"])


def _contiguous(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
         (codecs.BOM_UTF16_BE, "UTF-16"))


def _require_utf8(path: Path, data: bytes, header: list[str] | None) -> None:
    """Name the first line (and column) that is not UTF-8: the usual cause is a Latin-1 or GBK export."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise UnreadableFeed(f"{path}: line 1: the file is {name}; feeds must be UTF-8")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        where = ""
        if header is not None:
            prefix = data[start:exc.start].decode("utf-8", "replace")
            fields = next(csv.reader(io.StringIO(prefix + "\x00")), [""])
            if len(fields) <= len(header):
                where = f", column {header[len(fields) - 1]!r}"
        raise UnreadableFeed(f"{path}: line {line}{where}: byte 0x{data[exc.start]:02X} is not UTF-8 "
                             "(the file looks like Latin-1 or GBK); feeds must be UTF-8") from None


def _read_csv(path: Path, columns: tuple[str, ...], tick: Progress) -> Feed:
    data = path.read_bytes()
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise UnreadableFeed(f"{path}: line 1: empty file, expected a header row")
    if data.startswith(b"PAR1"):
        raise UnreadableFeed(f"{path}: line 1: this is a Parquet file; name it .parquet")
    if not data.endswith((b"\n", b"\r")):
        data += b"\n"  # a last line without its newline is still a line
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    head_bytes = data[: min(ends)]
    _require_utf8(path, head_bytes, None)
    if b"\x00" in head_bytes:
        raise UnreadableFeed(f"{path}: line 1: the header holds NUL bytes (a UTF-16 or binary file?); "
                             "feeds must be UTF-8 text")
    raw_header = next(csv.reader(io.StringIO(head_bytes.decode("utf-8-sig"))), [])
    header = [h.strip() for h in raw_header]
    _check_header(path, header, columns, exact=True)
    total = max(data.count(b"\n"), 1)
    broken: list[tuple[int, str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        broken.append((row.number or 0, row.text,
                       f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    batches = []
    rows = 0
    try:
        reader = pacsv.open_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=_CHUNK),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in raw_header},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            tick("read", rows, max(total, rows))
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            _require_utf8(path, data, header)
        raise
    table = pa.Table.from_batches(batches, reader.schema).rename_columns(header)
    records = _record_lines(data, 1 + table.num_rows + len(broken))
    # pyarrow numbers records (header = 1, blank lines not counted); map them to physical lines.
    bad = np.array(sorted(b[0] for b in broken if b[0]), dtype=np.int64)
    numbers = np.arange(2, table.num_rows + len(broken) + 2, dtype=np.int64)
    good = numbers[~np.isin(numbers, bad)][: table.num_rows]
    lines = records[good - 1] if records is not None else good
    data_cols = {c: table.column(c) for c in columns if c in table.column_names}
    kept = [Broken(int(records[n - 1]) if records is not None and n else n, text[:_SHOWN], "(row)", why)
            for n, text, why in broken]
    return Feed(str(path), _text_table(columns, data_cols, lines), kept)


def _record_lines(data: bytes, records: int) -> npt.NDArray[np.int64] | None:
    """Physical line where each CSV record starts (index 0 = the header), or None when every record is
    one line. Records end at newlines outside quotes (an even number of quote characters before them);
    blank lines are not records, as pyarrow skips them."""
    newlines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if newlines == records:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    lf = np.flatnonzero(buf == 10)
    cr = np.flatnonzero(buf == 13)
    lone_cr = cr[(cr + 1 >= len(buf)) | (buf[np.minimum(cr + 1, len(buf) - 1)] != 10)]
    ends = np.union1d(lf, lone_cr)  # every physical line end
    quotes = np.flatnonzero(buf == 34)
    outside = np.searchsorted(quotes, ends) % 2 == 0
    sep = ends[outside]
    starts = np.concatenate([[0], sep + 1])
    stops = np.concatenate([sep, [len(buf)]])
    length = stops - starts
    at = np.minimum(starts, max(len(buf) - 1, 0))
    blank = (length == 0) | ((length == 1) & (buf[at] == 13))
    found = starts[~blank]
    if len(found) != records:
        return None  # quotes this scan cannot follow: fall back to record numbers
    lines: npt.NDArray[np.int64] = np.searchsorted(ends, found).astype(np.int64) + 1
    return lines


def _read_jsonl(path: Path, columns: tuple[str, ...], tick: Progress) -> Feed:
    """JSON Lines: the lines are parsed in blocks by one orjson call each, and a row gets the careful
    one-line-at-a-time treatment (with its message) only when something about it looks wrong."""
    data = path.read_bytes()
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise UnreadableFeed(f"{path}: line 1: empty file")
    _require_utf8(path, data, None)
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    raws = data.split(b"\n")
    numbered = [(number, raw) for number, raw in enumerate(raws, start=1) if raw.strip()]
    known = frozenset(columns)
    patterns = {c: b'"' + c.encode() + b'"' for c in columns}
    lines: list[int] = []
    objects: list[dict[str, Any]] = []
    broken: list[Broken] = []
    for lo in range(0, len(numbered), _JSON_BLOCK):
        block = numbered[lo: lo + _JSON_BLOCK]
        parsed = _parse_block([raw for _, raw in block])
        for (number, raw), obj in zip(block, parsed or [None] * len(block), strict=True):
            if not (type(obj) is dict and obj.keys() <= known and _no_repeated_key(raw, obj, patterns)):
                checked = _json_row(raw, columns)
                if isinstance(checked, Broken):
                    broken.append(Broken(number, checked.text, checked.field, checked.message))
                    continue
                obj = checked
            lines.append(number)
            objects.append(obj)
        tick("read", lo + len(block), len(numbered))
    data_cols = {c: feedtext.text_column([o.get(c) for o in objects]) for c in columns}
    return Feed(str(path), _text_table(columns, data_cols, np.array(lines, np.int64)), broken)


_JSON_BLOCK = 50_000


def _parse_block(raws: list[bytes]) -> list[Any] | None:
    """Many lines in one orjson call (as one JSON array), or None when some line is not one value."""
    try:
        values = orjson.loads(b"[" + b",".join(raws) + b"]")
    except orjson.JSONDecodeError:
        return None
    return values if isinstance(values, list) and len(values) == len(raws) else None


def _no_repeated_key(raw: bytes, obj: dict[str, Any], patterns: dict[str, bytes]) -> bool:
    """Cheap proof that no top-level key is given twice (orjson would silently keep the last): as many
    key-like tokens as keys, or no key's quoted name seen twice. Anything else gets the exact check."""
    if raw.count(b'":') + raw.count(b'" :') <= len(obj):
        return True
    return all(raw.count(patterns[k]) == 1 for k in obj)


def _json_row(raw: bytes, columns: tuple[str, ...]) -> dict[str, Any] | Broken:
    """One JSON Lines row as an object, or why it is broken (invalid JSON, not an object, unknown or
    repeated keys: a repeated key would let one value silently win over the other)."""
    text = raw.decode("utf-8", "replace")[:_SHOWN]
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        hint = " (NaN and Infinity are not JSON)" if any(w in text for w in ("NaN", "Infinity")) else ""
        return Broken(0, text, "(row)", f"not valid JSON at character {exc.pos + 1}: {exc.msg}{hint}")
    if not isinstance(obj, dict):
        return Broken(0, text, "(row)", f"a line must be a JSON object, got {type(obj).__name__}")
    extra = [k for k in obj if k not in columns]
    if extra:
        return Broken(0, text, extra[0], f"unknown field(s) {', '.join(map(repr, extra))} "
                                         f"(expected: {', '.join(columns)})")
    if any(raw.count(b'"%s"' % k.encode()) > 1 for k in obj):
        pairs = _top_level_keys(raw)
        dupes = sorted({k for k in pairs if pairs.count(k) > 1})
        if dupes:
            return Broken(0, text, dupes[0], f"field(s) {', '.join(map(repr, dupes))} given twice")
    return obj


def _top_level_keys(raw: bytes) -> list[str]:
    import json

    keys: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys.clear()
        keys.extend(k for k, _ in pairs)  # the outermost object is built last
        return dict(pairs)

    json.loads(raw, object_pairs_hook=hook)
    return keys


def _read_parquet(path: Path, columns: tuple[str, ...], tick: Progress) -> Feed:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFeed(f"{path}: not a readable Parquet file (truncated or corrupt?): {exc}") from exc
    names = pf.schema_arrow.names
    _check_header(path, names, columns, exact=False, where="schema")
    total = pf.metadata.num_rows
    parts: dict[str, list[pa.Array]] = {c: [] for c in names}
    rows = 0
    for group in range(pf.num_row_groups):
        try:
            table = pf.read_row_group(group)
        except (pa.ArrowException, OSError) as exc:
            raise UnreadableFeed(f"{path}: rows {rows + 1}..: row group {group} cannot be read "
                                 f"(truncated or corrupt?): {exc}") from exc
        for c in names:
            parts[c].append(feedtext.column_text(path, c, table.column(c), rows))
        rows += table.num_rows
        tick("read", rows, total)
    data = {c: pa.concat_arrays(parts.pop(c)) if parts[c] else pa.array([], pa.string()) for c in list(parts)}
    return Feed(str(path), _text_table(columns, data, np.arange(1, rows + 1, dtype=np.int64)))


def from_rows(rows: list[Any], columns: tuple[str, ...], source: str) -> Feed:
    """A batch sent over the API as JSON objects: one 'line' per array element."""
    broken: list[Broken] = []
    values: dict[str, list[str | None]] = {c: [] for c in columns}
    lines: list[int] = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            broken.append(Broken(i, orjson.dumps(row).decode()[:_SHOWN], "(row)",
                                 f"a row must be a JSON object, got {type(row).__name__}"))
            continue
        extra = [k for k in row if k not in columns]
        if extra:
            broken.append(Broken(i, orjson.dumps(row, default=str).decode()[:_SHOWN], str(extra[0]),
                                 f"unknown field(s) {', '.join(map(repr, extra))} "
                                 f"(expected: {', '.join(columns)})"))
            continue
        lines.append(i)
        for c in columns:
            values[c].append(feedtext.as_text(row.get(c)))
    data = {c: pa.array(v, pa.string()) for c, v in values.items()}
    return Feed(source, _text_table(columns, data, np.array(lines, np.int64)), broken)
