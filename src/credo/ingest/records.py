"""Agency records into the append-only ledger: the rules of a row alone over whole columns, then the
ledger's keys, phone holders, known residents and ``resolves`` as joins in SQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credo import ids, idvectors
from credo.feeds import RECORD_COLUMNS, Feed
from credo.ingest import described
from credo.ingest.verdicts import (
    DUPLICATE,
    Check,
    Verdicts,
    _check_json,
    _register,
    _Rows,
    _unknown_residents,
)
from credo.policy import Policy
from credo.sql import q
from credo.text import UNSAFE_TEXT, _Bools, _np, clean, distinct, parse_times, repeated, unsafe_text


def _records(con: duckdb.DuckDBPyConnection, policy: Policy, feed: Feed, now: datetime,
             params: dict[str, Any], checked: Check) -> tuple[Verdicts, np.ndarray]:
    agency = params["agency"]
    t = feed.table
    n = t.num_rows
    v = Verdicts(n)
    record_id, type_, subject, occurred, resolves, attributes = (clean(t.column(c)) for c in RECORD_COLUMNS)
    about = described.read(t, subject)
    params["overridden"] = about.overridden
    v.fail(_np(pc.is_null(record_id)), "missing_record_id", "record_id")
    v.fail(_np(pc.greater(pc.utf8_length(record_id), 64)), "record_id_too_long", "record_id")
    v.fail(unsafe_text(record_id), UNSAFE_TEXT, "record_id")
    v.fail(_np(pc.is_null(type_)), "missing_type", "type")
    p_types = policy.tables()["p_types"]
    owner = pc.take(p_types.column("agency"), pc.index_in(type_, value_set=p_types.column("type")))
    v.fail(_np(pc.is_null(owner)), "unknown_type", "type")
    v.fail(_np(pc.not_equal(owner, agency)), "type_not_allowed", "type")
    v.fail(_np(pc.is_null(subject)) & ~about.held, "missing_subject", "subject")
    described.check(v, about, resolves, now)
    v.fail(unsafe_text(resolves), UNSAFE_TEXT, "resolves")
    # An 11-character subject is a phone, anything else a resident ID; each is checked only where it applies.
    is_phone = _np(pc.equal(pc.utf8_length(subject), 11))
    by_phone = np.flatnonzero(is_phone)
    phone = np.zeros(n, np.int64)
    if len(by_phone):
        phones, phone_reasons = idvectors.check_phones(subject.take(pa.array(by_phone)))
        phone[by_phone] = pc.fill_null(phones, 0).to_numpy(zero_copy_only=False)
        v.fail_at(by_phone[_np(pc.is_valid(phone_reasons))], ids.BAD_PHONE, "subject")
    resident = np.zeros(n, np.int64)
    by_id = np.flatnonzero(~is_phone & ~about.held)
    if len(by_id):  # given alone, IDs of one width make one contiguous byte matrix: credo.ids' fast path
        given = subject if len(by_id) == n else subject.take(pa.array(by_id))
        keys, id_reasons = idvectors.check_resident_ids(given, now.date())
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
    _unknown_residents(con, resident, v, "subject", among=~about.held)

    batch = _Rows({"record_id": record_id, "type": type_, "subject": subject, "resident": pa.array(resident),
                   "occurred_at": pa.array(when.micros, pa.timestamp("us")), "resolves": resolves,
                   "attributes": attributes})
    described.seen(con, v, about, batch, agency)
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

    accepted = np.flatnonzero(v.ok & ~about.held)
    _register(con, "accepted_in", batch.at(accepted))
    con.execute(q("ingest.records_append"), {"agency": agency, "batch": params["batch"]})
    params["held"] = described.hold(con, feed, about, batch, np.flatnonzero(v.ok & about.held), params)
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

