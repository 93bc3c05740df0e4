"""Small vectorised helpers of the synthetic city: per-row hashing, uniform days, dates and numbers
as text, weighted sampling. Numbers first, text only when a chunk is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from credo.synth.rates import _PHONE_ADD, _PHONE_BASE, _PHONE_MULT, _PHONE_SPAN, EPOCH

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Progress = Callable[[str, int], None]


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

