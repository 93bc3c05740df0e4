"""Resident ID and phone rules (spec §2): scalar cases, and the vectorised path agreeing with the scalar."""

from __future__ import annotations

import pickle
import time
from datetime import date

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credo import ids, idvectors
from credo.text import unsafe_detail, unsafe_text

TODAY = date(2024, 6, 15)
FMT = "resident_id: must be 17 digits followed by a digit or X"
OLD = "resident_id: birth date {} is before 1900-01-01"
LEN = "resident_id: must be 18 characters, got {} (or 15 digits: a first-generation ID)"
LEGACY = "resident_id: " + ids.LEGACY_FORMAT

# (input, today, normalised ID or None, reason code or None, message or None)
CASES: list[tuple[str, date, str | None, str | None, str | None]] = [
    # GB 11643-1999's own examples
    ("11010519491231002X", TODAY, "11010519491231002X", None, None),
    ("440524188001010014", TODAY, None, ids.BAD_DATE, OLD.format(18800101)),
    # lowercase x and surrounding whitespace are normalised
    ("11010519491231002x", TODAY, "11010519491231002X", None, None),
    ("  11010519491231002x\t\n", TODAY, "11010519491231002X", None, None),
    ("\u300011010519491231002X\u00a0", TODAY, "11010519491231002X", None, None),
    ("110105194912310021", TODAY, None, ids.BAD_CHECK, "resident_id: check character should be X, got 1"),
    ("110105198702281237", TODAY, None, ids.BAD_CHECK, "resident_id: check character should be 0, got 7"),
    ("11010519870228123X", TODAY, None, ids.BAD_CHECK, "resident_id: check character should be 0, got X"),
    ("11010519870228123", TODAY, None, ids.BAD_LENGTH, LEN.format(17)),
    ("1101051987022812300", TODAY, None, ids.BAD_LENGTH, LEN.format(19)),
    ("", TODAY, None, ids.BAD_LENGTH, LEN.format(0)),
    ("   ", TODAY, None, ids.BAD_LENGTH, LEN.format(0)),
    ("11010 519870228123", TODAY, None, ids.BAD_FORMAT, FMT),
    ("11010519870228123Y", TODAY, None, ids.BAD_FORMAT, FMT),
    ("X10105198702281230", TODAY, None, ids.BAD_FORMAT, FMT),
    ("１10105198702281230", TODAY, None, ids.BAD_FORMAT, FMT),
    ("٣10105198702281230", TODAY, None, ids.BAD_FORMAT, FMT),
    ("110105198702301237", TODAY, None, ids.BAD_DATE, "resident_id: 19870230 is not a calendar date"),
    ("110105190002291230", TODAY, None, ids.BAD_DATE, "resident_id: 19000229 is not a calendar date"),
    ("110105198713011230", TODAY, None, ids.BAD_DATE, "resident_id: 19871301 is not a calendar date"),
    ("110105198701001230", TODAY, None, ids.BAD_DATE, "resident_id: 19870100 is not a calendar date"),
    ("110105189912311230", TODAY, None, ids.BAD_DATE, OLD.format(18991231)),
    ("110105209901011234", TODAY, None, ids.FUTURE_DATE, "resident_id: birth date 20990101 is in the future"),
    ("110105202406161234", TODAY, None, ids.FUTURE_DATE, "resident_id: birth date 20240616 is in the future"),
    # precedence: a bad length beats a bad format, a bad format beats a bad date, a bad date beats a bad check
    ("1101051987023012", TODAY, None, ids.BAD_LENGTH, LEN.format(16)),
    ("11010519870230123Y", TODAY, None, ids.BAD_FORMAT, FMT),
    ("110105198702301230", TODAY, None, ids.BAD_DATE, "resident_id: 19870230 is not a calendar date"),
    ("110105209901011230", TODAY, None, ids.FUTURE_DATE, "resident_id: birth date 20990101 is in the future"),
    # the province (GB/T 2260): not one of its first two digits is refused; a bad format beats it, it
    # beats a bad date and a bad check character
    ("91010519491231002X", TODAY, None, ids.BAD_PROVINCE, "resident_id: 91 is not a province code of GB/T 2260"),
    ("000000198702281230", TODAY, None, ids.BAD_PROVINCE, "resident_id: 00 is not a province code of GB/T 2260"),
    ("240105198702281230", TODAY, None, ids.BAD_PROVINCE, "resident_id: 24 is not a province code of GB/T 2260"),
    ("99010519870228123Y", TODAY, None, ids.BAD_FORMAT, FMT),
    ("990105198702301230", TODAY, None, ids.BAD_PROVINCE, "resident_id: 99 is not a province code of GB/T 2260"),
    # first-generation 15-digit IDs (spec §10): widened to 18 (century 19, check character computed) and
    # then judged as that ID; a 15-character value that is not 15 digits is a bad format
    ("110105491231002", TODAY, "11010519491231002X", None, None),
    (" 110105870228123\t", TODAY, "110105198702281230", None, None),
    ("440524000101001", TODAY, "440524190001010017", None, None),
    ("110105870230123", TODAY, None, ids.BAD_DATE, "resident_id: 19870230 is not a calendar date"),
    ("110105001301123", TODAY, None, ids.BAD_DATE, "resident_id: 19001301 is not a calendar date"),
    ("110105000229123", TODAY, None, ids.BAD_DATE, "resident_id: 19000229 is not a calendar date"),
    ("910105870228123", TODAY, None, ids.BAD_PROVINCE, "resident_id: 91 is not a province code of GB/T 2260"),
    ("11010587022812X", TODAY, None, ids.BAD_FORMAT, LEGACY),
    ("11010587022812x", TODAY, None, ids.BAD_FORMAT, LEGACY),
    ("1101058702281 3", TODAY, None, ids.BAD_FORMAT, LEGACY),
    ("１10105870228123", TODAY, None, ids.BAD_FORMAT, LEGACY),
    ("11010587022812", TODAY, None, ids.BAD_LENGTH, LEN.format(14)),
    ("1101058702281234", TODAY, None, ids.BAD_LENGTH, LEN.format(16)),
]
# Valid ones derived from known parts: leap day, earliest date, today itself.
for _region, _birth, _seq in [("110105", date(2000, 2, 29), 1), ("650000", date(1900, 1, 1), 0),
                              ("820000", TODAY, 999), ("710101", TODAY, 998)]:
    _id = ids.make_resident_id(_region, _birth, _seq)
    CASES.append((_id, TODAY, _id, None, None))


def _vector(values: list[str | None], today: date = TODAY) -> list[tuple[int | None, str | None]]:
    keys, reasons = idvectors.check_resident_ids(pa.array(values, type=pa.string()), today)
    return list(zip(keys.to_pylist(), reasons.to_pylist(), strict=True))


def _scalar(value: str, today: date = TODAY) -> tuple[int | None, str | None]:
    try:
        return int(ids.normalise_resident_id(value, today)[:17]), None
    except ids.IdError as e:
        assert e.field == "resident_id"
        return None, e.reason


@pytest.mark.parametrize(("value", "today", "normal", "reason", "message"), CASES)
def test_resident_id_cases(
    value: str, today: date, normal: str | None, reason: str | None, message: str | None
) -> None:
    if normal is not None:
        assert ids.normalise_resident_id(value, today) == normal
        expected: tuple[int | None, str | None] = (int(normal[:17]), None)
    else:
        with pytest.raises(ids.IdError) as info:
            ids.normalise_resident_id(value, today)
        assert (info.value.field, info.value.reason, str(info.value)) == ("resident_id", reason, message)
        expected = (None, reason)
    assert _vector([value], today) == [expected]
    assert _vector([value.encode().decode()], today) == [expected]
    large = idvectors.check_resident_ids(pa.chunked_array([[value]], type=pa.large_string()), today)
    assert (large[0][0].as_py(), large[1][0].as_py()) == expected


def test_accessors_on_standard_example() -> None:
    rid = "11010519491231002x"
    assert ids.resident_key(rid) == 11010519491231002
    assert ids.resident_id_from_key(11010519491231002) == "11010519491231002X"
    assert ids.check_char("11010519491231002") == "X"
    assert ids.birth_date(rid) == date(1949, 12, 31)
    assert ids.sex(rid) == "female"
    assert ids.sex("110105198702281230") == "male"
    assert ids.region(rid) == "110105"
    key = ids.resident_key(rid)
    assert (ids.key_region(key), ids.key_birth(key), ids.key_sex(key)) == (110105, 19491231, "female")
    assert ids.resident_id_from_key(12345) == "00000000000012345" + ids.check_char("00000000000012345")
    with pytest.raises(ValueError):
        ids.resident_id_from_key(10**17)
    with pytest.raises(ids.IdError) as info:
        ids.resident_key("110105194912310021")
    assert info.value.reason == ids.BAD_CHECK
    with pytest.raises(ids.IdError):
        ids.check_char("1101051949123100")
    with pytest.raises(ValueError):
        ids.make_resident_id("11010", date(1990, 1, 1), 1)
    with pytest.raises(ValueError):
        ids.make_resident_id("110105", date(1990, 1, 1), 1000)
    with pytest.raises(ValueError):
        ids.make_resident_id("910105", date(1990, 1, 1), 1)


def test_error_is_value_error_and_pickles() -> None:
    err = ids.IdError("phone", ids.BAD_PHONE, "must be 11 digits starting with 1")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.field, again.reason, str(again)) == ("phone", ids.BAD_PHONE, str(err))


def test_vectorised_nulls_empty_and_keys_back() -> None:
    assert _vector([None, "11010519491231002X", None]) == [
        (None, ids.BAD_LENGTH), (11010519491231002, None), (None, ids.BAD_LENGTH)]
    keys, reasons = idvectors.check_resident_ids(pa.array([], type=pa.string()), TODAY)
    assert (len(keys), len(reasons), keys.type, reasons.type) == (0, 0, pa.int64(), pa.string())
    keys, reasons = idvectors.check_resident_ids(pa.array([None, None]), TODAY)
    assert reasons.to_pylist() == [ids.BAD_LENGTH, ids.BAD_LENGTH]
    sliced = pa.array(["x", "11010519491231002x", "110105194912310021", "y"])[1:3]
    assert _vector(sliced.to_pylist()) == [(11010519491231002, None), (None, ids.BAD_CHECK)]
    assert idvectors.check_resident_ids(sliced, TODAY)[1].to_pylist() == [None, ids.BAD_CHECK]
    back = ids.resident_ids_from_keys(pa.array([11010519491231002, None, 0]))
    assert back.to_pylist() == ["11010519491231002X", None, ids.resident_id_from_key(0)]
    assert ids.resident_ids_from_keys(np.array([11010519491231002])).to_pylist() == ["11010519491231002X"]
    assert ids.resident_ids_from_keys(np.array([], dtype=np.int64)).to_pylist() == []
    with pytest.raises(ValueError):
        ids.resident_ids_from_keys(np.array([-1]))


PHONE_FMT = "phone: must be 11 digits starting with 1"
# (input, normalised or None, message or None)
PHONES: list[tuple[str, str | None, str | None]] = [
    ("13800138000", "13800138000", None),
    (" 19912345678\n", "19912345678", None),
    ("23800138000", None, PHONE_FMT),
    ("1380013800", None, PHONE_FMT),
    ("138001380001", None, PHONE_FMT),
    ("1380013800a", None, PHONE_FMT),
    ("138 0013800", None, PHONE_FMT),
    ("１3800138000", None, PHONE_FMT),
    ("", None, PHONE_FMT),
    # 10x, 11x and 12x are never mobile numbers
    ("10086000000", None, "phone: 10x is never a mobile number (those start 13 to 19)"),
    ("11012345678", None, "phone: 11x is never a mobile number (those start 13 to 19)"),
    ("12345678901", None, "phone: 12x is never a mobile number (those start 13 to 19)"),
    ("1234567890a", None, PHONE_FMT),
]


@pytest.mark.parametrize(("value", "normal", "message"), PHONES)
def test_phone_cases(value: str, normal: str | None, message: str | None) -> None:
    if normal is None:
        with pytest.raises(ids.IdError) as info:
            ids.normalise_phone(value)
        assert (info.value.field, info.value.reason) == ("phone", ids.BAD_PHONE)
        assert str(info.value) == message
    else:
        assert ids.normalise_phone(value) == normal
    phones, reasons = idvectors.check_phones(pa.array([value, None]))
    assert phones.to_pylist() == [None if normal is None else int(normal), None]
    assert reasons.to_pylist() == [None if normal else ids.BAD_PHONE, ids.BAD_PHONE]


regions = st.builds(lambda p, rest: f"{p}{rest}", st.sampled_from(sorted(ids.PROVINCES)),
                    st.text("0123456789", min_size=4, max_size=4))
births = st.dates(date(1900, 1, 1), TODAY)
seqs = st.integers(0, 999)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(regions, births, seqs), min_size=1, max_size=20))
def test_valid_ids_round_trip(parts: list[tuple[str, date, int]]) -> None:
    made = [ids.make_resident_id(r, b, s) for r, b, s in parts]
    keys = [ids.resident_key(m) for m in made]
    for (r, b, s), m, k in zip(parts, made, keys, strict=True):
        assert ids.normalise_resident_id(m.lower(), TODAY) == m
        assert ids.resident_id_from_key(k) == m
        assert (ids.region(m), ids.birth_date(m), ids.sex(m)) == (r, b, "male" if s % 2 else "female")
        assert (ids.key_region(k), ids.key_birth(k), ids.key_sex(k)) == (
            int(r), b.year * 10000 + b.month * 100 + b.day, ids.sex(m))
    assert _vector([m.lower() for m in made]) == [(k, None) for k in keys]
    assert ids.resident_ids_from_keys(pa.array(keys)).to_pylist() == made


MUTANT_CHARS = "0123456789Xxa Z\t１é"


@st.composite
def mutants(draw: st.DrawFn) -> str:
    rid = ids.make_resident_id(draw(regions), draw(births), draw(seqs))
    pos = draw(st.integers(0, 17))
    kind = draw(st.sampled_from(["replace", "delete", "insert"]))
    char = draw(st.sampled_from(MUTANT_CHARS))
    if kind == "delete":
        return rid[:pos] + rid[pos + 1 :]
    if kind == "insert":
        return rid[:pos] + char + rid[pos:]
    return rid[:pos] + char + rid[pos + 1 :]


@settings(max_examples=300, deadline=None)
@given(st.lists(mutants(), min_size=1, max_size=30))
def test_mutations_agree(values: list[str]) -> None:
    assert _vector(list(values)) == [_scalar(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from("0123456789Xx \u3000a１"), max_size=20), max_size=30))
def test_arbitrary_text_agrees(values: list[str]) -> None:
    assert _vector(list(values)) == [_scalar(v) for v in values]


@st.composite
def legacy_mutants(draw: st.DrawFn) -> str:
    """A first-generation ID (born in the 1900s), kept, or with one character replaced, dropped or added."""
    rid = ids.make_resident_id(draw(regions), draw(st.dates(date(1900, 1, 1), date(1999, 12, 31))), draw(seqs))
    legacy = rid[:6] + rid[8:17]
    pos = draw(st.integers(0, 14))
    char = draw(st.sampled_from(MUTANT_CHARS))
    return draw(st.sampled_from([legacy, legacy[:pos] + char + legacy[pos + 1 :], legacy[:pos] + legacy[pos + 1 :],
                                 legacy[:pos] + char + legacy[pos:]]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(regions, st.dates(date(1900, 1, 1), date(1999, 12, 31)), seqs), min_size=1, max_size=20))
def test_legacy_ids_widen_to_the_id_they_became(parts: list[tuple[str, date, int]]) -> None:
    made = [ids.make_resident_id(r, b, s) for r, b, s in parts]
    legacy = [m[:6] + m[8:17] for m in made]
    assert [ids.normalise_resident_id(old, TODAY) for old in legacy] == made
    assert [str(ids.parse_resident_id(old)) for old in legacy] == made
    assert _vector(legacy) == [(int(m[:17]), None) for m in made]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(legacy_mutants(), mutants()), min_size=1, max_size=30))
def test_legacy_mutations_agree(values: list[str]) -> None:
    assert _vector(list(values)) == [_scalar(v) for v in values]


def _scalar_phone(value: str) -> tuple[int | None, str | None]:
    try:
        return int(ids.normalise_phone(value)), None
    except ids.IdError as e:
        return None, e.reason


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.sampled_from("0123456789 1a１"), max_size=14), max_size=30))
def test_phones_agree(values: list[str]) -> None:
    phones, reasons = idvectors.check_phones(pa.array(values, type=pa.string()))
    got = list(zip(phones.to_pylist(), reasons.to_pylist(), strict=True))
    assert got == [_scalar_phone(v) for v in values]


def test_200k_rows_vectorised_agrees_on_sample() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    days = rng.integers(date(1900, 1, 1).toordinal(), TODAY.toordinal() + 1, n)
    ymd = np.array([int(date.fromordinal(int(d)).strftime("%Y%m%d")) for d in np.unique(days)])
    born = ymd[np.searchsorted(np.unique(days), days)]
    region = rng.choice(sorted(ids.PROVINCES), n) * 10_000 + rng.integers(0, 10_000, n)
    keys = region * 10**11 + born * 1000 + rng.integers(0, 1000, n)
    valid = ids.resident_ids_from_keys(keys).to_pylist()
    values: list[str | None] = list(valid)
    for i in rng.choice(n, n // 10, replace=False):  # corrupt a tenth, one character each
        s = valid[i]
        pos = int(rng.integers(0, 18))
        values[i] = s[:pos] + "0123456789Xa"[int(rng.integers(0, 12))] + s[pos + 1 :]
    values[5] = None
    start = time.perf_counter()
    out_keys, reasons = idvectors.check_resident_ids(pa.array(values), TODAY)
    assert time.perf_counter() - start < 10
    assert len(out_keys) == n and reasons.null_count > n * 8 // 10
    got_keys, got_reasons = out_keys.to_pylist(), reasons.to_pylist()
    for i in [*rng.choice(n, 3000, replace=False), 5]:
        v = values[i]
        assert (got_keys[i], got_reasons[i]) == (_scalar(v) if v is not None else (None, ids.BAD_LENGTH))


@given(st.integers(min_value=0, max_value=10**17 - 1))
def test_the_check_character_of_a_key_is_the_digit_by_digit_one(key: int) -> None:
    """The decision path's table lookup (``check_char_of_key``) against the plain weighted sum."""
    assert ids.check_char_of_key(key) == ids.check_char(f"{key:017d}")


# (text, flagged): control, separator and bidirectional-formatting characters anywhere; names with a
# middle dot (its UTF-8 lead byte is one an unsafe character shares) and other scripts are fine
UNSAFE: list[tuple[str, bool]] = [
    ("c-2024-0001", False), ("欧阳·娜娜", False), ("Zoë", False), ("د", False), ("“quoted”", False),
    ("a\x00b", True), ("a\tb", True), ("a\x7f", True), ("\x9b[31m", True), ("\u061cx", True),
    ("x\u200e", True), ("x\u200f", True), ("\u202aab\u202c", True), ("ab\u202e", True), ("\u2028", True),
    ("\u2066x\u2069", True), ("\u2067", True), ("x\u202f", False),
]


@pytest.mark.parametrize(("text", "flagged"), UNSAFE)
def test_unsafe_characters(text: str, flagged: bool) -> None:
    assert unsafe_text(pa.array([text, None]))[0] == flagged
    assert unsafe_text(pa.array(["plain", text]).slice(1)).tolist() == [flagged]
    if flagged:
        assert "\\u" in unsafe_detail(text) and not any(c in unsafe_detail(text) for c in text if
                                                              unsafe_text(pa.array([c]))[0])


@given(st.lists(st.integers(0, 10**17 - 1), min_size=1, max_size=50))
def test_vectorised_check_character_agrees(keys: list[int]) -> None:
    """synth's wrong check characters and resident_ids_from_keys take the check from check_indices:
    it must name the check character the scalar rule gives, for every key."""
    got = [ids.CHECK_CHARS[i] for i in ids.check_indices(np.array(keys, np.int64))]
    assert got == [ids.check_char_of_key(k) for k in keys]
