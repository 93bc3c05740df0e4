"""The vectorised text kernels of ingest: trimming, fixed-width byte matrices, ISO 8601 parsing with
its calendar checks, hashing, the finder of possibly repeated values, and the check of identifiers that
people read (record IDs, names) for control and bidirectional-formatting characters, which would make a
listing show something other than what is stored.

They import nothing of Credo (numpy and pyarrow only), so any room may use them without pulling in the
store or the policy. The resident ID's check character lives in ``credo.ids``, which imports nothing of
Credo either: ids, ingest and synth all take it from there.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

_I64 = npt.NDArray[np.int64]
_Bools = npt.NDArray[np.bool_]
_WS = " \t\n\r\x0b\x0c\u00a0\u3000\ufeff"  # the same set credo.ids trims


_EDGE_FIRST = np.zeros(256, np.bool_)
_EDGE_FIRST[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xC2, 0xE3, 0xEF]] = True  # first bytes of _WS characters
_EDGE_LAST = np.zeros(256, np.bool_)
_EDGE_LAST[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x80, 0xBF]] = True  # last bytes of the _WS characters


def clean(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Trimmed text, with empty values as null: a blank cell and a missing one mean the same.

    Most feeds have nothing to trim: when no value starts or ends with a byte of a whitespace
    character, the text is kept as it is; nulls are set through the validity bitmap either way."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    trimmed = pc.utf8_trim(arr, characters=_WS) if _may_need_trim(arr) else arr
    present = pc.fill_null(pc.greater(pc.binary_length(trimmed), 0), False)
    if trimmed.offset or present.offset:
        return pc.if_else(present, trimmed, pa.scalar(None, pa.string()))
    _, offsets, data = trimmed.buffers()
    return pa.Array.from_buffers(pa.string(), len(trimmed), [present.buffers()[1], offsets, data])


def _may_need_trim(arr: pa.Array) -> bool:
    _, off_buf, data_buf = arr.buffers()
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    if len(data) == 0 or len(arr) == 0:
        return False
    offsets = np.frombuffer(off_buf, np.int32)[arr.offset: arr.offset + len(arr) + 1]
    # An empty value reads its neighbour's byte here: at worst a needless trim, never a missed one.
    first = data[np.minimum(offsets[:-1], len(data) - 1)]
    last = data[np.maximum(offsets[1:] - 1, 0)]
    return bool(_EDGE_FIRST[first].any() or _EDGE_LAST[last].any())


def _np(mask: pa.Array | pa.ChunkedArray) -> _Bools:
    """An Arrow boolean as numpy, null counted as False."""
    out: _Bools = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return out


@dataclass
class Times:
    """Parsed ISO 8601 values as naive city wall time."""

    micros: _I64  # microseconds since 1970-01-01 city wall time; 0 where not ok
    ok: _Bools
    bare: _Bools  # a date without a time (midnight at the start of that day)
    year: _I64

    def array(self) -> pa.Array:
        return pa.array(self.micros, pa.timestamp("us"), mask=~self.ok)


_MAX_TIME = len("2024-01-01T10:00:00.123456789+08:00")


def parse_times(values: pa.Array, tz: str) -> Times:
    """ISO 8601 extended format, vectorised: ``YYYY-MM-DD``, then optionally ``T`` (or a space) and
    ``HH:MM``, ``:SS``, ``.fraction`` (up to 9 digits, kept to the microsecond), and ``Z`` or an offset
    ``+HH:MM``/``+HHMM``/``+HH``. A value without an offset is city wall time; one with an offset is
    that instant, converted to city time. Anything else is not ok (a calendar check included).

    Rows are grouped by length, so each group is a fixed-width byte matrix read column by column.

    Not DuckDB's ``TRY_CAST(... AS TIMESTAMP)``: it accepts forms that are not ISO 8601 (``2024-1-1``,
    a single-digit hour), which the spec rejects."""
    n = len(values)
    out = Times(np.zeros(n, np.int64), np.zeros(n, np.bool_), np.zeros(n, np.bool_), np.zeros(n, np.int64))
    utc = np.zeros(n, np.bool_)
    if n == 0:
        return out
    lengths = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    for width in np.flatnonzero(np.bincount(lengths)):
        if width < 10 or width > _MAX_TIME:
            continue
        rows = np.flatnonzero(lengths == width)
        micros, ok, bare, year, shifted = _parse_fixed(_fixed(values, rows, int(width)))
        out.micros[rows], out.ok[rows], out.bare[rows], out.year[rows] = micros, ok, bare, year
        utc[rows] = shifted
    if (utc & out.ok).any():
        at = np.flatnonzero(utc & out.ok)
        local = pc.local_timestamp(pa.array(out.micros[at], pa.timestamp("us", tz=tz)))
        out.micros[at] = local.cast(pa.int64()).to_numpy()
    out.micros[~out.ok] = 0
    return out


def _parse_fixed(cols: npt.NDArray[np.uint8]) -> tuple[_I64, _Bools, _Bools, _I64, _Bools]:
    """One length group, as a (width, rows) byte matrix: (micros, ok, bare date, year, given with an
    offset or Z (micros are then UTC))."""
    width, k = cols.shape
    d = cols - np.uint8(48)  # non-digits wrap above 9
    isdig = d <= 9
    rows = np.arange(k)

    def num(a: int, b: int) -> npt.NDArray[np.int32]:
        v = np.zeros(k, np.int32)
        for j in range(a, b):
            v *= 10
            v += d[j]
        return v

    def at(pos: _I64) -> npt.NDArray[np.uint8]:
        out: npt.NDArray[np.uint8] = cols[np.clip(pos, 0, width - 1), rows]
        return out

    def digits_at(pos: _I64) -> _Bools:
        inside = (pos >= 0) & (pos < width)
        ok: _Bools = inside & isdig[np.clip(pos, 0, width - 1), rows]
        return ok

    def value_at(pos: _I64) -> _I64:
        out: _I64 = d[np.clip(pos, 0, width - 1), rows].astype(np.int64)
        return out

    def all_digits(*positions: int) -> _Bools:
        ok: _Bools = np.ones(k, np.bool_)
        for j in positions:
            ok &= isdig[j]
        return ok

    ok = all_digits(0, 1, 2, 3, 5, 6, 8, 9) & (cols[4] == 45) & (cols[7] == 45)
    year, month, day = num(0, 4), num(5, 7), num(8, 10)
    tz_len = np.zeros(k, np.int32)
    if width > 10:
        tz_len[cols[-1] == ord("Z")] = 1
        sign_at = {6: width - 6, 5: width - 5, 3: width - 3}
        for size, pos in sign_at.items():
            if pos >= 16:
                sign = (cols[pos] == 43) | (cols[pos] == 45)
                shape = (cols[width - 3] == 58) if size == 6 else (
                    isdig[width - 3] if size == 5 else np.ones(k, np.bool_))
                tz_len[(tz_len == 0) & sign & shape] = size
    core = width - tz_len
    bare = core == 10
    ok &= (core == 10) | (core == 16) | (core == 19) | ((core >= 21) & (core <= 29))
    timed = core >= 16
    if width >= 16:
        sep_ok = (cols[10] == ord("T")) | (cols[10] == ord(" "))
        ok &= ~timed | (sep_ok & all_digits(11, 12, 14, 15) & (cols[13] == 58))
    hour = np.where(timed, num(11, 13), 0) if width >= 16 else np.zeros(k, np.int32)
    minute = np.where(timed, num(14, 16), 0) if width >= 16 else np.zeros(k, np.int32)
    secs = core >= 19
    second = np.zeros(k, np.int32)
    if width >= 19:
        ok &= ~secs | ((cols[16] == 58) & isdig[17] & isdig[18])
        second = np.where(secs, num(17, 19), 0)
    frac = np.zeros(k, np.int64)
    if width >= 21:
        fractional = core >= 21
        ok &= ~fractional | ((cols[19] == ord(".")) | (cols[19] == ord(",")))
        for j in range(9):  # up to nine digits, kept to the microsecond (six), padded with zeros
            pos = 20 + j
            used = fractional & (pos < core) if pos < width else np.zeros(k, np.bool_)
            if pos < width:
                ok &= ~used | isdig[pos]
            if j < 6:
                frac = frac * 10 + (np.where(used, d[pos], 0).astype(np.int64) if pos < width else 0)
    # calendar and clock ranges
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)]
    month_days = month_days + (leap & (month == 2))
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days) & (year >= 1)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    # offsets
    shifted = tz_len > 1
    offset = np.zeros(k, np.int64)
    if shifted.any():
        sign = np.where(at(core) == 45, -1, 1)
        oh_ok = digits_at(core + 1) & digits_at(core + 2)
        oh = value_at(core + 1) * 10 + value_at(core + 2)
        mins_at = np.where(tz_len == 6, core + 4, core + 3)
        om_ok = (tz_len == 3) | (digits_at(mins_at) & digits_at(mins_at + 1))
        om = np.where(tz_len == 3, 0, value_at(mins_at) * 10 + value_at(mins_at + 1))
        ok &= ~shifted | (oh_ok & om_ok & (oh <= 23) & (om <= 59))
        offset = np.where(shifted, sign * (oh * 60 + om), 0)
    zulu = tz_len == 1
    # days since 1970-01-01 (proleptic Gregorian), Howard Hinnant's days_from_civil
    y = year.astype(np.int64) - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    micros = seconds * 1_000_000 + frac - offset * 60_000_000
    return micros, ok, bare & ok, year.astype(np.int64), shifted | zulu


def _hash_strings(values: pa.Array) -> npt.NDArray[np.uint64]:
    """A 64-bit hash per string, vectorised: strings of one byte length form a fixed-width byte matrix,
    folded column by column (ids of one agency are nearly always of one or a few lengths).

    Kept rather than DuckDB's ``hash()``: on 2 M ids of one width this fold took 0.070 s and DuckDB's
    0.062 s, and on the real ingest path (bench.ingest, 200,000 records) the check phase was no faster
    with DuckDB's (0.25 s against 0.20 s from Parquet), so the hand-written fold stays."""
    n = len(values)
    out = np.zeros(n, np.uint64)
    lengths = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    mult = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for width in np.flatnonzero(np.bincount(lengths)):
            rows = np.flatnonzero(lengths == width)
            cols = _fixed(values, rows, int(width))
            h = np.full(len(rows), np.uint64(0xCBF29CE484222325) ^ np.uint64(width))
            for j in range(int(width)):
                h ^= cols[j]
                h *= mult
            h ^= h >> np.uint64(29)
            out[rows] = h
    return out


def _fixed(values: pa.Array, rows: _I64, width: int) -> npt.NDArray[np.uint8]:
    """The strings at ``rows`` (all ``width`` bytes long) as a (width, rows) byte matrix: column-major,
    so that each per-position operation runs over contiguous memory."""
    k = len(rows)
    if width == 0 or k == 0:
        return np.zeros((width, k), np.uint8)
    _, off_buf, data_buf = values.buffers()
    offsets = np.frombuffer(off_buf, np.int32)[values.offset: values.offset + len(values) + 1]
    data = np.frombuffer(data_buf, np.uint8)
    if k == len(values):  # every value this wide: the data buffer is the matrix, row-major
        return np.ascontiguousarray(data[offsets[0]: offsets[0] + k * width].reshape(k, width).T)
    starts = offsets[rows]
    cols = np.empty((width, k), np.uint8)
    for j in range(width):
        cols[j] = data[starts + j]
    return cols


def distinct(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Sorted distinct values (a sort and a compare: faster here than numpy's hashing unique)."""
    s = np.sort(values)
    return s[np.concatenate([[True], s[1:] != s[:-1]])] if len(s) else s


def repeated(values: pa.Array, among: _Bools) -> _Bools:
    """Rows (of ``among``) whose value may occur more than once among them: equal hashes. Collisions
    only add candidates; the exact comparison is done in SQL on this (usually tiny) subset."""
    rows = np.flatnonzero(among)
    out = np.zeros(len(values), np.bool_)
    if len(rows) < 2:
        return out
    h = _hash_strings(values if len(rows) == len(values) else values.take(pa.array(rows)))
    order = np.argsort(h)
    same = h[order][1:] == h[order][:-1]
    hit = np.zeros(len(rows), np.bool_)
    hit[1:] |= same
    hit[:-1] |= same
    out[rows[order[hit]]] = True
    return out


UNSAFE_TEXT = "unsafe_characters"
_UNSAFE_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0x061C, 0x061C), (0x200E, 0x200F), (0x2028, 0x202E),
                  (0x2066, 0x2069))
"""Control characters (C0, DEL, C1), the line and paragraph separators and the bidirectional-formatting
characters (marks, embeddings, overrides, isolates): never part of an identifier or a name, and able to
make a listing read differently from what is stored."""
_UNSAFE_RE2 = "[" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in _UNSAFE_RANGES) + "]"
_UNSAFE_PY = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _UNSAFE_RANGES) + "]")
_UNSAFE_LEAD = np.zeros(256, np.bool_)
_UNSAFE_LEAD[[*range(0x20), 0x7F, 0xC2, 0xD8, 0xE2]] = True
"""Every UTF-8 encoding of an unsafe character starts with one of these bytes (none is a continuation
byte), so a column without them needs no regular expression."""


def unsafe_text(values: pa.Array) -> _Bools:
    """Per value, whether it holds an unsafe character (null: no); a byte scan first, as most
    columns hold none of the lead bytes at all."""
    data_buf = values.buffers()[2] if len(values) else None
    if data_buf is None or not _UNSAFE_LEAD[np.frombuffer(data_buf, np.uint8)].any():
        return np.zeros(len(values), np.bool_)
    found: _Bools = pc.fill_null(pc.match_substring_regex(values, _UNSAFE_RE2), False).to_numpy(
        zero_copy_only=False)
    return found


def unsafe_detail(value: str) -> str:
    """What is wrong with a value ``unsafe_text`` flags, quoting it with the unsafe characters escaped."""
    found = _UNSAFE_PY.search(value)
    if found is None:
        return "holds no unsafe character"
    c = found.group()
    category = unicodedata.category(c)
    kind = ("a control character" if category == "Cc" else
            f"{unicodedata.name(c)}, a {'separator' if category in ('Zl', 'Zp') else 'bidirectional-formatting'}"
            " character")
    shown = _UNSAFE_PY.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    return f"holds U+{ord(c):04X} ({kind}) at character {found.start() + 1} (value '{shown}')"
