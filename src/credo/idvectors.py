"""The vectorised form of ``credo.ids``'s checks, for ingest of millions of rows: array operations
per character position, no Python work per row, the same rules in the same precedence as
``normalise_resident_id`` and ``normalise_phone`` (tests/test_ids.py holds the two paths to each other).
A row of 15 characters is a first-generation ID, widened in the byte matrix as the scalar path widens it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from credo.ids import (
    _CHECK_BYTES,
    _WEIGHTS,
    _WS,
    BAD_CHECK,
    BAD_DATE,
    BAD_FORMAT,
    BAD_LENGTH,
    BAD_PHONE,
    BAD_PROVINCE,
    FUTURE_DATE,
    MOBILE_SECOND,
    PROVINCES,
)

# Index = precedence code; 0 means valid.
_REASONS: tuple[str | None, ...] = (None, BAD_LENGTH, BAD_FORMAT, BAD_PROVINCE, BAD_DATE, FUTURE_DATE, BAD_CHECK)
_PROVINCE_OK = np.isin(np.arange(100), sorted(PROVINCES))
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_I64 = npt.NDArray[np.int64]
_Bools = npt.NDArray[np.bool_]
_Bytes = npt.NDArray[np.uint8]


def _fixed_width(values: pa.Array | pa.ChunkedArray, width: int) -> tuple[_Bools, _Bools, _Bytes]:
    """Trimmed strings as a (width, n) byte matrix: column-major so each per-position op runs on contiguous
    memory.  Rows that are not `width` ASCII characters hold junk; callers mask them by the two flags."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    large = pa.types.is_large_string(arr.type)
    if not (large or pa.types.is_string(arr.type)):
        arr = arr.cast(pa.string())
    trimmed = pc.utf8_trim(arr, characters=_WS)
    n = len(trimmed)
    chars = pc.fill_null(pc.utf8_length(trimmed), -1).to_numpy()
    length_ok: _Bools = chars == width
    cols = np.zeros((width, n), dtype=np.uint8)
    if not length_ok.any():
        return length_ok, length_ok.copy(), cols
    _, off_buf, data_buf = trimmed.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64 if large else np.int32)[trimmed.offset :][: n + 1]
    ascii_ok: _Bools = length_ok & (np.diff(offsets) == width)  # byte count == char count only for ASCII
    data = np.frombuffer(data_buf, dtype=np.uint8)  # holds >= width bytes: some row has width characters
    base = int(offsets[0])
    if ascii_ok.all():  # every row exactly `width` bytes, so the data buffer is already the matrix
        cols[:] = data[base : base + n * width].reshape(n, width).T
    else:
        starts = np.where(ascii_ok, offsets[:-1], base).astype(np.int64)
        for j in range(width):
            cols[j] = data[starts + j]
    return length_ok, ascii_ok, cols


def _number(d: _Bytes, start: int, stop: int) -> _I64:
    v = np.zeros(d.shape[1], dtype=np.int64)
    for j in range(start, stop):
        v *= 10
        v += d[j]
    return v


def _widen_legacy(values: pa.Array | pa.ChunkedArray, length_ok: _Bools, ascii_ok: _Bools, cols: _Bytes) -> None:
    """Rows of 15 characters written into the (18, n) matrix as the IDs they became (``19`` before
    ``YYMMDD``, the check character computed), in place: they then pass the 18-character checks, or
    fail them with the scalar path's reasons. One that is not 15 ASCII digits is left failing the format."""
    is15, ascii15, c15 = _fixed_width(values, 15)
    if not is15.any():
        return
    digits = ascii15 & ((c15 - np.uint8(48)) <= 9).all(axis=0)
    rows = np.flatnonzero(digits)
    wide = np.empty((18, len(rows)), dtype=np.uint8)
    wide[:6], wide[6], wide[7], wide[8:17] = c15[:6, rows], ord("1"), ord("9"), c15[6:, rows]
    weighted = np.zeros(len(rows), dtype=np.int32)
    for j, w in enumerate(_WEIGHTS):
        weighted += (wide[j] - np.uint8(48)) * np.int32(w)
    wide[17] = _CHECK_BYTES[weighted % 11]
    cols[:, rows] = wide
    length_ok |= is15
    ascii_ok &= ~is15
    ascii_ok |= digits


def check_resident_ids(values: pa.Array | pa.ChunkedArray, today: date) -> tuple[pa.Array, pa.Array]:
    """(int64 keys, null where invalid; reason codes, null where valid): the ingest form of
    normalise_resident_id, with array ops per character position and no Python work per row. Rows of
    15 characters are first-generation IDs, widened in the byte matrix (``_widen_legacy``)."""
    length_ok, ascii_ok, cols = _fixed_width(values, 18)
    if not length_ok.all():
        _widen_legacy(values, length_ok, ascii_ok, cols)
    d = cols - np.uint8(48)  # non-digit bytes wrap to > 9
    last_x = (cols[17] == ord("X")) | (cols[17] == ord("x"))
    format_ok = (d[:17] <= 9).all(axis=0) & ((d[17] <= 9) | last_x) & ascii_ok
    key = _number(d, 0, 17)
    year, month, day = _number(d, 6, 10), _number(d, 10, 12), _number(d, 12, 14)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    date_ok = (year >= 1900) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    future = (year * 100 + month) * 100 + day > today.year * 10000 + today.month * 100 + today.day
    weighted = np.zeros(d.shape[1], dtype=np.int32)
    for j, w in enumerate(_WEIGHTS):
        weighted += d[j] * np.int32(w)
    check_ok = _CHECK_BYTES[weighted % 11] == np.where(last_x, np.uint8(ord("X")), cols[17])
    codes = np.where(check_ok, 0, 6).astype(np.int8)
    codes[future] = 5
    codes[~date_ok] = 4
    codes[~_PROVINCE_OK[np.minimum(d[0] * 10 + d[1], 99)]] = 3
    codes[~format_ok] = 2
    codes[~length_ok] = 1
    keys = pa.array(key, type=pa.int64(), mask=codes != 0)
    return keys, pc.take(pa.array(_REASONS, type=pa.string()), pa.array(codes))


def check_phones(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(int64 phones, null where invalid; BAD_PHONE, null where valid): the ingest form of normalise_phone."""
    length_ok, ascii_ok, cols = _fixed_width(values, 11)
    d = cols - np.uint8(48)
    mobile = (cols[1] >= ord(MOBILE_SECOND[0])) & (cols[1] <= ord(MOBILE_SECOND[-1]))
    ok = length_ok & ascii_ok & (d <= 9).all(axis=0) & (cols[0] == ord("1")) & mobile
    phones = pa.array(_number(d, 0, 11), type=pa.int64(), mask=~ok)
    return phones, pc.if_else(pa.array(ok), pa.scalar(None, pa.string()), pa.scalar(BAD_PHONE))
