"""Records of one agency: generated as numbers for the whole window, sorted by time, and turned into
text chunk by chunk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credo.synth.city import _City
from credo.synth.draw import (
    F64,
    I64,
    U64,
    _between,
    _dates,
    _datetimes,
    _join,
    _mix,
    _pad,
    _sample,
    _text,
    _uniform_days,
    _ymd,
)
from credo.synth.rates import (
    _ATTRS,
    _DEFAULT_ATTRS,
    _NUMERIC_PICKS,
    DATETIME_AGENCIES,
    DEFAULT_RATE,
    DEFAULT_RESOLVE_SHARE,
    MAX_AGE,
    PHONE_SHARE,
    RATES,
    RESOLVE_DELAY,
)


@dataclass
class _Records:
    agency: str
    codes: list[str]  # the agency's types, sorted
    type_idx: I64
    res: I64  # resident behind the record (the phone's holder for phone-keyed rows)
    phone: I64  # 0: keyed by resident ID
    seconds: I64  # occurred_at, seconds since epoch (midnight for date-only agencies)
    target: I64  # position of the resolved record, -1: none
    salt: int
    resolver_codes: list[str]  # the agency's types that resolve others

    @property
    def n(self) -> int:
        return len(self.type_idx)


def _generate(c: _City, agency: str, codes: list[str], types: dict[str, Any], seed: int, salt: int,
              years: int) -> _Records:
    rng = np.random.default_rng([seed, 2, salt])
    resolvers = [i for i, code in enumerate(codes) if types[code].get("resolves")]
    t_parts: list[I64] = []
    r_parts: list[I64] = []
    p_parts: list[I64] = []
    d_parts: list[I64] = []
    max_age = MAX_AGE.get(agency)
    phone_share = PHONE_SHARE.get(agency, 0.0)
    phone_cdf: F64 | None = None
    phone_rows: I64 | None = None
    for i, code in enumerate(codes):
        if i in resolvers:
            continue
        expected = RATES.get(code, DEFAULT_RATE) * c.n * years
        count = int(rng.poisson(expected)) if expected < 1e6 else round(expected)
        points = int(types[code].get("points", 0))
        cdf = c.cdf_neg if points < 0 else c.cdf_pos if points > 0 else c.cdf_neg
        by_phone = rng.random(count) < phone_share
        n_id = int(count - by_phone.sum())
        res = _sample(rng, cdf, n_id)
        lo, hi = c.start[res], c.end[res]
        if max_age is not None:
            hi = np.minimum(hi, c.birth[res] + int(max_age * 365.25))
        keep = lo <= hi
        res, lo, hi = res[keep], lo[keep], hi[keep]
        t_parts.append(np.full(len(res), i, np.int64))
        r_parts.append(res)
        p_parts.append(np.zeros(len(res), np.int64))
        d_parts.append(_uniform_days(rng, lo, hi))
        n_phone = count - n_id
        if n_phone:
            if phone_cdf is None or phone_rows is None:
                to = np.where(c.valid_to < 0, c.last_day, c.valid_to)
                plo = np.maximum(np.maximum(c.valid_from, c.first_day), c.start[c.holder])
                phi = np.minimum(np.minimum(to, c.last_day), c.end[c.holder])
                phone_rows = np.flatnonzero(plo <= phi)
                w = np.diff(c.cdf_neg, prepend=0.0)[c.holder[phone_rows]]
                phone_cdf = np.cumsum(w)
            rows = phone_rows[_sample(rng, phone_cdf, n_phone)]
            to = np.where(c.valid_to[rows] < 0, c.last_day, c.valid_to[rows])
            holder = c.holder[rows]
            lo = np.maximum(np.maximum(c.valid_from[rows], c.first_day), c.start[holder])
            hi = np.minimum(np.minimum(to, c.last_day), c.end[holder])
            t_parts.append(np.full(n_phone, i, np.int64))
            r_parts.append(holder)
            p_parts.append(c.phone[rows])
            d_parts.append(_uniform_days(rng, lo, hi))
    type_idx = np.concatenate(t_parts) if t_parts else np.empty(0, np.int64)
    res = np.concatenate(r_parts) if r_parts else np.empty(0, np.int64)
    phone = np.concatenate(p_parts) if p_parts else np.empty(0, np.int64)
    day = np.concatenate(d_parts) if d_parts else np.empty(0, np.int64)
    target = np.full(len(type_idx), -1, np.int64)

    # records that resolve earlier ones, keyed by the resident ID
    delay = RESOLVE_DELAY.get(agency, 60)
    extra_t: list[I64] = []
    extra_r: list[I64] = []
    extra_d: list[I64] = []
    extra_target: list[I64] = []
    for i, code in enumerate(codes):
        if i in resolvers:
            continue
        by = [j for j in resolvers if code in types[codes[j]].get("resolves", [])]
        if not by:
            continue
        share = float(np.mean([RATES.get(codes[j], DEFAULT_RESOLVE_SHARE) for j in by]))
        cand = np.flatnonzero(type_idx == i)
        cand = cand[rng.random(len(cand)) < share]
        when = day[cand] + 1 + np.floor(rng.exponential(delay, len(cand))).astype(np.int64)
        ok = when <= c.end[res[cand]]
        cand, when = cand[ok], when[ok]
        extra_t.append(np.array(by, np.int64)[rng.integers(0, len(by), len(cand))])
        extra_r.append(res[cand])
        extra_d.append(when)
        extra_target.append(cand)
    if extra_t:
        type_idx = np.concatenate([type_idx, *extra_t])
        res = np.concatenate([res, *extra_r])
        phone = np.concatenate([phone, np.zeros(sum(len(x) for x in extra_t), np.int64)])
        day = np.concatenate([day, *extra_d])
        target = np.concatenate([target, *extra_target])

    seconds = day * 86_400
    if agency in DATETIME_AGENCIES:
        seconds += rng.integers(6 * 3600, 23 * 3600, len(seconds))
    order = np.argsort(seconds, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    target = target[order]
    target = np.where(target >= 0, position[np.maximum(target, 0)], -1)
    return _Records(agency, codes, type_idx[order], res[order], phone[order], seconds[order], target, salt,
                    [codes[j] for j in resolvers])


# ---------------------------------------------------------------------------------------------
# records as text


def _record_ids(agency: str, pos: I64) -> pa.Array:
    return _join(f"{agency}-", _pad(pos + 1, 9))


def _attributes(agency: str, seconds: I64, h: U64) -> pa.Array:
    year = _text(_ymd(seconds // 86_400)[0])
    parts: list[Any] = []
    for k, (key, kind, arg) in enumerate(_ATTRS.get(agency, _DEFAULT_ATTRS)):
        hk = _mix(h + np.uint64(k + 1))
        if kind == "int":
            value = _text(_between(hk, arg[0], arg[1]))
        elif kind == "pick":
            chosen = pc.take(pa.array(arg, pa.string()), pa.array(_between(hk, 0, len(arg) - 1)))
            value = chosen if key in _NUMERIC_PICKS else _join('"', chosen, '"')
        elif kind == "case":
            value = _join('"(', year, ")京0", _text(_between(hk, 1, 4)), "执",
                          _text(_between(hk >> np.uint64(8), 1, 9999)), '"')
        elif kind == "penalty":
            value = _join('"京市监罚〔', year, "〕", _text(_between(hk, 1, 9999)), '号"')
        else:  # plate
            letters = pa.array(list("ABCEFGHJKLMNPQ"), pa.string())
            value = _join('"京', pc.take(letters, pa.array(_between(hk, 0, 13))),
                          _pad(_between(hk >> np.uint64(8), 0, 99_999), 5), '"')
        parts += [("{" if k == 0 else ",") + f'"{key}":', value]
    return _join(*parts, "}")


def _materialise(c: _City, r: _Records, pos: I64) -> pa.Table:
    """Rows at these positions of the sorted records, as the six string columns of a feed."""
    phone = r.phone[pos]
    by_phone = pa.array(phone > 0)
    subject = pc.if_else(by_phone, _text(phone), c.ids.take(pa.array(r.res[pos])).cast(pa.string()))
    seconds = r.seconds[pos]
    occurred = _datetimes(seconds) if r.agency in DATETIME_AGENCIES else _dates(seconds // 86_400)
    target = r.target[pos]
    resolves = pc.if_else(pa.array(target >= 0), _record_ids(r.agency, target), pa.scalar(None, pa.string()))
    h = _mix(pos.astype(np.uint64) ^ (np.uint64(r.salt) << np.uint64(40)))
    return pa.table({
        "record_id": _record_ids(r.agency, pos),
        "type": pc.take(pa.array(r.codes, pa.string()), pa.array(r.type_idx[pos])),
        "subject": subject,
        "occurred_at": occurred,
        "resolves": resolves,
        "attributes": _attributes(r.agency, seconds, h),
    })


