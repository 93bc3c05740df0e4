"""Redress end to end on a real server and in a real browser (spec §8).

The airline is told "deny" for resident A (on the tax defaulters' list through tax:x1); the tax agency
then revokes tax:x1 over the API. The resident's page says what the airline was told and why it no
longer holds, the dashboard counts the open item for the airline, and the API gives each caller what
it may see of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import pytest

from tests.conftest import Live, build_city, rid, running
from tests.test_web import Visit, browser, num, rows, text

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the module's browser fixture, shared with the other page tests

TRAIN = "rail.high_speed.book"


class Told(NamedTuple):
    live: Live
    decision: str
    """The airline's decision that the revocation made wrong."""


@pytest.fixture(scope="module")
def told(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Told]:
    city = build_city(tmp_path_factory.mktemp("redress"))
    with running(city) as server:
        with server.client("provider") as c:
            r = c.get("/v1/check", params={"resident_id": rid("A"), "action": TRAIN, "purpose": "booking"})
            assert r.json()["decision"] == "deny", r.text
        with server.client("agency") as c:
            revoked = c.post("/v1/records/x1/revoke", json={"reason": "paid before judgment"})
            assert revoked.status_code == 200, revoked.text
        yield Told(server, r.json()["decision_id"])


def test_each_caller_sees_its_redress(told: Told) -> None:
    live, decision = told
    with live.client("provider") as c:
        [item] = c.get("/v1/redress").json()["redress"]
        assert c.get("/v1/redress", params={"provider": "someone-else"}).status_code == 403
    assert (item["decision_id"], item["provider"], item["action"], item["resident_id"]) == (
        decision, "air", TRAIN, rid("A"))
    assert (item["said"], item["holds"]) == ({"decision": "deny", "benefits": []},
                                             {"decision": "allow", "benefits": []})
    assert [(w["record"], w["reason"]) for w in item["withdrawn"]] == [("tax:x1", "paid before judgment")]
    with live.client("operator") as c:
        assert [i["decision_id"] for i in c.get("/v1/redress", params={"provider": "air"}).json()["redress"]] == [
            decision]
        assert c.get("/v1/redress", params={"resident_id": rid("C")}).json()["redress"] == []
    with live.client("resident") as c:
        assert [i["decision_id"] for i in c.get("/v1/redress").json()["redress"]] == [decision]
        told = [n for n in c.get(f"/v1/residents/{rid('A')}/notices").json()["notices"] if n["kind"] == "redress"]
        assert [n["detail"]["decision_id"] for n in told] == [decision]
    with live.client("resident_c") as c:
        assert c.get("/v1/redress").json()["redress"] == []
    with live.client("agency") as c:
        assert c.get("/v1/redress").status_code == 403


def test_the_resident_page_says_what_was_told_and_why_it_no_longer_holds(browser: Browser, told: Told) -> None:
    visit = Visit(browser, told.live)
    try:
        page = visit.sign_in("resident")
        item = page.locator(f'#redress li[data-decision="{told.decision}"]')
        said = item.text_content() or ""
        assert "air was told deny for rail.high_speed.book because of tax:x1" in said
        assert "withdrawn on 2024-09-01: paid before judgment" in said and "Now it would be allow." in said
        assert page.locator("#redress li").count() == 1
        visit.shot("resident-redress")
        assert visit.foreign() == []
    finally:
        visit.close()


def test_the_dashboard_counts_open_redress_by_provider(browser: Browser, told: Told) -> None:
    visit = Visit(browser, told.live)
    try:
        board = visit.sign_in("operator")
        assert num(text(board, '[data-k="redress-open"]')) == 1
        assert num(text(board, '[data-k="redress-old"]')) == 0
        [row] = rows(board, "redress-by-provider")
        assert (row[0], num(row[1]), num(row[3])) == ("air", 1, 0)
        board.locator("#redress").scroll_into_view_if_needed()
        visit.shot("dashboard-redress")
    finally:
        visit.close()
