"""A synthetic city: one feed file per agency, written the way real agencies would send them.

The city goes into Credo through ingest like any other data, so synth never touches the store. It
reads the policy only to learn which agencies exist and which types each may submit; how often each
type happens is fixed here in ``RATES``, tuned so that the default policy (Beijing) gives a plausible
grade distribution: most residents in grade A, a few percent on the dishonest-debtor list.

Everything is vectorised (numpy for the numbers, Arrow compute for the strings) and deterministic by
seed: the same arguments give byte-identical CSV and JSON Lines files. Records of one agency are
generated as numbers for the whole window, sorted by time, and only turned into text chunk by chunk,
so a 22-million-resident city fits in memory. With ``dirty`` > 0 every feed also carries that share
of extra malformed rows, each of a kind that ingest must reject (``DIRTY_KINDS``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from credo.ids import resident_ids_from_keys

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Progress = Callable[[str, int], None]

DEFAULT_POLICY = Path(__file__).parent / "policies" / "beijing.yaml"
RECORD_COLUMNS = ("record_id", "type", "subject", "occurred_at", "resolves", "attributes")
POPULATION_COLUMNS = ("resident_id", "name", "district", "status", "status_date")
TELECOM_COLUMNS = ("phone", "resident_id", "valid_from", "valid_to")
CHUNK = 1_000_000
EPOCH = date(1970, 1, 1)

# (code, name, population in 10k, 2020 census): the 16 districts of Beijing.
DISTRICTS: tuple[tuple[str, str, float], ...] = (
    ("110101", "东城", 70.9), ("110102", "西城", 110.6), ("110105", "朝阳", 345.2),
    ("110106", "丰台", 201.9), ("110107", "石景山", 56.8), ("110108", "海淀", 313.3),
    ("110109", "门头沟", 39.3), ("110111", "房山", 131.3), ("110112", "通州", 184.0),
    ("110113", "顺义", 132.4), ("110114", "昌平", 226.9), ("110115", "大兴", 199.4),
    ("110116", "怀柔", 44.1), ("110117", "平谷", 45.7), ("110118", "密云", 52.8),
    ("110119", "延庆", 34.6),
)
# Relative weight of one year of age, by age band (adults only: 18-90).
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (18, 24, 1.0), (25, 34, 1.6), (35, 44, 1.45), (45, 54, 1.5), (55, 64, 1.35),
    (65, 74, 0.95), (75, 84, 0.5), (85, 90, 0.2),
)
SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun",
            "Hu", "Zhu", "Gao", "Lin", "He", "Guo", "Ma", "Luo", "Liang", "Song", "Zheng", "Xie",
            "Han", "Tang", "Feng", "Yu", "Dong", "Xiao")
GIVEN = ("Wei", "Fang", "Na", "Xiuying", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong",
         "Yan", "Jie", "Juan", "Tao", "Ming", "Chao", "Xiulan", "Xia", "Ping", "Gang", "Hui", "Hong",
         "Yuxuan", "Zihan", "Haoran", "Yichen", "Xinyi", "Jiayi", "Bo", "Lin", "Hao", "Kai", "Dan",
         "Rui", "Tingting", "Zhiqiang", "Guiying", "Shu")

# Expected records per resident per year, by type code. For a type that resolves others (its policy
# entry has ``resolves``) the value is instead the share of the resolvable records that get resolved.
RATES: dict[str, float] = {
    # court: about 2.5 % of residents are on the dishonest-debtor list at any time
    "court.judgment_default": 0.017,
    "court.judgment_fulfilled": 0.35,
    "court.enforcement_obstruction": 0.0008,
    "court.consumption_breach": 0.0008,
    "court.false_litigation": 0.0004,
    # tax
    "tax.arrears": 0.008,
    "tax.arrears_settled": 0.7,
    "tax.major_violation": 0.0004,
    "tax.major_violation_corrected": 0.3,
    "tax.filing_compliant": 0.03,
    # market regulator (residents who run a business)
    "market.under_table_fee": 0.002,
    "market.false_advertising": 0.0015,
    "market.counterfeit_goods": 0.0006,
    "market.food_safety_violation": 0.0006,
    "market.credit_repaired": 0.4,
    # traffic police: the biggest feed
    "traffic.red_light": 0.04,
    "traffic.speeding": 0.045,
    "traffic.illegal_parking": 0.04,
    "traffic.drink_driving": 0.002,
    "traffic.drunk_driving": 0.0008,
    "traffic.hit_and_run": 0.0001,
    "traffic.fine_overdue": 0.01,
    "traffic.fine_paid": 0.75,
    "traffic.zebra_crossing_no_yield": 0.02,
    # transit
    "transit.fare_evasion": 0.03,
    "transit.fare_repaid": 0.6,
    "transit.disorderly_conduct": 0.006,
    "transit.operation_disruption": 0.0004,
    # tourism
    "tourism.uncivil_behaviour": 0.003,
    "tourism.heritage_damage": 0.0003,
    "tourism.forced_shopping": 0.0004,
    # pro-social
    "blood.whole_blood_donation": 0.04,
    "blood.platelet_donation": 0.006,
    "blood.donor_award": 0.0008,
    "blood.stem_cell_donation": 0.0001,
    "volunteer.service": 0.25,
    "volunteer.star_volunteer": 0.002,
    "volunteer.emergency_relief": 0.01,
    "volunteer.civility_guide": 0.02,
    "civil.charity_donation": 0.03,
    "civil.good_samaritan": 0.0003,
    "civil.charity_fraud": 0.0002,
    # labour, housing, customs, environment, education
    "labour.salary_arrears": 0.001,
    "labour.arrears_paid": 0.6,
    "labour.model_worker": 0.0005,
    "labour.insurance_fraud": 0.0004,
    "housing.rent_default": 0.004,
    "housing.rent_settled": 0.6,
    "housing.illegal_sublet": 0.002,
    "housing.fund_fraud": 0.0004,
    "housing.subsidy_fraud": 0.0002,
    "customs.smuggling": 0.0003,
    "customs.undeclared_goods": 0.003,
    "environment.waste_sorting_violation": 0.025,
    "environment.open_burning": 0.002,
    "environment.tree_planting": 0.03,
    "education.exam_cheating": 0.001,
    "education.academic_fraud": 0.0002,
}
DEFAULT_RATE = 0.002
"""Records per resident per year for a type that ``RATES`` does not name."""
DEFAULT_RESOLVE_SHARE = 0.5
"""Share of resolvable records resolved, for a resolving type that ``RATES`` does not name."""
RESOLVE_DELAY: dict[str, int] = {
    "court": 120, "tax": 60, "market-regulator": 150, "traffic-police": 30, "transit": 7,
    "labour": 60, "housing": 45,
}
"""Mean days from a record to the record that resolves it, by agency (default 60)."""

FORMATS: dict[str, str] = {
    "traffic-police": "parquet", "transit": "parquet", "volunteer-registry": "parquet",
    "blood-centre": "jsonl", "civil-affairs": "jsonl",
}
"""Feed format by agency; every other feed (population and telecom too) is CSV."""
PHONE_SHARE: dict[str, float] = {"transit": 0.5}
"""Share of an agency's records keyed by the phone number held at ``occurred_at``."""
DATETIME_AGENCIES = frozenset({"traffic-police", "transit"})
"""Agencies whose ``occurred_at`` carries a time of day."""
MAX_AGE: dict[str, int] = {"blood-centre": 60}
"""Agencies whose records only happen below an age (blood donors are 18-60)."""
CIVIC_SHARE = 0.12
"""Share of residents who do most of the volunteering, donating and giving."""
RECYCLED_SHARE = 0.06
SECOND_PHONE_SHARE = 0.12

DIRTY_KINDS: tuple[str, ...] = (
    "bad_check_char", "bad_birth_date", "bad_id_length", "bad_phone", "unknown_resident",
    "unresolved_phone", "unknown_type", "foreign_type", "impossible_date", "future_date",
    "date_before_1900", "missing_resolves", "attributes_not_object", "attributes_too_big",
    "empty_record_id", "long_record_id", "conflicting_duplicate", "identical_duplicate",
)
"""Malformed record rows, one kind after another; every one must be rejected by ingest
(the identical duplicate is counted as a duplicate, not stored twice)."""
POPULATION_DIRTY = ("bad_check_char", "bad_birth_date", "bad_id_length", "impossible_date")
TELECOM_DIRTY = ("bad_phone", "bad_check_char", "bad_id_length", "impossible_date")

_PHONE_BASE = 13_000_000_000
_PHONE_SPAN = 6_000_000_000  # numbers 130..189 xxxx xxxx
_PHONE_MULT = 2_654_435_761  # coprime to the span: index -> number is a bijection
_PHONE_ADD = 1_234_567_891
_UNKNOWN_REGION = 310101  # Shanghai: a valid ID that is never a resident of this city
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"

_ROADS = ("长安街", "二环路", "三环路", "四环路", "五环路", "京藏高速", "京承高速", "京港澳高速",
          "建国路", "学院路", "中关村大街", "朝阳北路", "西直门外大街", "南苑路")
_LINES = ("Line 1", "Line 2", "Line 4", "Line 5", "Line 6", "Line 8", "Line 10", "Line 13",
          "Line 14", "Line 15", "Batong", "Changping", "Daxing Airport Express")
_STATIONS = ("西直门", "国贸", "东直门", "海淀黄庄", "天通苑", "回龙观", "宋家庄", "北京南站",
             "望京", "六里桥", "苹果园", "四惠")
_SITES = ("故宫", "八达岭长城", "颐和园", "天坛", "圆明园", "慕田峪长城", "北海公园", "景山公园")
_BLOOD_SITES = ("西单献血屋", "王府井献血车", "中关村献血屋", "望京献血屋", "北京市红十字血液中心")
_ORGS = ("社区志愿服务队", "北京志愿者联合会", "蓝天救援队", "图书馆志愿者", "交通文明志愿者")
_PORTS = ("首都国际机场", "大兴国际机场", "北京西站", "北京丰台站")
_EXAMS = ("高考", "研究生考试", "公务员考试", "英语四六级", "职业资格考试")

# Attribute fields by agency: (key, kind, argument). Kinds: int (lo, hi), pick (choices),
# case (court enforcement case number), penalty (market-regulator penalty decision), plate.
_ATTRS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "court": (("case", "case", None), ("amount", "int", (1000, 500_000))),
    "tax": (("amount", "int", (500, 200_000)), ("office", "pick", tuple(d[1] for d in DISTRICTS))),
    "market-regulator": (("case", "penalty", None), ("fine", "int", (2000, 100_000))),
    "traffic-police": (("road", "pick", _ROADS), ("plate", "plate", None), ("fine", "int", (50, 2000))),
    "transit": (("line", "pick", _LINES), ("station", "pick", _STATIONS), ("fare", "int", (3, 10))),
    "tourism": (("site", "pick", _SITES),),
    "blood-centre": (("ml", "pick", ("200", "300", "400")), ("site", "pick", _BLOOD_SITES)),
    "volunteer-registry": (("hours", "int", (1, 8)), ("org", "pick", _ORGS)),
    "civil-affairs": (("amount", "int", (50, 20_000)),),
    "labour": (("amount", "int", (5000, 800_000)), ("workers", "int", (1, 60))),
    "housing": (("amount", "int", (1000, 60_000)),),
    "customs": (("port", "pick", _PORTS), ("value", "int", (1000, 300_000))),
    "environment": (("district", "pick", tuple(d[1] for d in DISTRICTS)), ("fine", "int", (50, 1000))),
    "education": (("exam", "pick", _EXAMS),),
}
_DEFAULT_ATTRS: tuple[tuple[str, str, Any], ...] = (("ref", "int", (100_000, 999_999)),)
_NUMERIC_PICKS = frozenset({"ml"})


# ---------------------------------------------------------------------------------------------
# small vectorised helpers


def _day(d: date) -> int:
    return (d - EPOCH).days


def _mix(x: U64) -> U64:
    """splitmix64: a per-row hash, so a row's attributes depend on its position only."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _between(h: U64, lo: int, hi: int) -> I64:
    """Hash values mapped onto lo..hi inclusive."""
    return (h % np.uint64(hi - lo + 1)).astype(np.int64) + lo


def _uniform_days(rng: np.random.Generator, lo: I64, hi: I64) -> I64:
    """One day uniformly in lo..hi (inclusive) per row; callers guarantee lo <= hi."""
    return lo + np.floor(rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def _dates(days: I64) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.date32()).cast(pa.string())


def _datetimes(seconds: I64) -> pa.Array:
    # a cast prints "YYYY-MM-DD HH:MM:SS" twenty times faster than strftime; ISO 8601 wants the T
    text = pa.array(seconds, pa.timestamp("s")).cast(pa.string())
    return pc.replace_substring(text, " ", "T", max_replacements=1)


def _text(values: I64) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.string())


def _pad(values: I64, width: int) -> pa.Array:
    return pc.utf8_lpad(_text(values), width=width, padding="0")


def _join(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _repeat(value: str, n: int) -> pa.Array:
    return pc.fill_null(pa.nulls(n, pa.string()), value)


def _phone_number(index: I64) -> I64:
    return _PHONE_BASE + (index * _PHONE_MULT + _PHONE_ADD) % _PHONE_SPAN


def _sample(rng: np.random.Generator, cdf: F64, n: int) -> I64:
    """n indices drawn with probability proportional to the weights behind ``cdf``."""
    if not len(cdf) or cdf[-1] <= 0:
        return rng.integers(0, max(len(cdf), 1), n) if len(cdf) else np.empty(0, np.int64)
    # sorted keys let the binary search reuse its last bound: far fewer cache misses on a big city
    picked: I64 = np.searchsorted(cdf, np.sort(rng.random(n)) * cdf[-1], side="right").astype(np.int64)
    return picked


def _ymd(days: I64) -> tuple[I64, I64, I64]:
    dt = days.astype("datetime64[D]")
    months = dt.astype("datetime64[M]")
    year = dt.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (dt - months).astype(np.int64) + 1
    return year, month, day


def _years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


# ---------------------------------------------------------------------------------------------
# the residents and their phones


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


# ---------------------------------------------------------------------------------------------
# records of one agency, as numbers


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


# ---------------------------------------------------------------------------------------------
# malformed rows


def _ids_with_check(keys: I64, wrong: bool, rng: np.random.Generator) -> pa.Array:
    ids = resident_ids_from_keys(keys).cast(pa.string())
    if not wrong:
        return ids
    other = (_check_index(keys) + rng.integers(1, 11, len(keys))) % 11  # any of the ten other characters
    return _join(pc.utf8_slice_codeunits(ids, 0, 17), pc.take(pa.array(list(_CHECK)), pa.array(other)))


def _check_index(keys: I64) -> I64:
    """Index into ``_CHECK`` of the check character of each key (ISO 7064 MOD 11-2)."""
    rest = keys.copy()
    total = np.zeros(len(keys), np.int64)
    for w in reversed(_WEIGHTS):
        total += rest % 10 * w
        rest //= 10
    return total % 11


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


# ---------------------------------------------------------------------------------------------
# writing


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


def _population(c: _City, out: Path, share: float, seed: int, progress: Progress | None) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 4])
    surname_w = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8
    surname = rng.choice(len(SURNAMES), size=c.n, p=surname_w / surname_w.sum())
    given = rng.integers(0, len(GIVEN), c.n)
    codes = pa.array([d[0] for d in DISTRICTS], pa.string())
    statuses = pa.array([None, "deceased", "moved_out"], pa.string())
    status_dates = pc.if_else(pa.array(c.status > 0), _dates(np.maximum(c.status_day, 0)),
                              pa.scalar(None, pa.string()))
    names = _join(pc.take(pa.array(SURNAMES), pa.array(surname)), " ",
                  pc.take(pa.array(GIVEN), pa.array(given)))

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


# ---------------------------------------------------------------------------------------------
# the entry point


def synth_city(
    residents: int,
    out: Path,
    *,
    seed: int = 1,
    years: int = 5,
    dirty: float = 0.0,
    policy_file: Path | None = None,
    today: date | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Write a synthetic city into ``out``: ``population``, ``telecom`` and one feed per agency of
    the policy. Returns ``{agency: {"file", "rows", "dirty"}}`` (rows include the dirty ones)."""
    if residents < 1:
        raise ValueError("residents must be at least 1")
    if years < 1:
        raise ValueError("years must be at least 1")
    if not 0.0 <= dirty <= 1.0:
        raise ValueError("dirty must be a share between 0 and 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    today = today or date.today()
    doc = yaml.safe_load(Path(policy_file or DEFAULT_POLICY).read_text(encoding="utf-8"))
    types: dict[str, Any] = doc["record_types"]
    agencies = sorted({str(t["agency"]) for t in types.values()} - {"population", "telecom"})

    city = _make_city(residents, seed, years, today)
    summary: dict[str, Any] = {
        "population": _population(city, out, dirty, seed, progress),
        "telecom": _telecom(city, out, dirty, seed, progress),
    }
    for salt, agency in enumerate(agencies, start=1):
        codes = sorted(code for code, t in types.items() if t["agency"] == agency)
        others = sorted(code for code, t in types.items() if t["agency"] != agency)
        recs = _generate(city, agency, codes, types, seed, salt, years)
        bad, before = _dirty_records(city, recs, others, dirty, seed)
        path = _file(out, agency)
        total = _write_chunks(path, RECORD_COLUMNS, recs.n, partial(_materialise, city, recs),
                              bad, before, agency, progress)
        summary[agency] = {"file": path.name, "rows": total, "dirty": bad.num_rows}
        del recs, bad
    return summary
