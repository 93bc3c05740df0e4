"""Resident IDs and phones (spec §2), one scalar path and one vectorised path with identical rules.

The scalar functions serve the API and single lookups; the vectorised ones (``credo.idvectors``) serve
ingest of millions of rows.
Both apply the same checks in the same precedence (length, format, province, date, future, check), so a row that
ingest rejects gets the same reason when a person re-enters it by hand.  A resident is stored everywhere
as an int64 key of the first 17 digits: the check character is derivable, so storing it would only add a
way for copies to disagree.

A first-generation 15-digit ID (6-digit region, ``YYMMDD``, 3-digit sequence; all were issued to people
born in the 1900s) is accepted wherever an ID is: it is widened to the 18-digit ID it became (century 19,
check character computed) and checked as that ID, so it names the same resident (spec §10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

BAD_LENGTH = "id_length"
BAD_FORMAT = "id_format"
BAD_PROVINCE = "id_province"
BAD_DATE = "id_date"
FUTURE_DATE = "id_future"
BAD_CHECK = "id_check"
BAD_PHONE = "bad_phone"
LEGACY_FORMAT = "a 15-character ID is a first-generation one and must be 15 digits"

PROVINCES = frozenset({11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
                       50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82})
"""The first two digits of a GB/T 2260 region code: the provinces, autonomous regions and
municipalities, Taiwan (71), Hong Kong (81) and Macao (82). 91 ("abroad" in some older lists) is not
in GB/T 2260 and no GB 11643 ID carries it, so it is refused."""
MOBILE_SECOND = "3456789"
"""The second digit of a mainland mobile number: 10x, 11x and 12x are never mobile (service,
emergency and other numbers)."""
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_CHECK_BYTES = np.frombuffer(CHECK_CHARS.encode(), dtype=np.uint8)
_DIGITS = frozenset("0123456789")  # not str.isdigit(), which accepts full-width and Arabic-Indic digits
# An explicit set rather than str.strip()'s notion of whitespace, so Python and Arrow trim exactly alike.
_WS = " \t\n\r\x0b\x0c\u00a0\u3000\ufeff"
_KEY_LIMIT = 10**17
_RID = "resident_id"



class IdError(ValueError):
    """Names the field and a stable reason code, so ingest can count rejections and people can fix them."""

    def __init__(self, field: str, reason: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[IdError], tuple[str, str, str]]:
        return (IdError, (self.field, self.reason, self.detail))


def _is_digits(s: str) -> bool:
    return all(c in _DIGITS for c in s)


def check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2; raises rather than guessing when handed anything but 17 ASCII digits."""
    if len(first17) != 17 or not _is_digits(first17):
        raise IdError(_RID, BAD_FORMAT, "check character needs exactly 17 digits")
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def _chunk_sums(weights: tuple[int, ...]) -> list[int]:
    """For every number of ``len(weights)`` digits (zero-padded): its digits weighted, summed, mod 11."""
    numbers = np.arange(10 ** len(weights), dtype=np.int64)
    total = sum(((numbers // 10 ** (len(weights) - 1 - i)) % 10) * w for i, w in enumerate(weights))
    return list((np.asarray(total) % 11).tolist())


_SUMS = (_chunk_sums(_WEIGHTS[:4]), _chunk_sums(_WEIGHTS[4:8]), _chunk_sums(_WEIGHTS[8:12]),
         _chunk_sums(_WEIGHTS[12:]))


def check_char_of_key(key: int) -> str:
    """The check character of the ID whose first 17 digits are ``key``: four lookups in tables of
    the digits' weighted sums, where summing digit by digit costs several times more (a decision
    checks one for every ID it is asked about)."""
    rest, low = divmod(key, 100_000)
    rest, c = divmod(rest, 10_000)
    a, b = divmod(rest, 10_000)
    first, second, third, fourth = _SUMS
    return CHECK_CHARS[(first[a] + second[b] + third[c] + fourth[low]) % 11]


def widen_legacy_id(first15: str) -> str:
    """The 18-digit ID a first-generation 15-digit ID became: ``19`` put before its ``YYMMDD`` and the
    check character computed. Only the shape is checked here; the date and province are judged by
    ``normalise_resident_id`` on the widened ID, with the same reasons as for any other."""
    if len(first15) != 15 or not _is_digits(first15):
        raise IdError(_RID, BAD_FORMAT, LEGACY_FORMAT)
    first17 = f"{first15[:6]}19{first15[6:]}"
    return first17 + check_char(first17)


def normalise_resident_id(value: str, today: date | None = None) -> str:
    """The canonical form of an ID, or an ``IdError`` naming the first problem. A 15-character ID is
    a first-generation one: 15 digits, widened by ``widen_legacy_id`` and then checked like any other.

    ``today`` is the city's date on the one clock (``credo.settings.now(policy.tz).date()``, which
    ``CREDO_NOW`` fixes): a birth date after it is in the future. This module never reads a clock of
    its own, since the process's date differs from the city's for hours every day. Without ``today``
    the future is not judged: for an ID only compared with a known one, or keyed after a caller
    judged it on the city's date."""
    s = value.strip(_WS)
    if len(s) == 15:
        s = widen_legacy_id(s)
    if len(s) != 18:
        raise IdError(_RID, BAD_LENGTH, f"must be 18 characters, got {len(s)} (or 15 digits: a first-generation ID)")
    if s[17] == "x":
        s = s[:17] + "X"
    if not _is_digits(s[:17]) or not (s[17] == "X" or s[17] in _DIGITS):
        raise IdError(_RID, BAD_FORMAT, "must be 17 digits followed by a digit or X")
    if int(s[:2]) not in PROVINCES:
        raise IdError(_RID, BAD_PROVINCE, f"{s[:2]} is not a province code of GB/T 2260")
    ymd = s[6:14]
    try:
        born = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        raise IdError(_RID, BAD_DATE, f"{ymd} is not a calendar date") from None
    if born.year < 1900:
        raise IdError(_RID, BAD_DATE, f"birth date {ymd} is before 1900-01-01")
    if today is not None and born > today:
        raise IdError(_RID, FUTURE_DATE, f"birth date {ymd} is in the future")
    expected = check_char(s[:17])
    if s[17] != expected:
        raise IdError(_RID, BAD_CHECK, f"check character should be {expected}, got {s[17]}")
    return s


def resident_key(resident_id: str) -> int:
    """Validates first (all but the future, see ``normalise_resident_id``), so a key can only ever
    come from a well-formed ID."""
    return int(normalise_resident_id(resident_id)[:17])


def resident_id_from_key(key: int) -> str:
    if not 0 <= key < _KEY_LIMIT:
        raise ValueError(f"resident key out of range: {key}")
    first17 = f"{key:017d}"
    return first17 + check_char(first17)


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A resident ID as the fronts hand it down to the service: made by ``parse_resident_id`` at the
    edge (or ``of_key`` from a key the store holds), so whatever holds one holds a well-formed ID in
    canonical form and nothing below the edge parses it again. ``text`` is the 18 characters."""

    text: str

    def __str__(self) -> str:
        return self.text

    @classmethod
    def of_key(cls, key: int) -> ResidentId:
        return cls(resident_id_from_key(key))

    @property
    def key(self) -> int:
        """The int64 the store keys the resident by (the first 17 digits)."""
        return int(self.text[:17])

    def born_by(self, today: date) -> ResidentId:
        """Itself, if its birth date is not after the city's ``today``: the one check of
        ``normalise_resident_id`` that a parse without the city's clock leaves to the service."""
        ymd = self.text[6:14]
        if date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:])) > today:
            raise IdError(_RID, FUTURE_DATE, f"birth date {ymd} is in the future")
        return self


def parse_resident_id(value: str, today: date | None = None) -> ResidentId:
    """The one parse of a resident ID given at an edge (a CLI argument, an API path, query or body,
    a web form): every check of ``normalise_resident_id``, the same ``IdError`` for a bad one."""
    return ResidentId(normalise_resident_id(value, today))


def resident_principal(key: int) -> str:
    """The name of a resident's principal (their tokens and sessions): by the 18-character ID."""
    return f"resident:{resident_id_from_key(key)}"


_KEY_NAMED = re.compile(r"resident:([0-9]{17})")
"""A resident principal named by the 17-digit key, as resident tokens were named before."""


def named_by_id(row: dict[str, Any]) -> dict[str, Any]:
    """An output row (an audit entry) with residents named by their 18-character ID: its ``resident``
    key, and a ``principal`` named by a key; the stored row (and so its hash) is left as it is. A value
    that is no resident key (only an edited log holds one) is shown as stored: an export never fails."""
    out = dict(row)
    if isinstance(out.get("resident"), int) and 0 <= out["resident"] < _KEY_LIMIT:
        out["resident"] = resident_id_from_key(out["resident"])
    found = _KEY_NAMED.fullmatch(out["principal"]) if isinstance(out.get("principal"), str) else None
    if found:
        out["principal"] = resident_principal(int(found.group(1)))
    return out


def birth_date(resident_id: str) -> date:
    s = normalise_resident_id(resident_id)
    return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))


def sex(resident_id: str) -> str:
    return key_sex(resident_key(resident_id))


def region(resident_id: str) -> str:
    return normalise_resident_id(resident_id)[:6]


def key_region(key: int) -> int:
    return key // 10**11


def key_birth(key: int) -> int:
    return key // 1000 % 10**8


def key_sex(key: int) -> str:
    return "male" if key % 2 else "female"


def make_resident_id(region: str, birth: date, seq: int) -> str:
    """For synthetic data and tests: builds the one valid ID for these parts."""
    if len(region) != 6 or not _is_digits(region) or int(region[:2]) not in PROVINCES:
        raise ValueError(f"region must be 6 digits starting with a province code, got {region!r}")
    if not 0 <= seq <= 999:
        raise ValueError(f"sequence must be 0..999, got {seq}")
    first17 = f"{region}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq:03d}"
    return first17 + check_char(first17)


def normalise_phone(value: str) -> str:
    s = value.strip(_WS)
    if len(s) != 11 or not _is_digits(s) or s[0] != "1":
        raise IdError("phone", BAD_PHONE, "must be 11 digits starting with 1")
    if s[1] not in MOBILE_SECOND:
        raise IdError("phone", BAD_PHONE, f"{s[:2]}x is never a mobile number (those start 13 to 19)")
    return s


def check_indices(keys: npt.NDArray[np.int64], spelt: npt.NDArray[np.uint8] | None = None) -> npt.NDArray[np.int64]:
    """Per key (an ID's first 17 digits), the index into ``CHECK_CHARS`` of its check character
    (ISO 7064 MOD 11-2), vectorised: the one place the weighted sum is computed over many keys. When
    ``spelt`` (an (n, 18) byte matrix) is given, the key's digits are written into its first 17 columns
    as ASCII on the way, so that spelling IDs out costs one pass over the digits, not two."""
    rest = keys.copy()
    weighted = np.zeros(len(rest), dtype=np.int64)
    for j in range(16, -1, -1):
        digit = rest % 10
        rest //= 10
        if spelt is not None:
            spelt[:, j] = digit + 48
        weighted += digit * _WEIGHTS[j]
    out: npt.NDArray[np.int64] = weighted % 11
    return out


def resident_ids_from_keys(keys: pa.Array | pa.ChunkedArray | npt.NDArray[np.integer]) -> pa.Array:
    """Keys back to 18-character IDs for output; nulls stay null."""
    valid: pa.Array | None = None
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if isinstance(keys, pa.Array):
        valid = keys.is_valid() if keys.null_count else None
        rest = pc.fill_null(keys, 0).cast(pa.int64()).to_numpy().copy()
    else:
        rest = np.asarray(keys, dtype=np.int64).copy()
    if ((rest < 0) | (rest >= _KEY_LIMIT)).any():
        raise ValueError("resident keys must be in 0 .. 10**17 - 1")
    n = len(rest)
    mat = np.empty((n, 18), dtype=np.uint8)
    mat[:, 17] = _CHECK_BYTES[check_indices(rest, mat)]
    large = n * 18 >= 2**31
    offsets = np.arange(n + 1, dtype=np.int64 if large else np.int32) * 18
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(mat)]
    out = pa.Array.from_buffers(pa.large_string() if large else pa.string(), n, buffers)
    return out if valid is None else pc.if_else(valid, out, pa.scalar(None, out.type))
