"""The deliberate dirty rows: each of a kind that ingest must reject (``DIRTY_KINDS``)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credo.ids import CHECK_CHARS, check_indices, resident_ids_from_keys
from credo.synth.city import _City
from credo.synth.draw import I64, _dates, _join, _pad, _phone_number, _repeat, _text
from credo.synth.rates import _UNKNOWN_REGION, DIRTY_KINDS, RECORD_COLUMNS
from credo.synth.records import _materialise, _Records


def _ids_with_check(keys: I64, wrong: bool, rng: np.random.Generator) -> pa.Array:
    ids = resident_ids_from_keys(keys).cast(pa.string())
    if not wrong:
        return ids
    other = (check_indices(keys) + rng.integers(1, 11, len(keys))) % 11  # any of the ten other characters
    return _join(pc.utf8_slice_codeunits(ids, 0, 17), pc.take(pa.array(list(CHECK_CHARS)), pa.array(other)))


def _bad_dates_keys(c: _City, rng: np.random.Generator, m: int) -> I64:
    """Keys whose birth date is not a calendar date (30 Feb, 31 Apr, month 13)."""
    res = rng.integers(0, c.n, m)
    year = c.keys[res] // 10**7 % 10**4
    md = np.array([230, 431, 1301, 1132, 0], np.int64)[rng.integers(0, 5, m)]
    return c.keys[res] // 10**11 * 10**11 + (year * 10_000 + md) * 1000 + c.keys[res] % 1000


def _bad_subjects(c: _City, kind: str, rng: np.random.Generator, m: int, fresh: I64) -> pa.Array:
    res = rng.integers(0, c.n, m)
    if kind == "bad_check_char":
        return _ids_with_check(c.keys[res], True, rng)
    if kind == "bad_birth_date":
        return _ids_with_check(_bad_dates_keys(c, rng, m), False, rng)
    if kind == "bad_id_length":
        return pc.utf8_slice_codeunits(c.ids.take(pa.array(res)).cast(pa.string()), 0, 17)
    if kind == "bad_phone":
        return _text(1_000_000_000 + rng.integers(0, 999_999_999, m))  # ten digits
    if kind == "unknown_resident":
        return _ids_with_check(_UNKNOWN_REGION * 10**11 + c.keys[res] % 10**11, False, rng)
    return _text(_phone_number(fresh))  # unresolved_phone: a number nobody ever held


def _dirty_records(c: _City, r: _Records, other_types: list[str], share: float, seed: int
                   ) -> tuple[pa.Table, I64]:
    """Malformed rows for one agency feed and, for each, the clean position it goes before."""
    m_total = math.ceil(share * r.n) if share > 0 and r.n else 0
    rng = np.random.default_rng([seed, 3, r.salt])
    kinds = np.arange(m_total) % len(DIRTY_KINDS)
    tables: list[pa.Table] = []
    inserts: list[I64] = []
    resolver_codes = r.resolver_codes
    never_held = c.phones_used + 10_000_000 + r.salt * 1_000_000  # phone indices nobody ever holds
    for k, kind in enumerate(DIRTY_KINDS):
        m = int((kinds == k).sum())
        if not m:
            continue
        base = rng.integers(0, r.n, m)
        t = _materialise(c, r, base)
        serial = np.flatnonzero(kinds == k).astype(np.int64)
        cols = {name: t.column(name).combine_chunks() for name in RECORD_COLUMNS}
        cols["record_id"] = _join(f"{r.agency}-x", _pad(serial, 8))
        insert = rng.integers(0, r.n + 1, m)
        if kind in ("bad_check_char", "bad_birth_date", "bad_id_length", "bad_phone",
                    "unknown_resident", "unresolved_phone"):
            cols["subject"] = _bad_subjects(c, kind, rng, m, never_held + serial)
        elif kind == "unknown_type":
            cols["type"] = _repeat("unknown.not_in_policy", m)
        elif kind == "foreign_type":
            pick = rng.integers(0, len(other_types), m)
            cols["type"] = pc.take(pa.array(other_types, pa.string()), pa.array(pick))
        elif kind == "impossible_date":
            cols["occurred_at"] = _join(pc.utf8_slice_codeunits(cols["occurred_at"], 0, 4), "-02-30")
        elif kind == "future_date":
            cols["occurred_at"] = _dates(c.today + rng.integers(3, 400, m))
        elif kind == "date_before_1900":
            cols["occurred_at"] = _join("1899-", pc.utf8_slice_codeunits(cols["occurred_at"], 5, 10))
        elif kind == "missing_resolves":
            cols["resolves"] = _join(f"{r.agency}-missing-", _pad(serial, 8))
            if resolver_codes:
                pick = rng.integers(0, len(resolver_codes), m)
                cols["type"] = pc.take(pa.array(resolver_codes, pa.string()), pa.array(pick))
        elif kind == "attributes_not_object":
            shapes = pa.array(['["not", "an", "object"]', '"just text"', "not json", "42"])
            cols["attributes"] = pc.take(shapes, pa.array(serial % 4))
        elif kind == "attributes_too_big":
            cols["attributes"] = _repeat('{"note":"' + "x" * 4200 + '"}', m)
        elif kind == "empty_record_id":
            cols["record_id"] = _repeat("", m)
        elif kind == "long_record_id":
            cols["record_id"] = _join(f"{r.agency}-" + "9" * 64, _pad(serial, 8))
        elif kind == "conflicting_duplicate":
            cols["record_id"] = t.column("record_id").combine_chunks()
            attrs = cols["attributes"]
            cols["attributes"] = _join(pc.utf8_slice_codeunits(attrs, 0, 1), '"amended":true,',
                                       pc.utf8_slice_codeunits(attrs, 1, 5000))
            insert = base + 1 + np.floor(rng.random(m) * (r.n - base)).astype(np.int64)
        else:  # identical_duplicate
            cols["record_id"] = t.column("record_id").combine_chunks()
            insert = base + 1 + np.floor(rng.random(m) * (r.n - base)).astype(np.int64)
        tables.append(pa.table(cols))
        inserts.append(insert)
    if not tables:
        return _empty(RECORD_COLUMNS), np.empty(0, np.int64)
    return pa.concat_tables(tables), np.concatenate(inserts)


def _empty(columns: tuple[str, ...]) -> pa.Table:
    return pa.table({name: pa.array([], pa.string()) for name in columns})


