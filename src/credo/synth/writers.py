"""Writing the feeds: CSV, JSON Lines and Parquet, chunk by chunk, with the dirty rows interleaved
at seeded positions; the population and telecom files."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from credo.synth.city import _City
from credo.synth.dirty import _bad_subjects, _empty, _ids_with_check
from credo.synth.draw import I64, Progress, _dates, _join, _phone_number, _repeat, _text
from credo.synth.rates import (
    _UNKNOWN_REGION,
    CHUNK,
    DISTRICTS,
    FORMATS,
    GIVEN,
    POPULATION_COLUMNS,
    POPULATION_DIRTY,
    SURNAMES,
    TELECOM_COLUMNS,
    TELECOM_DIRTY,
)


class _Writer:
    """One feed file, written in chunks: CSV with a header, JSON Lines, or Parquet."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        self.kind = path.suffix[1:]
        self.schema = pa.schema([(name, pa.string()) for name in columns])
        self.rows = 0
        self._csv: Any = None
        self._pq: Any = None
        self._fh: Any = None
        if self.kind == "csv":
            self._csv = pacsv.CSVWriter(str(path), self.schema)
        elif self.kind == "parquet":
            self._pq = pq.ParquetWriter(str(path), self.schema, compression="zstd")
        else:
            self._fh = path.open("wb")

    def write(self, table: pa.Table) -> None:
        table = table.select(list(self.schema.names)).cast(self.schema)
        self.rows += table.num_rows
        if not table.num_rows:
            return
        if self._csv is not None:
            self._csv.write_table(table)
        elif self._pq is not None:
            self._pq.write_table(table, row_group_size=CHUNK)
        else:
            self._fh.write(_jsonl(table))

    def close(self) -> None:
        for handle in (self._csv, self._pq, self._fh):
            if handle is not None:
                handle.close()


def _jsonl(table: pa.Table) -> bytes:
    """JSON Lines built with array operations: one object of strings (or null) per row."""
    parts: list[Any] = []
    for i, name in enumerate(table.column_names):
        col = table.column(name).combine_chunks()
        escaped = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')
        value = pc.fill_null(_join('"', escaped, '"'), "null")
        parts += [("{" if i == 0 else ",") + f'"{name}":', value]
    lines = _join(*parts, "}\n")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset: lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    return bytes(memoryview(data)[int(offsets[0]): int(offsets[-1])])


def _interleave(clean: pa.Table, dirty: pa.Table, clean_pos: I64, dirty_before: I64) -> pa.Table:
    """Clean rows (at ascending positions) with dirty rows placed before the given positions."""
    if not dirty.num_rows:
        return clean
    keys = np.concatenate([2 * clean_pos + 1, 2 * dirty_before])
    order = np.argsort(keys, kind="stable")
    return pa.concat_tables([clean, dirty]).take(pa.array(order))


def _write_chunks(path: Path, columns: tuple[str, ...], n: int, rows: Callable[[I64], pa.Table],
                  dirty: pa.Table, dirty_before: I64, name: str, progress: Progress | None) -> int:
    writer = _Writer(path, columns)
    try:
        order = np.argsort(dirty_before, kind="stable")
        dirty, dirty_before = dirty.take(pa.array(order)), dirty_before[order]
        for c0 in range(0, max(n, 1), CHUNK):
            c1 = min(c0 + CHUNK, n)
            lo = np.searchsorted(dirty_before, c0, side="left")
            hi = len(dirty_before) if c1 >= n else np.searchsorted(dirty_before, c1, side="left")
            pos = np.arange(c0, c1, dtype=np.int64)
            writer.write(_interleave(rows(pos), dirty.slice(lo, hi - lo), pos, dirty_before[lo:hi]))
            if progress is not None:
                progress(name, writer.rows)
    finally:
        writer.close()
    return writer.rows


def _file(out: Path, agency: str) -> Path:
    return out / f"{agency}.{FORMATS.get(agency, 'csv')}"


def _names(c: _City, rng: np.random.Generator) -> pa.Array:
    """Each resident's name, "Surname Given" (surnames Zipf-weighted, as they are), from ``rng`` as the
    population feed draws it first: the identity feed (``synth.identity``) draws the same names."""
    surname_w = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8
    surname = rng.choice(len(SURNAMES), size=c.n, p=surname_w / surname_w.sum())
    given = rng.integers(0, len(GIVEN), c.n)
    return _join(pc.take(pa.array(SURNAMES), pa.array(surname)), " ", pc.take(pa.array(GIVEN), pa.array(given)))


def population_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 4])


def _population(c: _City, out: Path, share: float, seed: int, progress: Progress | None) -> dict[str, Any]:
    rng = population_rng(seed)
    names = _names(c, rng)
    codes = pa.array([d[0] for d in DISTRICTS], pa.string())
    statuses = pa.array([None, "deceased", "moved_out"], pa.string())
    status_dates = pc.if_else(pa.array(c.status > 0), _dates(np.maximum(c.status_day, 0)),
                              pa.scalar(None, pa.string()))

    def rows(pos: I64) -> pa.Table:
        idx = pa.array(pos)
        return pa.table({
            "resident_id": c.ids.take(idx).cast(pa.string()),
            "name": names.take(idx),
            "district": codes.take(pa.array(c.district[pos])),
            "status": statuses.take(pa.array(c.status[pos].astype(np.int64))),
            "status_date": status_dates.take(idx),
        })

    m = math.ceil(share * c.n) if share > 0 else 0
    kinds = np.arange(m) % len(POPULATION_DIRTY)
    parts: list[pa.Table] = []
    for k, kind in enumerate(POPULATION_DIRTY):
        mk = int((kinds == k).sum())
        if not mk:
            continue
        t = rows(rng.integers(0, c.n, mk))
        cols = {name: t.column(name).combine_chunks() for name in POPULATION_COLUMNS}
        if kind == "impossible_date":
            cols["status"] = _repeat("deceased", mk)
            cols["status_date"] = _repeat("2023-02-30", mk)
            keys = _UNKNOWN_REGION * 10**11 + c.keys[rng.integers(0, c.n, mk)] % 10**11
            cols["resident_id"] = _ids_with_check(keys, False, rng)  # a new resident, but a bad date
        else:
            cols["resident_id"] = _bad_subjects(c, kind, rng, mk, np.zeros(mk, np.int64))
        parts.append(pa.table(cols))
    dirty = pa.concat_tables(parts) if parts else _empty(POPULATION_COLUMNS)
    before = rng.integers(0, c.n + 1, dirty.num_rows)
    path = _file(out, "population")
    total = _write_chunks(path, POPULATION_COLUMNS, c.n, rows, dirty, before, "population", progress)
    return {"file": path.name, "rows": total, "dirty": dirty.num_rows}


def _telecom(c: _City, out: Path, share: float, seed: int, progress: Progress | None) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 5])
    n = len(c.phone)

    def rows(pos: I64) -> pa.Table:
        to = c.valid_to[pos]
        return pa.table({
            "phone": _text(c.phone[pos]),
            "resident_id": c.ids.take(pa.array(c.holder[pos])).cast(pa.string()),
            "valid_from": _dates(c.valid_from[pos]),
            "valid_to": pc.if_else(pa.array(to >= 0), _dates(np.maximum(to, 0)),
                                   pa.scalar(None, pa.string())),
        })

    m = math.ceil(share * n) if share > 0 else 0
    kinds = np.arange(m) % len(TELECOM_DIRTY)
    parts: list[pa.Table] = []
    fresh_next = c.phones_used + 1_000_000
    for k, kind in enumerate(TELECOM_DIRTY):
        mk = int((kinds == k).sum())
        if not mk:
            continue
        t = rows(rng.integers(0, n, mk))
        cols = {name: t.column(name).combine_chunks() for name in TELECOM_COLUMNS}
        cols["phone"] = _text(_phone_number(fresh_next + np.arange(mk, dtype=np.int64)))
        fresh_next += mk
        if kind == "bad_phone":
            cols["phone"] = _bad_subjects(c, kind, rng, mk, np.zeros(mk, np.int64))
        elif kind == "impossible_date":
            cols["valid_from"] = _join(pc.utf8_slice_codeunits(cols["valid_from"], 0, 4), "-02-30")
        else:
            cols["resident_id"] = _bad_subjects(c, kind, rng, mk, np.zeros(mk, np.int64))
        parts.append(pa.table(cols))
    dirty = pa.concat_tables(parts) if parts else _empty(TELECOM_COLUMNS)
    before = rng.integers(0, n + 1, dirty.num_rows)
    path = _file(out, "telecom")
    total = _write_chunks(path, TELECOM_COLUMNS, n, rows, dirty, before, "telecom", progress)
    return {"file": path.name, "rows": total, "dirty": dirty.num_rows}


