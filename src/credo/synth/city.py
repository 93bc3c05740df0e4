"""The residents and their phones, as numbers: IDs, districts, births, statuses and the telecom
holdings (recycled numbers, second phones)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from credo.ids import resident_ids_from_keys
from credo.synth.draw import F64, I8, I64, Bools, _day, _phone_number, _years_ago, _ymd
from credo.synth.rates import AGE_BANDS, CIVIC_SHARE, DISTRICTS, RECYCLED_SHARE, SECOND_PHONE_SHARE


@dataclass
class _City:
    n: int
    keys: I64  # first 17 digits of the ID
    ids: pa.Array  # 18-character IDs
    district: I64  # index into DISTRICTS
    birth: I64  # days since epoch
    status: I8  # 0 active, 1 deceased, 2 moved_out
    status_day: I64
    start: I64  # first day a record may occur (window start, or 18th birthday)
    end: I64  # last day a record may occur (yesterday, or the day before leaving)
    cdf_neg: F64  # propensity to misbehave, cumulative
    cdf_pos: F64  # propensity to do good, cumulative
    first_day: int
    last_day: int
    today: int
    phone: I64  # telecom rows, sorted by (phone, valid_from)
    holder: I64
    valid_from: I64
    valid_to: I64  # -1: still held
    phones_used: int  # phone indices below this are taken


def _make_city(n: int, seed: int, years: int, today: date) -> _City:
    rng = np.random.default_rng([seed, 0])
    today_day = _day(today)
    first_day = _day(_years_ago(today, years))
    last_day = today_day - 1

    weights = np.array([d[2] for d in DISTRICTS])
    district = rng.choice(len(DISTRICTS), size=n, p=weights / weights.sum()).astype(np.int64)
    ages = np.arange(18, 91)
    age_w = np.zeros(len(ages))
    for lo, hi, w in AGE_BANDS:
        age_w[(ages >= lo) & (ages <= hi)] = w
    age = rng.choice(ages, size=n, p=age_w / age_w.sum()).astype(np.int64)
    birth = today_day - np.round(age * 365.2425).astype(np.int64) - 1 - rng.integers(0, 365, n)
    male = rng.random(n) < 0.51
    year, month, day = _ymd(birth)
    region = np.array([int(d[0]) for d in DISTRICTS], dtype=np.int64)[district]
    stem = region * 10**11 + (year * 10_000 + month * 100 + day) * 1000

    def sequence(count: int, is_male: Bools) -> I64:
        k = rng.integers(0, 499, count)
        return np.where(is_male, 2 * k + 1, 2 * k + 2).astype(np.int64)

    keys = stem + sequence(n, male)
    while True:  # a few rounds: redraw the sequence of IDs drawn twice
        _, first = np.unique(keys, return_index=True)
        if len(first) == n:
            break
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        idx = np.flatnonzero(dup)
        keys[idx] = stem[idx] + sequence(len(idx), male[idx])

    # a small share died or moved away during the window, the old more often
    p_dead = np.select([age >= 80, age >= 70, age >= 60], [0.15, 0.05, 0.015], 0.003) * years / 5
    u = rng.random(n)
    status = np.where(u < p_dead, 1, np.where(u < p_dead + 0.02 * years / 5, 2, 0)).astype(np.int8)
    status_day = np.where(status > 0, rng.integers(first_day, last_day + 1, n), -1).astype(np.int64)
    adult = birth + 6575
    start = np.maximum(first_day, adult)
    end = np.where(status > 0, status_day - 1, last_day)

    # heavy-tailed propensities: most residents have no record of a kind, a few have many
    cdf_neg = np.cumsum(rng.gamma(0.35, size=n))
    civic = rng.random(n) < CIVIC_SHARE  # the residents who volunteer, donate and give regularly
    cdf_pos = np.cumsum(np.where(civic, rng.gamma(2.0, size=n), 0.03 * rng.gamma(0.5, size=n)) * (age < 75))

    city = _City(n=n, keys=keys, ids=resident_ids_from_keys(keys), district=district, birth=birth,
                 status=status, status_day=status_day, start=start, end=end, cdf_neg=cdf_neg,
                 cdf_pos=cdf_pos, first_day=first_day, last_day=last_day, today=today_day,
                 phone=np.empty(0, np.int64), holder=np.empty(0, np.int64),
                 valid_from=np.empty(0, np.int64), valid_to=np.empty(0, np.int64), phones_used=0)
    _make_phones(city, np.random.default_rng([seed, 1]))
    return city


def _make_phones(c: _City, rng: np.random.Generator) -> None:
    """Telecom history: one number each, some a second, some numbers recycled from an earlier holder."""
    n = c.n
    adult = c.birth + 6575
    gone = c.status > 0
    res = np.arange(n, dtype=np.int64)
    frm = np.maximum(adult, c.today - rng.integers(0, 15 * 365, n))
    # a share of active residents got a recycled number during the window
    recycled = (rng.random(n) < RECYCLED_SHARE) & ~gone
    r = np.flatnonzero(recycled)
    frm[r] = np.maximum(rng.integers(c.first_day + 200, c.last_day - 10, len(r)), adult[r])
    frm = np.where(gone, np.minimum(frm, c.status_day), frm)
    to = np.where(gone, c.status_day, -1)
    number = np.arange(n, dtype=np.int64)

    # the earlier holder of each recycled number, released 90-365 days before it was reissued
    prev = (r + 1 + rng.integers(0, max(n - 1, 1), len(r))) % n
    prev_to = frm[r] - rng.integers(90, 366, len(r))
    prev_to = np.where(gone[prev], np.minimum(prev_to, c.status_day[prev]), prev_to)
    prev_from = np.maximum(prev_to - rng.integers(180, 3000, len(r)), adult[prev])
    ok = (prev_from <= prev_to) & (prev != r)
    r, prev, prev_from, prev_to = r[ok], prev[ok], prev_from[ok], prev_to[ok]

    # second numbers, some given up again
    s = np.flatnonzero(rng.random(n) < SECOND_PHONE_SHARE)
    s_number = n + np.arange(len(s), dtype=np.int64)
    s_from = np.maximum(adult[s], c.today - rng.integers(0, 8 * 365, len(s)))
    s_from = np.where(gone[s], np.minimum(s_from, c.status_day[s]), s_from)
    s_to = np.where(rng.random(len(s)) < 0.3, s_from + rng.integers(30, 1500, len(s)), -1)
    s_to = np.where(s_to > c.last_day, -1, s_to)
    s_to = np.where(gone[s] & ((s_to < 0) | (s_to > c.status_day[s])), c.status_day[s], s_to)

    phone = _phone_number(np.concatenate([number, number[r], s_number]))
    holder = np.concatenate([res, prev, s])
    valid_from = np.concatenate([frm, prev_from, s_from])
    valid_to = np.concatenate([to, prev_to, s_to])
    order = np.lexsort((valid_from, phone))
    c.phone, c.holder = phone[order], holder[order]
    c.valid_from, c.valid_to = valid_from[order], valid_to[order]
    c.phones_used = n + len(s)


