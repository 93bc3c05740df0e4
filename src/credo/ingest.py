"""Feeds into the store: agency records into the append-only ledger, population and telecom feeds
into residents and phone links.

Validation is vectorised. Every rule about a row alone (required fields, lengths, types of the
policy, resident IDs and phones, ISO 8601 dates, the size of ``attributes``) runs as Arrow and numpy
operations over whole columns, because DuckDB's per-value string functions cost several times more
than the whole ledger write. Only rules that need the store (phone holders, known residents, the
ledger's keys, ``resolves``) run in SQL (``sql/ingest.sql``), as joins of the batch's candidate rows
against the stored tables. Rejected rows are the one place with a Python loop, to phrase an identity
problem the way ``credo.ids`` does. Each row gets the first rule it fails, in the order the rules are
applied, so a row has exactly one reason and one field.

The caller holds the transaction, so a batch lands whole or not at all.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from credo import ids
from credo.feeds import RECORD_COLUMNS, Feed, Progress
from credo.policy import Policy
from credo.sql import q
from credo.store import next_id

REASONS: dict[str, tuple[str, str]] = {
    "malformed_row": ("(row)", "the row could not be split into the feed's columns"),
    "missing_record_id": ("record_id", "is required"),
    "record_id_too_long": ("record_id", "must be 1 to 64 characters"),
    ids.UNSAFE_TEXT: ("record_id", "holds a control or bidirectional-formatting character"),
    "missing_type": ("type", "is required"),
    "unknown_type": ("type", "is not a record type of the policy"),
    "type_not_allowed": ("type", "belongs to another agency under the policy"),
    "missing_subject": ("subject", "is required"),
    "missing_date": ("occurred_at", "is required"),
    "bad_date": ("occurred_at", "is not an ISO 8601 date or date-time, like 2024-08-01 or 2024-08-01T09:30"),
    "date_too_early": ("occurred_at", "is before 1900"),
    "future_date": ("occurred_at", "is more than one day in the future"),
    "bad_attributes": ("attributes", "must be a JSON object"),
    "attributes_too_large": ("attributes", "must be at most 4 KiB"),
    "unresolved_phone": ("subject", "no resident held this phone at occurred_at"),
    "unknown_resident": ("subject", "is not a registered resident"),
    "conflict": ("record_id", "already used by this agency for a record with different content"),
    "unknown_resolves": ("resolves", "names no record of this agency in the ledger or earlier in the batch"),
    "bad_resolves": ("resolves", "names a record this type may not resolve, or another resident's"),
    "missing_name": ("name", "is required"),
    "bad_district": ("district", "must be a 6-digit region code"),
    "bad_status": ("status", "must be active, deceased or moved_out"),
    "bad_period": ("valid_to", "is before valid_from"),
    "overlapping_holder": ("phone", "overlaps another holder's period for this number"),
}
"""Reason code -> (usual field, explanation). Identity reasons (``credo.ids``: id_length, id_format,
id_province, id_date, id_future, id_check, bad_phone) take their message from credo.ids, and so does
``unsafe_characters`` (naming the character; the value is quoted with it escaped); ``duplicate`` is
counted, not rejected."""

ID_REASONS = (ids.BAD_LENGTH, ids.BAD_FORMAT, ids.BAD_PROVINCE, ids.BAD_DATE, ids.FUTURE_DATE, ids.BAD_CHECK,
              ids.BAD_PHONE)
DUPLICATE = "duplicate"
STATUSES = ("active", "deceased", "moved_out")
_WS = " \t\n\r\x0b\x0c\u00a0\u3000\ufeff"  # the same set credo.ids trims
_SHOWN = 80  # characters of an offending value quoted in a message

_I64 = npt.NDArray[np.int64]
_Bools = npt.NDArray[np.bool_]


@dataclass
class BatchResult:
    """What became of one feed: counted, never silent."""

    source: str
    agency: str
    batch: int
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    residents: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "agency": self.agency, "batch": self.batch, "rows": self.rows,
                "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": sum(self.rejected.values()), "reasons": dict(sorted(self.rejected.items()))}


def ingest(con: duckdb.DuckDBPyConnection, policy: Policy, agency: str, feed: Feed, *,
           principal: str, now: datetime, progress: Progress | None = None) -> BatchResult:
    """Validate and store one feed. Returns counts and the residents whose standing may change."""
    tick: Progress = progress or (lambda phase, done, total: None)
    batch = next_id(con, "batches", "batch")
    result = BatchResult(feed.source, agency, batch, rows=feed.rows)
    for name, table in policy.tables().items():
        con.register(name, table)
    loader = {"population": _population, "telecom": _telecom}.get(agency, _records)
    params = {"agency": agency, "batch": batch, "now": now}
    try:
        verdicts, touched = loader(con, policy, feed, now, params,
                                   lambda share: tick("check", int(feed.rows * share), feed.rows))
        tick("store", 0, feed.rows)
        _keep_rejects(con, feed, verdicts, params, result)
    finally:  # a registered table keeps its Arrow data alive as long as the connection lives
        for name in _INPUTS:
            con.unregister(name)
    result.residents = touched
    con.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [batch, agency, feed.source, principal, now, result.accepted, result.duplicates,
                 sum(result.rejected.values())])
    tick("store", feed.rows, feed.rows)
    return result


_INPUTS = ("json_in", "residents_probe", "phone_in", "cand_in", "again_in", "asking_in", "targets_in",
           "accepted_in", "population_in", "population_ok", "links_in", "telecom_ok", "rejected_in",
           "reasons_in")
"""The Arrow tables a batch registers for its SQL (sql/ingest.sql names them)."""


# ---------------------------------------------------------------------------------------------
# verdicts: one reason per row, the first rule it fails


class Verdicts:
    """Per row, the first failed rule as a small int (0 = passes), with a detail for some rejects.

    Rules are applied in precedence order and a row keeps the first one it fails, so the order of
    ``fail`` calls is the order in which problems are reported.
    """

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, np.int16)
        self.rules: list[tuple[str, str]] = [("", "")]
        self.detail: dict[int, str] = {}

    @property
    def ok(self) -> _Bools:
        ok: _Bools = self.code == 0
        return ok

    def fail(self, mask: npt.ArrayLike, reason: str, field: str) -> None:
        mask = np.asarray(mask, dtype=np.bool_)
        if not mask.any():
            return
        rule = (reason, field)
        if rule not in self.rules:
            self.rules.append(rule)
        self.code[mask & (self.code == 0)] = self.rules.index(rule)

    def fail_at(self, positions: npt.ArrayLike, reason: str, field: str) -> None:
        mask = np.zeros(len(self.code), np.bool_)
        mask[np.asarray(positions, dtype=np.int64)] = True
        self.fail(mask, reason, field)

    def fail_codes(self, reasons: pa.Array, field: str) -> None:
        """Reasons computed elsewhere (credo.ids), null where the value is fine."""
        for reason in pc.unique(reasons.drop_null()).to_pylist():
            self.fail(_np(pc.equal(reasons, reason)), str(reason), field)

    def reasons(self) -> tuple[pa.Array, pa.Array]:
        """(reason, field) per row as Arrow strings, null where the row passes."""
        table = pa.array([r or None for r, _ in self.rules], pa.string())
        fields = pa.array([f or None for _, f in self.rules], pa.string())
        codes = pa.array(self.code.astype(np.int32))
        return pc.take(table, codes), pc.take(fields, codes)


# ---------------------------------------------------------------------------------------------
# vectorised value checks


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

    Rows are grouped by length, so each group is a fixed-width byte matrix read column by column."""
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
    folded column by column (ids of one agency are nearly always of one or a few lengths)."""
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


# ---------------------------------------------------------------------------------------------
# agency records -> ledger


Check = Callable[[float], None]
"""Reports how far the checks of a batch have got (0..1), for the progress bar."""


def _records(con: duckdb.DuckDBPyConnection, policy: Policy, feed: Feed, now: datetime,
             params: dict[str, Any], checked: Check) -> tuple[Verdicts, np.ndarray]:
    agency = params["agency"]
    t = feed.table
    n = t.num_rows
    v = Verdicts(n)
    record_id, type_, subject, occurred, resolves, attributes = (clean(t.column(c)) for c in RECORD_COLUMNS)
    v.fail(_np(pc.is_null(record_id)), "missing_record_id", "record_id")
    v.fail(_np(pc.greater(pc.utf8_length(record_id), 64)), "record_id_too_long", "record_id")
    v.fail(ids.unsafe_text(record_id), ids.UNSAFE_TEXT, "record_id")
    v.fail(_np(pc.is_null(type_)), "missing_type", "type")
    p_types = policy.tables()["p_types"]
    owner = pc.take(p_types.column("agency"), pc.index_in(type_, value_set=p_types.column("type")))
    v.fail(_np(pc.is_null(owner)), "unknown_type", "type")
    v.fail(_np(pc.not_equal(owner, agency)), "type_not_allowed", "type")
    v.fail(_np(pc.is_null(subject)), "missing_subject", "subject")
    v.fail(ids.unsafe_text(resolves), ids.UNSAFE_TEXT, "resolves")
    # An 11-character subject is a phone, anything else a resident ID; each is checked only where it applies.
    is_phone = _np(pc.equal(pc.utf8_length(subject), 11))
    by_phone = np.flatnonzero(is_phone)
    phone = np.zeros(n, np.int64)
    if len(by_phone):
        phones, phone_reasons = ids.check_phones(subject.take(pa.array(by_phone)))
        phone[by_phone] = pc.fill_null(phones, 0).to_numpy(zero_copy_only=False)
        v.fail_at(by_phone[_np(pc.is_valid(phone_reasons))], ids.BAD_PHONE, "subject")
    resident = np.zeros(n, np.int64)
    by_id = np.flatnonzero(~is_phone)
    if len(by_id):  # given alone, IDs of one width make one contiguous byte matrix: credo.ids' fast path
        given = subject if len(by_id) == n else subject.take(pa.array(by_id))
        keys, id_reasons = ids.check_resident_ids(given, now.date())
        resident[by_id] = pc.fill_null(keys, 0).to_numpy(zero_copy_only=False)
        for reason in pc.unique(id_reasons.drop_null()).to_pylist():
            v.fail_at(by_id[_np(pc.equal(id_reasons, reason))], reason, "subject")
    when = parse_times(occurred, policy.tz)
    v.fail(_np(pc.is_null(occurred)), "missing_date", "occurred_at")
    v.fail(~when.ok, "bad_date", "occurred_at")
    v.fail(when.year < 1900, "date_too_early", "occurred_at")
    latest = np.datetime64(now + timedelta(days=1), "us").astype(np.int64)
    v.fail(when.micros > latest, "future_date", "occurred_at")
    v.fail(_np(pc.greater(pc.binary_length(attributes), 4096)), "attributes_too_large", "attributes")
    _check_json(con, attributes, v, "bad_attributes", "attributes")
    checked(0.5)

    # Rules that need the store run on the rows still standing, as joins.
    by_phone = np.flatnonzero(v.ok & is_phone)
    if len(by_phone):
        _register(con, "phone_in", pa.table({"pos": by_phone, "phone": phone[by_phone],
                                             "occurred_at": when.array().take(pa.array(by_phone))}))
        held = con.execute(q("ingest.records_holders")).fetchnumpy()
        resident[held["pos"]] = held["holder"]
        found = np.zeros(n, np.bool_)
        found[held["pos"]] = True
        v.fail_at(by_phone[~found[by_phone]], "unresolved_phone", "subject")
    _unknown_residents(con, resident, v, "subject")

    batch = _Rows({"record_id": record_id, "type": type_, "subject": subject, "resident": pa.array(resident),
                   "occurred_at": pa.array(when.micros, pa.timestamp("us")), "resolves": resolves,
                   "attributes": attributes})
    if con.execute(q("ingest.ledger_has_agency"), {"agency": agency}).fetchall():
        _register(con, "cand_in", batch.at(np.flatnonzero(v.ok)))
        seen = con.execute(q("ingest.records_seen"), {"agency": agency}).fetchnumpy()
        seen["same"] = _same_as_json(seen)
        v.fail_at(seen["pos"][seen["same"]], DUPLICATE, "record_id")
        v.fail_at(seen["pos"][~seen["same"]], "conflict", "record_id")
    again = repeated(record_id, v.ok)
    if again.any():
        _register(con, "again_in", batch.at(np.flatnonzero(again)))
        twice = con.execute(q("ingest.records_repeated")).fetchnumpy()
        twice["same"] = _same_as_json(twice)
        v.fail_at(twice["pos"][twice["same"]], DUPLICATE, "record_id")
        lines = t.column("_line").to_numpy()
        for pos, first in zip(twice["pos"][~twice["same"]], twice["first"][~twice["same"]], strict=True):
            v.detail[int(pos)] = (f"already used on line {int(lines[first])} of this file "
                                  "for a record with different content")
        v.fail_at(twice["pos"][~twice["same"]], "conflict", "record_id")
    _check_resolves(con, v, batch, agency)
    checked(1.0)

    accepted = np.flatnonzero(v.ok)
    _register(con, "accepted_in", batch.at(accepted))
    con.execute(q("ingest.records_append"), {"agency": agency, "batch": params["batch"]})
    return v, distinct(resident[accepted])


def _same_as_json(found: dict[str, Any]) -> _Bools:
    """``same``, or else alike but for attributes that differ only as text (key order, escapes):
    compared here as JSON values, on those few rows only, so a re-sent row whose attributes an
    exporter wrote in another key order is a duplicate, not a conflict."""
    same: _Bools = np.asarray(found["same"], np.bool_).copy()
    stored, given = found["stored"], found["given"]
    both = ~np.ma.getmaskarray(stored) & ~np.ma.getmaskarray(given)
    for i in np.flatnonzero(both):
        same[i] = _canonical(stored[i]) == _canonical(given[i])
    return same


def _canonical(text: str) -> str:
    """A JSON text with its object keys sorted (nested ones too) and no spacing: equal values, equal
    text. The standard library's parser, as it keeps integers of any size exactly."""
    return json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class _Rows:
    """The batch's cleaned columns; ``at(rows)`` is the table of those rows (no copy when all)."""

    def __init__(self, columns: dict[str, pa.Array]) -> None:
        self.columns = columns
        self.n = len(next(iter(columns.values())))

    def at(self, rows: _I64, names: tuple[str, ...] | None = None) -> pa.Table:
        names = names or tuple(self.columns)
        every = len(rows) == self.n
        take = pa.array(rows, pa.int64())
        return pa.table({"pos": pa.array(rows, pa.int64()),
                         **{c: self.columns[c] if every else self.columns[c].take(take) for c in names}})


def _check_json(con: duckdb.DuckDBPyConnection, values: pa.Array, v: Verdicts, reason: str,
                field: str) -> None:
    """JSON objects only; parsed by DuckDB, on the rows that have a value and are still standing."""
    rows = np.flatnonzero(v.ok & _np(pc.is_valid(values)))
    if not len(rows):
        return
    _register(con, "json_in", pa.table({"pos": rows, "value": values.take(pa.array(rows))}))
    bad = con.execute(q("ingest.json_not_object")).fetchnumpy()["pos"]
    v.fail_at(bad, reason, field)


def _unknown_residents(con: duckdb.DuckDBPyConnection, resident: _I64, v: Verdicts, field: str) -> None:
    rows = np.flatnonzero(v.ok)
    _register(con, "residents_probe", pa.table({"pos": rows, "resident": resident[rows]}))
    unknown = con.execute(q("ingest.unknown_residents")).fetchnumpy()["pos"]
    v.fail_at(unknown, "unknown_resident", field)


def _check_resolves(con: duckdb.DuckDBPyConnection, v: Verdicts, batch: _Rows, agency: str) -> None:
    """``resolves`` must name a record of this agency already in the ledger, or standing earlier in
    this batch, of a type this row's type resolves, about the same resident. A target in the batch
    that is itself rejected here takes its resolvers down with it, hence the loop to a fixed point.
    Only the resolving rows and the rows they name go to SQL."""
    resolves = batch.columns["resolves"]
    while True:
        asking = np.flatnonzero(v.ok & _np(pc.is_valid(resolves)))
        if not len(asking):
            return
        names = pc.unique(resolves.take(pa.array(asking)))
        named = np.flatnonzero(v.ok & _np(pc.is_in(batch.columns["record_id"], value_set=names)))
        _register(con, "asking_in", batch.at(asking, ("type", "resident", "resolves")))
        _register(con, "targets_in", batch.at(named, ("record_id", "type", "resident")))
        failed = con.execute(q("ingest.records_resolves"), {"agency": agency}).fetchall()
        if not failed:
            return
        for reason in ("unknown_resolves", "bad_resolves"):
            v.fail_at([pos for pos, why in failed if why == reason], reason, "resolves")


# ---------------------------------------------------------------------------------------------
# population -> residents


def _population(con: duckdb.DuckDBPyConnection, policy: Policy, feed: Feed, now: datetime,
                params: dict[str, Any], checked: Check) -> tuple[Verdicts, np.ndarray]:
    t = feed.table
    v = Verdicts(t.num_rows)
    keys, id_reasons = ids.check_resident_ids(t.column("resident_id"), now.date())
    v.fail_codes(id_reasons, "resident_id")
    name, district = clean(t.column("name")), clean(t.column("district"))
    status = pc.fill_null(pc.utf8_lower(clean(t.column("status"))), "active")
    status_text = clean(t.column("status_date"))
    v.fail(_np(pc.is_null(name)), "missing_name", "name")
    v.fail(ids.unsafe_text(name), ids.UNSAFE_TEXT, "name")
    v.fail(~_np(pc.and_(pc.equal(pc.binary_length(district), 6), pc.ascii_is_decimal(district))),
           "bad_district", "district")
    v.fail(~_np(pc.is_in(status, value_set=pa.array(STATUSES))), "bad_status", "status")
    when = parse_times(status_text, policy.tz)
    v.fail(_np(pc.is_valid(status_text)) & ~when.ok, "bad_date", "status_date")
    key = pc.fill_null(keys, 0).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(v.ok)
    # The registry is current state: the last row of a batch for a resident wins.
    order = np.argsort(key[rows], kind="stable")
    ordered = key[rows][order]
    last = np.sort(rows[order[np.append(ordered[1:] != ordered[:-1], True)]]) if len(rows) else rows
    take = pa.array(last)
    _register(con, "population_in", pa.table({
        "pos": last, "resident": key[last], "name": name.take(take), "district": district.take(take),
        "status": status.take(take), "status_date": when.array().take(take)}))
    same = con.execute(q("ingest.population_same")).fetchnumpy()["pos"]
    v.fail_at(same, DUPLICATE, "resident_id")
    checked(1.0)
    unchanged = np.zeros(t.num_rows, np.bool_)
    unchanged[same] = True
    changed = last[~unchanged[last]]
    _register(con, "population_ok", pa.table({"pos": changed}))
    _run(con, "ingest.population_upsert", params)
    return v, distinct(key[changed])


# ---------------------------------------------------------------------------------------------
# telecom -> phone links


def _telecom(con: duckdb.DuckDBPyConnection, policy: Policy, feed: Feed, now: datetime,
             params: dict[str, Any], checked: Check) -> tuple[Verdicts, np.ndarray]:
    t = feed.table
    v = Verdicts(t.num_rows)
    phones, phone_reasons = ids.check_phones(t.column("phone"))
    v.fail_codes(phone_reasons, "phone")
    keys, id_reasons = ids.check_resident_ids(t.column("resident_id"), now.date())
    v.fail_codes(id_reasons, "resident_id")
    start_text, end_text = clean(t.column("valid_from")), clean(t.column("valid_to"))
    start, end = parse_times(start_text, policy.tz), parse_times(end_text, policy.tz)
    v.fail(_np(pc.is_null(start_text)), "missing_date", "valid_from")
    v.fail(~start.ok, "bad_date", "valid_from")
    has_end = _np(pc.is_valid(end_text))
    v.fail(has_end & ~end.ok, "bad_date", "valid_to")
    # Held to the end of valid_to: a bare date closes at the next midnight.
    until = end.micros + np.where(end.bare, 86_400_000_000, 0)
    v.fail(has_end & (until <= start.micros), "bad_period", "valid_to")
    key = pc.fill_null(keys, 0).to_numpy(zero_copy_only=False)
    _unknown_residents(con, key, v, "resident_id")
    rows = np.flatnonzero(v.ok)
    _register(con, "links_in", pa.table({
        "pos": rows, "phone": pc.fill_null(phones, 0).to_numpy(zero_copy_only=False)[rows],
        "resident": key[rows],
        "valid_from": pa.array(start.micros[rows], pa.timestamp("us")),
        "valid_until": pa.array(until[rows], pa.timestamp("us"), mask=~has_end[rows])}))
    found = con.execute(q("ingest.telecom_checked")).fetchall()
    v.fail_at([pos for pos, why in found if why == DUPLICATE], DUPLICATE, "phone")
    v.fail_at([pos for pos, why in found if why == "overlapping_holder"], "overlapping_holder", "phone")
    checked(1.0)
    _register(con, "telecom_ok", pa.table({"pos": np.flatnonzero(v.ok)}))
    _run(con, "ingest.telecom_upsert", params)
    return v, np.zeros(0, np.int64)


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Register a batch's input for SQL, cut into slices of DuckDB's row-group size (no copy): DuckDB
    scans an Arrow table one record batch per thread, so one huge batch would be read by one thread."""
    con.register(name, pa.Table.from_batches(table.to_batches(max_chunksize=_SLICE), table.schema))


_SLICE = 122_880


def _run(con: duckdb.DuckDBPyConnection, ref: str, params: dict[str, Any]) -> None:
    """A named script of several statements, each given only the parameters it names."""
    for statement in q(ref).split(";"):
        con.execute(statement, {k: val for k, val in params.items() if f"${k}" in statement})


# ---------------------------------------------------------------------------------------------
# rejects, kept with line, row as received, reason, field and message


def _keep_rejects(con: duckdb.DuckDBPyConnection, feed: Feed, v: Verdicts, params: dict[str, Any],
                  result: BatchResult) -> None:
    """Count every row and store each reject with its line, the row as received, reason, field and a
    message; the message is assembled in SQL so that a file of a million bad rows costs no Python loop
    (only identity problems and in-file conflicts carry a per-row detail)."""
    counts = np.bincount(v.code, minlength=len(v.rules))
    result.accepted = int(counts[0])
    for i, (reason, _) in enumerate(v.rules[1:], start=1):
        if reason == DUPLICATE:
            result.duplicates += int(counts[i])
        elif counts[i]:
            result.rejected[reason] += int(counts[i])
    if feed.broken:
        result.rejected["malformed_row"] += len(feed.broken)
    dup_codes = [i for i, (r, _) in enumerate(v.rules) if r == DUPLICATE]
    rows = np.flatnonzero((v.code != 0) & ~np.isin(v.code, dup_codes))
    if not len(rows) and not feed.broken:
        return
    columns = [c for c in feed.table.column_names if c != "_line"]
    reason, fld = v.reasons()
    take = pa.array(rows, pa.int64())
    raw = feed.table.take(take)
    schema = pa.schema([("_line", pa.int64()), ("reason", pa.string()), ("field", pa.string()),
                        ("detail", pa.string()), ("_raw", pa.string()), *[(c, pa.string()) for c in columns]])
    parts = [pa.table([raw.column("_line"), reason.take(take), fld.take(take),
                       pa.array(_details(feed, v, rows, reason, fld, params["now"]), pa.string()),
                       pa.nulls(len(rows), pa.string()), *[raw.column(c) for c in columns]], schema=schema)]
    if feed.broken:
        k = len(feed.broken)
        parts.append(pa.table([
            pa.array([b.line for b in feed.broken], pa.int64()), pa.array(["malformed_row"] * k, pa.string()),
            pa.array([b.field for b in feed.broken], pa.string()),
            pa.array([b.message for b in feed.broken], pa.string()),
            pa.array([b.text for b in feed.broken], pa.string()),
            *[pa.nulls(k, pa.string()) for _ in columns]],
            schema=schema))
    _register(con, "rejected_in", pa.concat_tables(parts))
    _register(con, "reasons_in", pa.table({"reason": list(REASONS),
                                           "text": [text for _, text in REASONS.values()]}))
    # Column names come from the feed's fixed column set (checked against the header), never from data.
    pairs = ", ".join(f"'{c}', r.{c}" for c in columns)
    whens = " ".join(f"WHEN '{c}' THEN r.{c}" for c in columns)
    row_text, got = f"json_object({pairs})", f"CASE r.field {whens} END"
    sql = q("ingest.rejects_append").replace("$row_text", row_text).replace("$got", got)
    con.execute(sql, {"batch": params["batch"], "agency": params["agency"], "source": feed.source,
                      "now": params["now"], "shown": _SHOWN})


def _details(feed: Feed, v: Verdicts, rows: _I64, reason: pa.Array, fld: pa.Array,
             now: datetime) -> list[str | None]:
    """Per-row wording where the reason alone is not enough: identity problems say what is wrong with
    the ID the way credo.ids does (length, date, check character), conflicts name the earlier line."""
    out: list[str | None] = [v.detail.get(int(r)) for r in rows] if v.detail else [None] * len(rows)
    reasons = reason.take(pa.array(rows, pa.int64()))
    fields = fld.take(pa.array(rows, pa.int64()))
    wanted = _np(pc.is_in(reasons, value_set=pa.array((*ID_REASONS, ids.UNSAFE_TEXT))))
    for name in pc.unique(fields.filter(pa.array(wanted))).to_pylist():
        at = np.flatnonzero(wanted & _np(pc.equal(fields, name)))
        values = feed.table.column(name).take(pa.array(rows[at], pa.int64())).to_pylist()
        for i, r, value in zip(at, reasons.take(pa.array(at)).to_pylist(), values, strict=True):
            out[i] = _id_detail(r, value or "", now.date())
    return out


def _id_detail(reason: str, value: str, today: date) -> str:
    if reason == ids.UNSAFE_TEXT:
        return ids.unsafe_detail(value)
    try:
        if reason == ids.BAD_PHONE:
            ids.normalise_phone(value)
        else:
            ids.normalise_resident_id(value, today)
    except ids.IdError as exc:
        return exc.detail
    return reason
