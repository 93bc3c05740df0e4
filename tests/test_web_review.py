"""The identity review page in a real browser (spec §10): the operator sees the held rows with their
candidates and comparisons, confirms one and declines another; the page, the API and the resident's
explanation then agree. Chromium and Playwright as in tests/test_web.py (skipped without, failed
under CI=true)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from credo import ids
from credo.service import Credo
from tests.conftest import NOW, PEOPLE, RECORD_COLUMNS, Live, build_city, fixed_clock, rid, running, write_csv
from tests.test_web import Visit, _need_browser, browser, rows, text

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the module's browser fixture
HEADER = (*RECORD_COLUMNS, "subject_name", "subject_birth_date", "subject_district")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The tiny city with two rows about residents J and E named by description only."""
    _need_browser()
    made = build_city(tmp_path_factory.mktemp("web-review"))
    rows_ = [(f"rv{i}", "tax.arrears", "", "2024-07-03", "", "", name, ids.birth_date(rid(p)).isoformat(),
              PEOPLE[p][1]) for i, (p, name) in enumerate([("J", "Resident J"), ("E", "Resident Ee")], start=1)]
    with fixed_clock(NOW), closing(Credo.open(made.db)) as credo:
        credo.ingest_files("tax", [write_csv(made.folder / "d.csv", [HEADER, *rows_])])
        made.tokens["resident_j"] = credo.create_token("resident", resident_id=rid("J"))[0]
    with running(made) as server:
        yield server


@pytest.fixture
def visit(browser: object, live: Live) -> Iterator[Visit]:
    v = Visit(browser, live)  # type: ignore[arg-type]
    yield v
    assert v.foreign() == [], "a page reached beyond the server"
    v.close()


def test_the_operator_confirms_and_declines_on_the_page(visit: Visit) -> None:
    live = visit.live
    page = visit.sign_in("operator", then="/review")
    page.wait_for_url("**/review")
    assert text(page, '[data-k="review-waiting"]') == "2"
    [first] = rows(page, "candidates-1")
    assert first[1] == rid("J") and first[3].startswith("same name")
    [second] = rows(page, "candidates-2")
    assert second[1] == rid("E") and second[3].startswith("pinyin one edit apart")
    visit.shot("review-page")

    page.locator("#confirm-1").get_by_label("Why").fill("same man in the tax file")
    page.locator("#confirm-1").get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/review#item-1")
    assert "same man in the tax file" in text(page, "#item-1 .judgement")
    page.locator("#decline-2").get_by_label("Why none is the person").fill("the file names another woman")
    page.locator("#decline-2").get_by_role("button", name="Decline").click()
    page.wait_for_url("**/review#item-2")
    assert text(page, '[data-k="review-waiting"]') == "0"
    assert text(page, "#item-2 [data-status]") == "declined"

    with live.client("operator") as c:
        items = c.get("/v1/review").json()["items"]
        explained = c.get(f"/v1/residents/{rid('J')}/explanation", params={"purpose": "web test"}).json()
    assert [(i["status"], i["judgement"]["reason"]) for i in items] == [
        ("confirmed", "same man in the tax file"), ("declined", "the file names another woman")]
    [mark] = [r["matched_by_review"] for r in explained["records"] if r["record_id"] == "rv1"]
    assert mark["item"] == 1 and mark["confirmed_by"].startswith("operator")
    board = visit.go("/dashboard")
    assert text(board, '[data-k="review-pending"]') == "0"


def test_the_resident_sees_who_matched_the_record(visit: Visit) -> None:
    """After the confirmation above: the resident's page names the review, who confirmed, and when."""
    page = visit.sign_in("resident_j")
    mark = page.locator('[data-review="1"]')
    assert mark.count() == 1
    assert "matched by review 1, confirmed by operator" in (mark.text_content() or "")
    visit.shot("resident-review-mark")


def test_an_agency_sees_its_own_and_a_resident_no_review(visit: Visit, browser: object) -> None:
    page = visit.sign_in("agency_blood", then="/review")
    page.wait_for_url("**/review")
    assert page.locator("#review-empty").count() == 1
    resident = Visit(browser, visit.live)  # type: ignore[arg-type]
    try:
        shown = resident.sign_in("resident", then="/review")
        assert "cannot open this page" in (shown.text_content("main") or "")
    finally:
        resident.close()
