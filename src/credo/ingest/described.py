"""Agency rows about a described person (spec §10): an empty ``subject`` with ``subject_name``,
``subject_birth_date`` and ``subject_district`` instead.

Such a row passes every rule of a row alone and of the batch (record_id, type, dates, attributes, the
agency's keys), then goes to the review queue (``credo.review``), never the ledger. A row with a subject
and a description uses the subject (the summary counts it). The description is checked only where it
is what names the person: all three given, a real birth date, a 6-digit district, a name with no
unsafe character, and no ``resolves`` (what a row resolves must be about the same resident, which no
one knows yet).
The reasons only such a row can be rejected for (``incomplete_description``, ``bad_birth_date``,
``described_resolves``) are in ``credo.ingest.verdicts.REASONS`` with the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credo import review
from credo.feeds import DESCRIBED_COLUMNS, Feed
from credo.ingest.verdicts import DUPLICATE, Verdicts, _register, _Rows
from credo.sql import q
from credo.text import UNSAFE_TEXT, _Bools, _np, clean, parse_times, unsafe_text


@dataclass
class Described:
    """The description columns of a batch, cleaned, and which rows they name the person of."""

    name: pa.Array
    birth: pa.Array
    district: pa.Array
    held: _Bools
    """Rows with no subject and a description: matched and held, if they pass."""
    overridden: int
    """Rows with both a subject and a description: the subject is used."""


def read(t: pa.Table, subject: pa.Array) -> Described:
    name, birth, district = (clean(t.column(c)) for c in DESCRIBED_COLUMNS)
    given = _np(pc.is_valid(name)) | _np(pc.is_valid(birth)) | _np(pc.is_valid(district))
    has_subject = _np(pc.is_valid(subject))
    return Described(name, birth, district, given & ~has_subject, int((given & has_subject).sum()))


def check(v: Verdicts, d: Described, resolves: pa.Array, now: datetime) -> None:
    """The rules of a described row alone, in the order they are reported."""
    held = d.held
    for column, values in zip(DESCRIBED_COLUMNS, (d.name, d.birth, d.district), strict=True):
        v.fail(held & _np(pc.is_null(values)), "incomplete_description", column)
    v.fail(held & unsafe_text(d.name), UNSAFE_TEXT, "subject_name")
    day = parse_times(d.birth, "UTC")  # a bare date only: no zone applies to a day of birth
    late = day.micros > np.datetime64(now, "us").astype(np.int64)
    v.fail(held & (~day.ok | ~day.bare | (day.year < 1900) | late), "bad_birth_date", "subject_birth_date")
    v.fail(held & ~_np(pc.match_substring_regex(d.district, r"^[0-9]{6}$")), "bad_district", "subject_district")
    v.fail(held & _np(pc.is_valid(resolves)), "described_resolves", "resolves")


def birth_dates(d: Described) -> pa.Array:
    """The birth dates as dates (null where not a date; such rows were rejected by ``check``)."""
    return pc.cast(parse_times(d.birth, "UTC").array(), pa.date32())


def seen(con: duckdb.DuckDBPyConnection, v: Verdicts, d: Described, batch: _Rows, agency: str) -> None:
    """A described row whose key a pending or confirmed item of this agency holds: the same content again
    is a duplicate, anything else a conflict."""
    rows = np.flatnonzero(v.ok & d.held)
    if not len(rows):
        return
    take = pa.array(rows, pa.int64())
    _register(con, "seen_in", pa.table({
        "pos": take, **{c: batch.columns[c].take(take) for c in ("record_id", "type", "occurred_at", "attributes")},
        "subject_name": d.name.take(take), "subject_birth_date": birth_dates(d).take(take),
        "subject_district": d.district.take(take)}))
    try:
        found = con.execute(q("review.seen"), {"agency": agency}).fetchnumpy()
    finally:
        con.unregister("seen_in")
    same = np.asarray(found["same"], np.bool_)
    v.fail_at(found["pos"][same], DUPLICATE, "record_id")
    v.fail_at(found["pos"][~same], "conflict", "record_id")


def hold(con: duckdb.DuckDBPyConnection, feed: Feed, d: Described, batch: _Rows, rows: np.ndarray,
         params: dict[str, Any]) -> int:
    """Queue the described rows that passed (``rows``), with their candidates; returns how many."""
    if not len(rows):
        return 0
    take = pa.array(rows, pa.int64())
    columns = [c for c in feed.table.column_names if c != "_line"]
    raw = feed.table.select(columns).take(take).to_pylist()
    held = pa.table({
        "line": feed.table.column("_line").take(take),
        **{c: batch.columns[c].take(take) for c in ("record_id", "type", "occurred_at", "attributes")},
        "subject_name": d.name.take(take), "subject_birth_date": birth_dates(d).take(take),
        "subject_district": d.district.take(take),
        "row_text": pa.array([json.dumps({k: val for k, val in r.items() if val is not None}, ensure_ascii=False,
                                         separators=(",", ":"))
                              for r in raw], pa.string())})
    now = params["now"]
    assert isinstance(now, datetime)
    count, fresh = review.hold(con, held, agency=str(params["agency"]), batch=int(params["batch"]),
                               source=feed.source, now=now)
    params["model_estimated"] = fresh
    return count
