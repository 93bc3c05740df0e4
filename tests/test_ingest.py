"""Ingest (spec §2, §3): every reject reason, duplicate vs conflict, phone recycling, resolves, revoke.

Each reject case is one CSV feed: a good row on line 2 and the row under test on the last line, so the
test also holds the reason's line number, its field and that the message names the problem.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credo import ids, ingest
from credo.errors import Conflict, Forbidden, NotFound
from credo.ids import parse_resident_id
from credo.principals import Principal
from credo.service import Credo
from credo.text import UNSAFE_TEXT
from tests.fixtures.ingest_city import (
    LI,
    LI_PHONE,
    POPULATION_HEADER,
    RECORD_HEADER,
    RECYCLED,
    STRANGER,
    TELECOM_HEADER,
    WANG,
    ZHAO,
    ledger_rows,
    write_csv,
)

GOOD = ("ok1", "tax.arrears", LI, "2024-08-01", "", "")
NEWBORN = ids.make_resident_id("110108", date(2001, 5, 5), 555)
FUTURE_BORN = ids.make_resident_id("110105", date(2030, 1, 1), 123)
BAD_CHECK = LI[:17] + ("0" if LI[17] != "0" else "1")


def in_province(resident_id: str, province: str) -> str:
    """The ID with other province digits and a check character that fits them."""
    first17 = province + resident_id[2:17]
    return first17 + ids.check_char(first17)


def rec(record_id: str = "r1", type_: str = "tax.arrears", subject: str = LI, occurred_at: str = "2024-08-01",
        resolves: str = "", attributes: str = "") -> tuple[str, ...]:
    return (record_id, type_, subject, occurred_at, resolves, attributes)


def person(resident_id: str = STRANGER, name: str = "S", district: str = "110101", status: str = "",
           status_date: str = "") -> tuple[str, ...]:
    return (resident_id, name, district, status, status_date)


def link(phone: str = "13700000001", resident_id: str = WANG, valid_from: str = "2024-01-01",
         valid_to: str = "") -> tuple[str, ...]:
    return (phone, resident_id, valid_from, valid_to)


def drec(record_id: str = "d1", subject: str = "", name: str = "Li Wei", born: str = "1987-06-12",
         district: str = "110112", resolves: str = "") -> tuple[str, ...]:
    """A row about a described person (spec §10), in the feed with the description columns."""
    return (record_id, "tax.arrears", subject, "2024-08-01", resolves, "", name, born, district)


DESCRIBED_HEADER = (*RECORD_HEADER, "subject_name", "subject_birth_date", "subject_district")
DGOOD = (*GOOD, "", "", "")
NEW = person(NEWBORN, "New", "110108")  # a good population row
LINK = link("13700000000", LI)  # a good telecom row

# (case id, agency, rows after the header (the last one is under test), reason, field, words of the message)
CASES: list[tuple[str, str, list[tuple[str, ...]], str, str, str]] = [
    ("malformed", "tax", [GOOD, ("r1", "tax.arrears", LI, "2024-08-01", "")], "malformed_row", "(row)",
     "expected 6 fields, found 5"),
    ("no record_id", "tax", [GOOD, rec(record_id="  ")], "missing_record_id", "record_id", "is required"),
    ("long record_id", "tax", [GOOD, rec(record_id="x" * 65)], "record_id_too_long", "record_id",
     "1 to 64 characters"),
    ("record_id with a bidi override", "tax", [GOOD, rec(record_id="r1\u202e2")], UNSAFE_TEXT, "record_id",
     "holds U+202E (RIGHT-TO-LEFT OVERRIDE, a bidirectional-formatting character) at character 3 "
     "(value 'r1\\u202e2')"),
    ("record_id with a control character", "tax", [GOOD, rec(record_id="r\x071")], UNSAFE_TEXT,
     "record_id", "U+0007 (a control character)"),
    ("resolves with an isolate", "tax", [GOOD, rec(type_="tax.settled", resolves="ok1\u2066")], UNSAFE_TEXT,
     "resolves", "U+2066 (LEFT-TO-RIGHT ISOLATE"),
    ("no type", "tax", [GOOD, rec(type_="")], "missing_type", "type", "is required"),
    ("unknown type", "tax", [GOOD, rec(type_="tax.nope")], "unknown_type", "type", "not a record type"),
    ("other agency's type", "tax", [GOOD, rec(type_="civic.donation")], "type_not_allowed", "type",
     "another agency"),
    ("no subject", "tax", [GOOD, rec(subject="")], "missing_subject", "subject", "is required"),
    ("ID too short", "tax", [GOOD, rec(subject=LI[:17])], ids.BAD_LENGTH, "subject",
     "must be 18 characters, got 17"),
    ("ID not digits", "tax", [GOOD, rec(subject=LI[:17] + "Y")], ids.BAD_FORMAT, "subject",
     "17 digits followed by"),
    ("ID province not of GB/T 2260", "tax", [GOOD, rec(subject=in_province(LI, "91"))],
     ids.BAD_PROVINCE, "subject", "91 is not a province code of GB/T 2260"),
    ("ID bad birth date", "tax", [GOOD, rec(subject="110105198702301237")], ids.BAD_DATE, "subject",
     "19870230 is not a calendar date"),
    ("legacy ID not digits", "tax", [GOOD, rec(subject=LI[:6] + LI[8:16] + "X")], ids.BAD_FORMAT, "subject",
     "first-generation one and must be 15 digits"),
    ("legacy ID bad birth date", "tax", [GOOD, rec(subject="110105870230123")], ids.BAD_DATE, "subject",
     "19870230 is not a calendar date"),
    ("legacy ID unknown", "tax", [GOOD, rec(subject=STRANGER[:6] + STRANGER[8:17])], "unknown_resident",
     "subject", "not a registered resident"),
    ("described: no name", "tax", [DGOOD, drec(name="")], "incomplete_description", "subject_name",
     "names its person by subject_name"),
    ("described: no birth date", "tax", [DGOOD, drec(born="")], "incomplete_description", "subject_birth_date",
     "is required"),
    ("described: no district", "tax", [DGOOD, drec(district="")], "incomplete_description", "subject_district",
     "is required"),
    ("described: not a calendar date", "tax", [DGOOD, drec(born="1987-02-30")], "bad_birth_date",
     "subject_birth_date", "must be a calendar date"),
    ("described: a birth date in the future", "tax", [DGOOD, drec(born="2031-01-01")], "bad_birth_date",
     "subject_birth_date", "to today"),
    ("described: a birth date before 1900", "tax", [DGOOD, drec(born="1899-12-31")], "bad_birth_date",
     "subject_birth_date", "from 1900-01-01"),
    ("described: a date-time, not a date", "tax", [DGOOD, drec(born="1987-06-12T10:00")], "bad_birth_date",
     "subject_birth_date", "YYYY-MM-DD"),
    ("described: a district of 5 digits", "tax", [DGOOD, drec(district="11011")], "bad_district",
     "subject_district", "6-digit region code"),
    ("described: a name with a bidi override", "tax", [DGOOD, drec(name="Li\u202eWei")], UNSAFE_TEXT,
     "subject_name", "U+202E"),
    ("described: resolves another row", "tax", [DGOOD, drec(resolves="ok1")], "described_resolves",
     "resolves", "must name its subject by ID"),
    ("ID born in future", "tax", [GOOD, rec(subject=FUTURE_BORN)], ids.FUTURE_DATE, "subject",
     "in the future"),
    ("ID check character", "tax", [GOOD, rec(subject=BAD_CHECK)], ids.BAD_CHECK, "subject",
     f"check character should be {LI[17]}"),
    ("bad phone", "tax", [GOOD, rec(subject="23512345678")], ids.BAD_PHONE, "subject",
     "11 digits starting with 1"),
    ("phone prefix never mobile", "tax", [GOOD, rec(subject="12512345678")], ids.BAD_PHONE, "subject",
     "12x is never a mobile number"),
    ("no date", "tax", [GOOD, rec(occurred_at="")], "missing_date", "occurred_at", "is required"),
    ("impossible date", "tax", [GOOD, rec(occurred_at="2024-02-30")], "bad_date", "occurred_at",
     "not an ISO 8601 date"),
    ("not a date", "tax", [GOOD, rec(occurred_at="01/08/2024")], "bad_date", "occurred_at", "'01/08/2024'"),
    ("before 1900", "tax", [GOOD, rec(occurred_at="1899-12-31")], "date_too_early", "occurred_at",
     "before 1900"),
    ("in the future", "tax", [GOOD, rec(occurred_at="2024-09-02T10:00:01")], "future_date", "occurred_at",
     "more than one day in the future"),
    ("attributes not an object", "tax", [GOOD, rec(attributes="[1, 2]")], "bad_attributes", "attributes",
     "must be a JSON object"),
    ("attributes not JSON", "tax", [GOOD, rec(attributes="{amount: 3}")], "bad_attributes", "attributes",
     "must be a JSON object"),
    ("attributes too large", "tax", [GOOD, rec(attributes='{"a": "' + "x" * 4100 + '"}')],
     "attributes_too_large", "attributes", "at most 4 KiB"),
    ("phone with no holder then", "tax", [GOOD, rec(subject=RECYCLED, occurred_at="2017-06-01")],
     "unresolved_phone", "subject", "no resident held this phone"),
    ("unregistered resident", "tax", [GOOD, rec(subject=STRANGER)], "unknown_resident", "subject",
     "not a registered resident"),
    ("key twice, different content", "tax", [GOOD, rec(record_id="ok1", occurred_at="2024-08-02")],
     "conflict", "record_id", "line 2"),
    ("resolves nothing", "tax", [GOOD, rec(type_="tax.settled", resolves="nope")], "unknown_resolves",
     "resolves", "names no record"),
    ("resolves a later row", "tax", [rec(record_id="s1", type_="tax.settled", resolves="ok1"), GOOD],
     "unknown_resolves", "resolves", "names no record"),
    ("resolves another resident's", "tax", [GOOD, rec(type_="tax.settled", subject=WANG, resolves="ok1")],
     "bad_resolves", "resolves", "another resident's"),
    ("resolves a type it may not", "tax", [rec(record_id="f1", type_="tax.filing"),
                                           rec(type_="tax.settled", resolves="f1")],
     "bad_resolves", "resolves", "may not resolve"),
    ("population: no name", "population", [NEW, person(name=" ")], "missing_name", "name", "is required"),
    ("population: name with a bidi mark", "population", [NEW, person(name="\u200f李四")], UNSAFE_TEXT,
     "name", "U+200F (RIGHT-TO-LEFT MARK"),
    ("population: name with a newline", "population", [NEW, person(name="李\n四")], UNSAFE_TEXT, "name",
     "U+000A (a control character) at character 2"),
    ("population: ID province", "population", [NEW, person(in_province(NEWBORN, "00"))],
     ids.BAD_PROVINCE, "resident_id", "00 is not a province code"),
    ("population: district", "population", [NEW, person(district="11010")], "bad_district", "district",
     "6-digit region code"),
    ("population: status", "population", [NEW, person(status="alive")], "bad_status", "status",
     "active, deceased or moved_out"),
    ("population: status date", "population", [NEW, person(status="deceased", status_date="last week")],
     "bad_date", "status_date", "ISO 8601"),
    ("population: ID", "population", [NEW, person(BAD_CHECK)], ids.BAD_CHECK, "resident_id",
     "check character"),
    ("telecom: phone", "telecom", [LINK, link("1370000000")], ids.BAD_PHONE, "phone", "11 digits"),
    ("telecom: phone prefix", "telecom", [LINK, link("10086000000")], ids.BAD_PHONE, "phone", "10x is never a mobile"),
    ("telecom: no start", "telecom", [LINK, link(valid_from="")], "missing_date", "valid_from",
     "is required"),
    ("telecom: bad end", "telecom", [LINK, link(valid_to="soon")], "bad_date", "valid_to", "ISO 8601"),
    ("telecom: period", "telecom", [LINK, link(valid_to="2023-12-30")], "bad_period", "valid_to",
     "before valid_from"),
    ("telecom: unknown resident", "telecom", [LINK, link(resident_id=STRANGER)], "unknown_resident",
     "resident_id", "not a registered resident"),
    ("telecom: overlapping holder", "telecom", [LINK, link(RECYCLED, LI, "2022-06-01", "2022-12-01")],
     "overlapping_holder", "phone", "overlaps another holder"),
]
HEADERS = {"population": POPULATION_HEADER, "telecom": TELECOM_HEADER}
LINE = {"resolves a later row": 2}  # where the row under test is not the last one


def test_every_reason_has_a_case() -> None:
    covered = {case[3] for case in CASES}
    assert set(ingest.REASONS) <= covered
    assert set(ingest.ID_REASONS) <= covered


@pytest.mark.parametrize(("agency", "rows", "reason", "field", "words", "line"),
                         [pytest.param(*c[1:], LINE.get(c[0], len(c[2]) + 1), id=c[0]) for c in CASES])
def test_reject_reason(town: Credo, tmp_path: Path, agency: str, rows: list[tuple[str, ...]], reason: str,
                       field: str, words: str, line: int) -> None:
    header = DESCRIBED_HEADER if len(rows[0]) == len(DESCRIBED_HEADER) else HEADERS.get(agency, RECORD_HEADER)
    feed = write_csv(tmp_path / "feed.csv", [header, *rows])
    result = town.ingest_files(agency, [feed])[0]
    assert result.rejected == Counter({reason: 1})
    assert result.accepted + result.duplicates + 1 == result.rows == len(rows)
    [kept] = [r for r in town.rejects(agency)["rejects"] if r["source"] == str(feed)]
    assert (kept["reason"], kept["field"], kept["line"]) == (reason, field, line)
    assert words in kept["message"]
    if field != "(row)":
        assert kept["message"].startswith(f"{field}: ")
    assert kept["row_text"]  # the row as received


def test_resend_changes_nothing_and_a_changed_row_is_a_conflict(town: Credo, tmp_path: Path) -> None:
    rows = [RECORD_HEADER, GOOD, rec("r2", attributes='{"amount": 5}'), rec("r3", subject=RECYCLED)]
    first = town.ingest_files("tax", [write_csv(tmp_path / "a.csv", rows)])[0]
    assert (first.accepted, first.duplicates, first.rejected) == (3, 0, Counter())
    before = ledger_rows(town)
    again = town.ingest_files("tax", [write_csv(tmp_path / "b.csv", rows)])[0]
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, Counter())
    assert ledger_rows(town) == before
    # the same content spelt differently (spaces, JSON layout, lowercase x) is still the same record
    respelt = town.ingest_files("tax", [write_csv(tmp_path / "c.csv", [
        RECORD_HEADER, (" ok1 ", "tax.arrears", f" {LI.lower()} ", "2024-08-01", "", ""),
        rec("r2", attributes='{ "amount" : 5 }')])])[0]
    assert (respelt.accepted, respelt.duplicates) == (0, 2)
    changed = town.ingest_files("tax", [write_csv(tmp_path / "d.csv", [
        RECORD_HEADER, rec("r2", attributes='{"amount": 6}'), rec("ok1", occurred_at="2024-08-02")])])[0]
    assert changed.rejected == Counter({"conflict": 2})
    assert ledger_rows(town) == before  # never an overwrite


def test_twice_within_one_batch(town: Credo, tmp_path: Path) -> None:
    result = town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [
        RECORD_HEADER, GOOD, GOOD, rec("r2"), rec("r2", occurred_at="2024-07-01"), GOOD])])[0]
    assert (result.accepted, result.duplicates, result.rejected) == (2, 2, Counter({"conflict": 1}))
    [kept] = town.rejects("tax")["rejects"]
    assert kept["line"] == 5 and "line 4" in kept["message"]
    assert [r[4] for r in ledger_rows(town) if r[0] == "r2"] == [datetime(2024, 8, 1)]


STORED_ATTRIBUTES = '{"case": "A-1", "amount": 5, "place": {"city": "Beijing", "district": "110105"}}'
# (case id, attributes re-sent for the same record, duplicate (True) or conflict (False))
ATTRIBUTE_CASES: list[tuple[str, str, bool]] = [
    ("same text", STORED_ATTRIBUTES, True),
    ("keys reordered", '{"amount": 5, "place": {"city": "Beijing", "district": "110105"}, "case": "A-1"}', True),
    ("nested keys reordered", '{"case":"A-1","amount":5,"place":{"district":"110105","city":"Beijing"}}', True),
    ("an escape for a letter", '{"place": {"district": "110105", "city": "Beiji\\u006eg"}, "amount": 5, '
     '"case": "A-1"}', True),
    ("a value changed", '{"amount": 6, "place": {"city": "Beijing", "district": "110105"}, "case": "A-1"}', False),
    ("a number for a string", '{"amount": 5, "place": {"city": "Beijing", "district": 110105}, "case": "A-1"}',
     False),
    ("true for 1", '{"amount": true, "place": {"city": "Beijing", "district": "110105"}, "case": "A-1"}', False),
    ("a key left out", '{"amount": 5, "case": "A-1"}', False),
    ("none at all", "", False),
]


@pytest.mark.parametrize(("attributes", "duplicate"), [pytest.param(*c[1:], id=c[0]) for c in ATTRIBUTE_CASES])
def test_attributes_equal_as_json_are_a_duplicate(town: Credo, tmp_path: Path, attributes: str,
                                                  duplicate: bool) -> None:
    """Against the ledger and within one batch alike: JSON objects are equal whatever their key order."""
    town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [RECORD_HEADER, rec("r2", attributes=STORED_ATTRIBUTES)])])
    before = ledger_rows(town)
    resent = write_csv(tmp_path / "b.csv", [RECORD_HEADER, rec("r2", attributes=attributes)])
    again = town.ingest_files("tax", [resent])[0]
    assert (again.duplicates, again.rejected) == ((1, Counter()) if duplicate else (0, Counter({"conflict": 1})))
    assert ledger_rows(town) == before
    twice = town.ingest_files("tax", [write_csv(tmp_path / "c.csv", [
        RECORD_HEADER, rec("r3", attributes=STORED_ATTRIBUTES), rec("r3", attributes=attributes)])])[0]
    assert (twice.accepted, twice.duplicates, twice.rejected) == (
        (1, 1, Counter()) if duplicate else (1, 0, Counter({"conflict": 1})))


# (case id, agency, the rejected row, the row sent later, the record the reject names, accepted later)
LATER_CASES: list[tuple[str, str, tuple[str, ...], tuple[str, ...], str, bool]] = [
    ("record, corrected", "tax", rec("r9", subject=LI[:17]), rec("r9"), "tax:r9", True),
    ("record, its resident registered first", "tax", rec("r9", subject=STRANGER), rec("r9", subject=STRANGER),
     "tax:r9", True),
    ("record, a conflict stays rejected", "tax", rec("ok1", occurred_at="2024-08-02"), rec("ok2"), "tax:ok1",
     False),
    ("record, another record sent", "tax", rec("r9", type_="tax.nope"), rec("r10"), "tax:r9", False),
    ("resident, corrected", "population", person(NEWBORN, district="11010"), person(NEWBORN),
     f"population:{NEWBORN}", True),
    ("resident, someone else", "population", person(NEWBORN, district="11010"), person(STRANGER),
     f"population:{NEWBORN}", False),
    ("phone link, corrected", "telecom", link(valid_to="2023-12-30"), link(), "telecom:13700000001", True),
    ("phone link, to someone else", "telecom", link(valid_to="2023-12-30"), link(resident_id=ZHAO),
     "telecom:13700000001", False),
]


@pytest.mark.parametrize(("agency", "rejected", "later", "record", "accepted"),
                         [pytest.param(*c[1:], id=c[0]) for c in LATER_CASES])
def test_a_reject_says_whether_its_record_was_accepted_later(
        town: Credo, tmp_path: Path, agency: str, rejected: tuple[str, ...], later: tuple[str, ...], record: str,
        accepted: bool) -> None:
    header = HEADERS.get(agency, RECORD_HEADER)
    town.ingest_files("tax", [write_csv(tmp_path / "first.csv", [RECORD_HEADER, GOOD])])
    assert sum(town.ingest_files(agency, [write_csv(tmp_path / "a.csv", [header, rejected])])[0].rejected.values())
    [kept] = town.rejects(agency)["rejects"]
    assert (kept["record"], kept["accepted_later"]) == (record, False)
    if record == "tax:r9" and STRANGER in rejected:  # the resident registered, then the record again
        town.ingest_files("population", [write_csv(tmp_path / "p.csv", [POPULATION_HEADER, person()])])
    town.ingest_files(agency, [write_csv(tmp_path / "b.csv", [header, later])])
    [kept] = town.rejects(agency)["rejects"]
    assert (kept["record"], kept["accepted_later"]) == (record, accepted)


def test_first_standing_row_of_a_key_wins_not_a_rejected_one(town: Credo, tmp_path: Path) -> None:
    result = town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [
        RECORD_HEADER, rec("r1", occurred_at="2024-13-01"), rec("r1")])])[0]
    assert (result.accepted, result.rejected) == (1, Counter({"bad_date": 1}))


def test_phone_recycling(town: Credo, tmp_path: Path) -> None:
    """A record before and after the number changed hands goes to different residents."""
    result = town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [
        RECORD_HEADER, rec("before", subject=RECYCLED, occurred_at="2022-12-31T23:59:59"),
        rec("after", subject=RECYCLED, occurred_at="2023-01-01"),
        rec("li", subject=LI_PHONE, occurred_at="2024-08-01T08:00:00+08:00")])])[0]
    assert result.accepted == 3
    owners = {r[0]: r[2] for r in ledger_rows(town)}
    assert owners == {"before": ids.resident_key(WANG), "after": ids.resident_key(ZHAO),
                      "li": ids.resident_key(LI)}


def test_overlapping_holders_in_one_telecom_batch(town: Credo, tmp_path: Path) -> None:
    result = town.ingest_files("telecom", [write_csv(tmp_path / "t.csv", [
        TELECOM_HEADER, link("13600000000", LI, "2020-01-01", "2021-12-31"),
        link("13600000000", WANG, "2021-06-01"),
        link("13600000000", ZHAO, "2022-01-01", "2022-05-01"), link("13600000001", ZHAO, "2022-01-01")])])[0]
    assert result.rejected == Counter({"overlapping_holder": 3})
    assert result.accepted == 1


def test_closing_a_link_then_the_next_holder(town: Credo, tmp_path: Path) -> None:
    """The operator closes a link by sending it again with valid_to; then the new holder fits."""
    result = town.ingest_files("telecom", [write_csv(tmp_path / "t.csv", [
        TELECOM_HEADER, (LI_PHONE, LI, "2020-01-01", "2024-05-31"), (LI_PHONE, WANG, "2024-06-01", "")])])[0]
    assert (result.accepted, result.rejected) == (2, Counter())
    again = town.ingest_files("telecom", [write_csv(tmp_path / "t2.csv", [
        TELECOM_HEADER, (LI_PHONE, WANG, "2024-06-01", "")])])[0]
    assert again.duplicates == 1


def test_resolves_earlier_in_the_same_batch(town: Credo, tmp_path: Path) -> None:
    result = town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [
        RECORD_HEADER, GOOD, rec("s1", type_="tax.settled", occurred_at="2024-08-20", resolves="ok1"),
        rec("bad", occurred_at="2024-02-31"),
        rec("s2", type_="tax.settled", resolves="bad")])])[0]
    assert result.accepted == 2
    assert result.rejected == Counter({"bad_date": 1, "unknown_resolves": 1})
    later = town.ingest_files("tax", [write_csv(tmp_path / "b.csv", [
        RECORD_HEADER, rec("r9"), rec("s9", type_="tax.settled", resolves="r9")])])[0]
    assert later.accepted == 2
    from_ledger = town.ingest_files("tax", [write_csv(tmp_path / "c.csv", [
        RECORD_HEADER, rec("s10", type_="tax.settled", resolves="r9")])])[0]
    assert from_ledger.accepted == 1
    standing = town.standing(parse_resident_id(LI))
    assert "tax_defaulter" not in standing.to_json("Asia/Shanghai")["lists"]


def test_population_resend_and_update(town: Credo, tmp_path: Path) -> None:
    rows = [POPULATION_HEADER, (LI, "Li Wei", "110112", "", ""), (WANG, "Wang Fang", "110115", "", "")]
    again = town.ingest_files("population", [write_csv(tmp_path / "p.csv", rows)])[0]
    assert (again.accepted, again.duplicates) == (0, 2)
    moved = town.ingest_files("population", [write_csv(tmp_path / "p2.csv", [
        POPULATION_HEADER, person(LI, "Li Wei", "110112"),
        person(LI, "Li Wei", "110112", "MOVED_OUT", "2024-08-01")])])[0]
    assert moved.accepted == 2
    status = town.con.execute("SELECT status, status_date FROM residents WHERE resident = ?",
                              [ids.resident_key(LI)]).fetchall()
    assert status == [("moved_out", datetime(2024, 8, 1))]


def test_formats_agree(town: Credo, tmp_path: Path) -> None:
    """The same rows as CSV, JSON Lines and Parquet: accepted once, then duplicates."""
    rows = [GOOD, rec("r2", subject=RECYCLED, attributes='{"amount": 5}')]
    write_csv(tmp_path / "a.csv", [RECORD_HEADER, *rows])
    (tmp_path / "a.jsonl").write_text("".join(
        json.dumps({k: v for k, v in zip(RECORD_HEADER, r, strict=True) if v}) + "\n" for r in rows))
    pq.write_table(pa.table({k: [r[i] or None for r in rows] for i, k in enumerate(RECORD_HEADER)}),
                   tmp_path / "a.parquet")
    results = town.ingest_files("tax", [tmp_path / "a.csv", tmp_path / "a.jsonl", tmp_path / "a.parquet"])
    assert [(r.accepted, r.duplicates, sum(r.rejected.values())) for r in results] == [(2, 0, 0), (0, 2, 0),
                                                                                       (0, 2, 0)]


def test_rows_are_never_lost(town: Credo, tmp_path: Path) -> None:
    rows = [rec(f"r{i}", occurred_at=d) for i, d in enumerate(["2024-08-01", "x", "", "2024-08-01T10:00Z"])]
    result = town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [RECORD_HEADER, *rows, rows[0]])])[0]
    assert result.rows == 5
    assert result.accepted + result.duplicates + sum(result.rejected.values()) == 5
    assert len(town.rejects("tax")["rejects"]) == sum(result.rejected.values())


def test_revoke(town: Credo, tmp_path: Path) -> None:
    town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [RECORD_HEADER, GOOD])])
    assert town.standing(parse_resident_id(LI)).score == 950
    inspector = Principal("tax-desk", "agency", agency="tax")
    town.revoke("tax", "ok1", "entered in error", inspector)
    [record] = town.con.execute("SELECT count(*) FROM ledger WHERE record_id = 'ok1'").fetchall()
    assert record == (1,)  # it stays
    who = town.con.execute("SELECT reason, principal FROM revocations WHERE record_id = 'ok1'").fetchall()
    assert who == [("entered in error", "tax-desk")]
    from credo import ledger

    [mine] = ledger.records_of(town.con, ids.resident_key(LI))
    assert mine["revoke_reason"] == "entered in error" and mine["revoked_at"] is not None
    assert town.standing(parse_resident_id(LI)).score == 1000
    with pytest.raises(Conflict, match="already revoked"):
        town.revoke("tax", "ok1", "again", inspector)
    with pytest.raises(Forbidden):
        town.revoke("tax", "ok1", "not mine", Principal("donor-desk", "agency", agency="blood-centre"))
    with pytest.raises(NotFound):
        town.revoke("blood-centre", "ok1", "not mine")
    with pytest.raises(Conflict, match="reason"):
        town.revoke("tax", "ok1", "  ")


def test_a_failed_batch_leaves_nothing(town: Credo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error after the ledger append rolls the whole file back (the transaction is the batch)."""
    from credo import scoring

    def boom(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk on fire")

    before = town.con.execute("SELECT count(*) FROM ledger").fetchall()
    monkeypatch.setattr(scoring, "rescore", boom)
    with pytest.raises(RuntimeError):
        town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [RECORD_HEADER, GOOD, rec("b", type_="x")])])
    assert town.con.execute("SELECT count(*) FROM ledger").fetchall() == before
    assert town.rejects("tax")["rejects"] == []
    assert town.con.execute("SELECT count(*) FROM batches WHERE agency = 'tax'").fetchall() == [(0,)]


def test_api_rows_take_the_same_path(town: Credo) -> None:
    who = Principal("tax-api", "agency", agency="tax")
    result = town.ingest_rows("tax", [dict(zip(RECORD_HEADER, GOOD, strict=True)),
                                      {"record_id": "r2", "type": "tax.arrears", "subject": LI,
                                       "occurred_at": "2024-08-01", "colour": "red"}, "not an object"],
                              who, "api:request-1")
    assert (result.accepted, result.rejected) == (1, Counter({"malformed_row": 2}))
    kept = {r["line"]: r for r in town.rejects("tax")["rejects"]}
    assert kept[2]["field"] == "colour" and "unknown field" in kept[2]["message"]
    assert kept[3]["source"] == "api:request-1"



def test_no_batch_tables_stay_registered(town: Credo, tmp_path: Path) -> None:
    """A registered Arrow table keeps its data alive: after a batch (even a failed one) none is left."""
    town.ingest_files("tax", [write_csv(tmp_path / "a.csv", [RECORD_HEADER, GOOD, rec("r2", subject=RECYCLED),
                                                              rec("s1", type_="tax.settled", resolves="ok1"),
                                                              rec("bad", type_="x")])])
    views = {v for (v,) in town.con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()}
    assert not views & set(ingest._INPUTS)
