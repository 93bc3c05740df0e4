"""The registry feeds: population into residents (current state, the last row of a resident wins) and
telecom into phone links (periods of holding a number)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credo import idvectors
from credo.feeds import Feed
from credo.ingest.verdicts import (
    DUPLICATE,
    STATUSES,
    Check,
    Verdicts,
    _register,
    _run,
    _unknown_residents,
)
from credo.policy import Policy
from credo.sql import q
from credo.text import UNSAFE_TEXT, _np, clean, distinct, parse_times, unsafe_text


def _population(con: duckdb.DuckDBPyConnection, policy: Policy, feed: Feed, now: datetime,
                params: dict[str, Any], checked: Check) -> tuple[Verdicts, np.ndarray]:
    t = feed.table
    v = Verdicts(t.num_rows)
    keys, id_reasons = idvectors.check_resident_ids(t.column("resident_id"), now.date())
    v.fail_codes(id_reasons, "resident_id")
    name, district = clean(t.column("name")), clean(t.column("district"))
    status = pc.fill_null(pc.utf8_lower(clean(t.column("status"))), "active")
    status_text = clean(t.column("status_date"))
    v.fail(_np(pc.is_null(name)), "missing_name", "name")
    v.fail(unsafe_text(name), UNSAFE_TEXT, "name")
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


def _telecom(con: duckdb.DuckDBPyConnection, policy: Policy, feed: Feed, now: datetime,
             params: dict[str, Any], checked: Check) -> tuple[Verdicts, np.ndarray]:
    t = feed.table
    v = Verdicts(t.num_rows)
    phones, phone_reasons = idvectors.check_phones(t.column("phone"))
    v.fail_codes(phone_reasons, "phone")
    keys, id_reasons = idvectors.check_resident_ids(t.column("resident_id"), now.date())
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

