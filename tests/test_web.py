"""The web pages in a real browser (issue 7): Debian's chromium, headless, driven by Playwright.

One ``credo serve`` (uvicorn, on a free loopback port) holds the tiny city of
``conftest`` for the whole module; the tests sign in through the token form as an
operator and as residents, read the numbers the pages show and compare them with
what the HTTP API answers on the same server at the same moment. They also open an
objection from the resident page and find it on the dashboard, simulate a policy on
the what-if page, and check that forms refuse requests from elsewhere, that no page
reaches beyond the server, and that pages work by keyboard and on a phone-width
screen. Every page is screenshotted to ``artifacts/screenshots/``.

Without chromium (or Playwright) the module skips, except under ``CI=true``, where
it fails: a CI run must not pass without its browser tests.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import PEOPLE, Live, build_city, rid, running

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PURPOSE = {"purpose": "web test"}


def _need_browser() -> None:
    """Skip without a browser, but fail under CI=true."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "Playwright for Python is not installed"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem}: under CI=true the browser tests must run")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The tiny city served, with decisions in the audit log and rejected rows to show."""
    _need_browser()
    city = build_city(tmp_path_factory.mktemp("web"))
    with running(city) as server:
        with server.client("provider") as c:
            for letter, action in [("A", "rail.high_speed.book"), ("C", "rail.high_speed.book"),
                                   ("E", "rail.high_speed.book"), ("B", "admin.approval")]:
                query = {"resident_id": rid(letter), "action": action, "purpose": "booking"}
                r = c.get("/v1/check", params=query)
                assert r.status_code == 200, r.text
        with server.client("agency") as c:
            bad = [{"record_id": "bad1", "type": "tax.arrears", "subject": "110101199001010000",
                    "occurred_at": "2024-08-01"},
                   {"record_id": "bad2", "type": "civic.donation", "subject": rid("C"),
                    "occurred_at": "2024-08-01"}]
            assert c.post("/v1/records", json=bad).status_code == 200
        with server.client("operator") as c:
            r = c.post("/v1/tokens", json={"role": "resident", "resident_id": rid("D")})
            city.tokens["resident_d"] = r.json()["token"]
        yield server


class Visit:
    """A browser context of its own (its own cookies), recording every request it makes."""

    def __init__(self, browser: Browser, live: Live, viewport: dict[str, int] = DESKTOP) -> None:
        self.live = live
        self.context: BrowserContext = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        self.requests: list[str] = []
        self.context.on("request", lambda req: self.requests.append(req.url))
        self.page: Page = self.context.new_page()

    def go(self, path: str) -> Page:
        self.page.goto(self.live.url + path)
        return self.page

    def sign_in(self, who: str, then: str | None = None) -> Page:
        self.go("/signin" if then is None else then)
        self.page.get_by_label("Access token").fill(self.live.city.tokens[who])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()
        return self.page

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def foreign(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.live.url + "/")]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Browser, live: Live) -> Iterator[Visit]:
    v = Visit(browser, live)
    yield v
    assert v.foreign() == [], "a page reached beyond the server"
    v.close()


def text(page: Page, selector: str) -> str:
    return page.locator(selector).first.text_content() or ""


def num(value: str) -> int:
    return int(value.replace(",", "").replace("+", "").strip())


def rows(page: Page, table_id: str) -> list[list[str]]:
    """A table's body cells as text (also inside a closed <details>)."""
    got: list[list[str]] = page.eval_on_selector_all(
        f"#{table_id} tbody tr", "trs => trs.map(tr => [...tr.children].map(c => c.textContent.trim()))")
    return got


def api_standings(live: Live) -> dict[str, dict[str, Any]]:
    with live.client("operator") as c:
        return {p: c.get(f"/v1/residents/{rid(p)}/standing", params=PURPOSE).json() for p in PEOPLE}


def all_audit(live: Live, **params: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    who = "resident" if "resident_id" in params else "auditor"
    with live.client(who) as c:
        after = 0
        while True:
            body = c.get("/v1/audit", params={"after": after, "limit": 1000, **params}).json()
            out += body["entries"]
            if body["next_after"] is None:
                return out
            after = body["next_after"]


# -- signing in -------------------------------------------------------------------------------------
def test_signing_in_with_a_token_gives_a_strict_http_only_session(visit: Visit) -> None:
    page = visit.go("/dashboard")
    assert page.url.startswith(visit.live.url + "/signin?next=")
    visit.shot("signin")
    page.get_by_label("Access token").fill("credo_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert "not known" in text(page, "#signin-error")
    assert not [c for c in visit.context.cookies() if c["name"] == "credo_session"]
    visit.shot("signin-refused")
    page.get_by_label("Access token").fill(visit.live.city.tokens["operator"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(visit.live.url + "/dashboard")
    [cookie] = [c for c in visit.context.cookies() if c["name"] == "credo_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not cookie["secure"]  # plain http on loopback; Secure whenever the scheme is https
    assert visit.live.city.tokens["operator"] not in cookie["value"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/signin$"))
    assert not [c for c in visit.context.cookies() if c["name"] == "credo_session"]
    assert visit.go("/dashboard").url.startswith(visit.live.url + "/signin")


# -- the dashboard ----------------------------------------------------------------------------------
def test_dashboard_numbers_equal_the_api(visit: Visit) -> None:
    live = visit.live
    page = visit.sign_in("operator")
    assert page.url == live.url + "/dashboard"
    visit.shot("dashboard")
    standings = api_standings(live)
    scores = sorted(s["score"] for s in standings.values())
    kpi = {k: num(text(page, f'[data-k="{k}"]')) for k in
           ("residents", "median", "objections-open", "objections-overdue", "decisions", "denied", "rejects")}
    assert kpi["residents"] == len(standings)
    assert kpi["median"] == scores[(len(scores) - 1) // 2]

    # the histogram: every resident in the bin of their score
    bins = page.eval_on_selector_all("#hist-t ~ rect", "rs => rs.map(r => [+r.dataset.lo, +r.dataset.count])")
    width = bins[1][0] - bins[0][0] if len(bins) > 1 else 1
    assert bins and sum(c for _, c in bins) == len(scores)
    assert {lo: c for lo, c in bins if c} == dict(Counter(s // width * width for s in scores))

    # grades, overall and by district
    overall = dict(page.eval_on_selector_all("#grades-overall li", "ls => ls.map(l => [l.dataset.label, "
                                                                  "+l.querySelector('.bar-value').textContent])"))
    order = list(overall)
    assert overall == {g: sum(s["grade"] == g for s in standings.values()) for g in order}
    table = rows(page, "grades-by-district")
    want: dict[str, Counter[str]] = {}
    for p, s in standings.items():
        want.setdefault(PEOPLE[p][1], Counter())[s["grade"]] += 1
    assert {r[0]: {g: num(v) for g, v in zip(order, r[1:-1], strict=True) if num(v)} for r in table} == \
        {d: dict(c) for d, c in want.items()}

    # lists in force and pending
    on = sum("tax_defaulter" in s["lists"] for s in standings.values())
    pending = sum(any(x["list"] == "tax_defaulter" for x in s["pending"]) for s in standings.values())
    assert num(text(page, '[data-k="list-tax_defaulter-in-force"]')) == on == 6
    assert num(text(page, '[data-k="list-tax_defaulter-pending"]')) == pending == 1

    # decisions and denials per day by action, from the audit log
    decided = [e for e in all_audit(live) if e["event"] == "decision"]
    by_action = Counter(e["action"] for e in decided)
    denied = Counter(e["action"] for e in decided if e["decision"] == "deny")
    assert kpi["decisions"] == len(decided) == 4 and kpi["denied"] == sum(denied.values()) == 2
    for action, n in by_action.items():
        assert num(text(page, f'[data-k="decisions-{action}"]')) == n
        assert num(text(page, f'[data-k="denied-{action}"]')) == denied[action]
    per_day = Counter((e["logged_at"][:10], e["action"]) for e in decided)
    assert {(r[0], r[1]): num(r[2]) for r in rows(page, "decisions-by-day")} == dict(per_day)

    # objections, rejects, the policy
    with live.client("operator") as c:
        objections = c.get("/v1/objections").json()["objections"]
        rejects = c.get("/v1/rejects").json()["rejects"]
        policy = c.get("/v1/policy").json()
    assert kpi["objections-open"] == sum(o["status"] in ("open", "overdue") for o in objections)
    assert kpi["objections-overdue"] == sum(o["status"] == "overdue" for o in objections)
    assert kpi["rejects"] == len(rejects) == 2
    assert {(r[0], r[1]): num(r[2]) for r in rows(page, "rejects-by-reason")} == \
        dict(Counter((r["agency"], r["reason"]) for r in rejects))
    assert text(page, '[data-k="policy-version"]') == policy["policy"]
    assert text(page, '[data-k="policy-label"]') == policy["policy"]

    visit.page.set_viewport_size(PHONE)
    visit.shot("dashboard-phone")


def test_an_auditor_sees_aggregates_and_no_resident(visit: Visit) -> None:
    page = visit.sign_in("auditor")
    assert page.url == visit.live.url + "/dashboard"
    assert page.locator("#lookup-id").count() == 0
    assert rid("A") not in page.content()
    assert visit.go("/whatif").locator("h1").text_content() == "Something is not right"


# -- the resident page ------------------------------------------------------------------------------
def test_resident_page_equals_the_api(visit: Visit, browser: Browser) -> None:
    live = visit.live
    operator = Visit(browser, live)
    try:  # an operator reads A's file first, for a stated purpose that A then sees
        page = operator.sign_in("operator")
        page.get_by_label("Resident ID").fill(rid("A"))
        page.get_by_label("Purpose").fill("web test review")
        page.get_by_role("button", name="Open file").click()
        page.wait_for_url(re.compile(r".*/residents/.*purpose=web\+test\+review"))
        assert "web test review" in text(page, ".alert.info")
        operator.shot("operator-resident")
        assert operator.foreign() == []
    finally:
        operator.close()

    page = visit.sign_in("resident")
    assert page.url == live.url + "/me"
    visit.shot("resident")
    with live.client("resident") as c:
        file = c.get(f"/v1/residents/{rid('A')}/explanation").json()
        notices = c.get(f"/v1/residents/{rid('A')}/notices").json()["notices"]
    assert text(page, '[data-k="resident-id"]') == file["resident_id"] == rid("A")
    assert num(text(page, '[data-k="score"]')) == file["score"]
    assert text(page, '[data-k="grade"]') == file["grade"]
    assert page.eval_on_selector_all("#lists-in-force [data-list]", "xs => xs.map(x => x.dataset.list)") \
        == file["lists"] == ["tax_defaulter"]
    records = rows(page, "records")
    assert [r[0] for r in records] == [f"{x['agency']}:{x['record_id']}" for x in file["records"]]
    assert [num(r[3]) for r in records] == [int(x["points"]) for x in file["records"]]
    assert [r[4] for r in records] == [x["why"] for x in file["records"]]
    ways = rows(page, "ways-out")
    assert [(w[0], num(w[6])) for w in ways] == \
        [(w["record"], w["score_after_expiry"]) for w in file["ways_out"]]
    assert [w[4] for w in ways] == [w["expires_at"][:10] for w in file["ways_out"]]
    assert page.locator("#notices li").count() == len(notices)

    accesses = {e["seq"]: e for e in all_audit(live, resident_id=rid("A"))}
    shown = rows(page, "accesses")
    assert shown and num(text(page, '[data-k="accesses-total"]')) <= len(accesses)
    for entry in shown:
        api = accesses[num(entry[0])]
        assert (entry[2], entry[3], entry[5]) == (api["principal"], api["role"], api["purpose"] or "–")
    assert any(e[5] == "web test review" and e[3] == "operator" for e in shown)
    assert any("asked for a decision" in e[4] and e[3] == "provider" and e[5] == "booking" for e in shown)

    page.set_viewport_size(PHONE)
    visit.shot("resident-phone")


def test_pending_list_shows_its_grace_date(visit: Visit) -> None:
    page = visit.sign_in("resident_d")
    with visit.live.client(token=visit.live.city.tokens["resident_d"]) as c:
        standing = c.get(f"/v1/residents/{rid('D')}/standing").json()
    assert standing["lists"] == [] and [p["list"] for p in standing["pending"]] == ["tax_defaulter"]
    shown = page.locator('[data-k="pending-tax_defaulter"] time').get_attribute("datetime")
    assert shown == standing["pending"][0]["takes_effect"] == "2024-09-04T00:00:00+08:00"
    visit.shot("resident-pending")


def test_an_objection_opened_on_the_resident_page_reaches_the_dashboard(visit: Visit,
                                                                        browser: Browser) -> None:
    live = visit.live
    page = visit.sign_in("resident")
    page.get_by_role("link", name="Contest record tax:x1").click()
    assert page.get_by_label("Record", exact=True).input_value() == "tax:x1"
    page.get_by_label("Why is it wrong?").fill("I paid this in July; receipt 2024-0711.")
    page.get_by_role("button", name="Open objection").click()
    page.wait_for_url(re.compile(r".*/me\?opened=\d+#objection-\d+"))
    number = int(page.url.rsplit("-", 1)[1])
    assert f"Objection #{number} is open" in text(page, ".alert.ok")
    row = page.locator(f"#objection-{number}").locator("xpath=ancestor::tr")
    assert row.locator("[data-status]").text_content() == "open"
    with live.client("resident") as c:
        mine = c.get("/v1/objections").json()["objections"]
        standing = c.get(f"/v1/residents/{rid('A')}/standing").json()
    assert [(o["id"], o["record"], o["status"]) for o in mine] == [(number, "tax:x1", "open")]
    assert num(text(page, '[data-k="score"]')) == standing["score"] == 1000  # suspended while contested
    visit.shot("resident-objection")

    operator = Visit(browser, live)
    try:
        board = operator.sign_in("operator")
        with live.client("operator") as c:
            every = c.get("/v1/objections").json()["objections"]
        open_now = sum(o["status"] == "open" for o in every)
        assert num(text(board, '[data-k="objections-open"]')) == open_now == 1
        listed = rows(board, "objection-list")
        assert [(num(r[0].lstrip("#")), r[1], r[2]) for r in listed] == [(number, "open", "tax:x1")]
        assert rid("A") in listed[0][3]
        board.locator("#objections").scroll_into_view_if_needed()
        operator.shot("dashboard-objection")
        assert operator.foreign() == []
    finally:
        operator.close()


def test_a_second_objection_on_the_same_record_is_refused_on_the_page(visit: Visit) -> None:
    page = visit.sign_in("resident")
    assert page.locator("#contest-record option[value='tax:x1']").count() == 0  # no longer offered
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    cookie = {c["name"]: c["value"] for c in visit.context.cookies()}
    with httpx.Client(base_url=visit.live.url, cookies=cookie) as c:
        r = c.post("/objections", data={"csrf": csrf, "record": "tax:x1", "reason": "again"})
    assert r.status_code == 409, r.text
    assert "still open" in r.text, re.sub(r"<[^>]+>", " ", r.text)


# -- the what-if ------------------------------------------------------------------------------------
def test_whatif_shows_the_impact_and_the_diff(visit: Visit, tmp_path: Path) -> None:
    live = visit.live
    page = visit.sign_in("operator")
    page.get_by_role("link", name="What-if").click()
    text_in_force = page.get_by_label("…or edit the policy text").input_value()
    proposed = tmp_path / "stricter.yaml"
    proposed.write_text(text_in_force.replace("{grade: B, min: 900}", "{grade: B, min: 960}")
                        .replace("policy: tiny-1", "policy: tiny-2"), encoding="utf-8")
    page.get_by_label("Policy file (YAML)").set_input_files(str(proposed))
    page.get_by_role("button", name="Simulate").click()
    page.wait_for_load_state()
    standings = api_standings(live)
    falls = sum(s["grade"] == "B" and s["score"] < 960 for s in standings.values())
    assert falls > 0
    assert num(text(page, '[data-k="changed-grade"]')) == falls
    assert num(text(page, '[data-k="residents"]')) == len(standings)
    matrix = {r[0]: r[1:] for r in rows(page, "whatif-matrix")}
    head = page.eval_on_selector_all("#whatif-matrix thead th", "ths => ths.map(t => t.textContent)")[1:]
    assert num(matrix["B"][head.index("C")]) == falls
    diff = text(page, "#policy-diff")
    assert "-  - {grade: B, min: 900}" in diff and "+  - {grade: B, min: 960}" in diff
    runs = [e for e in all_audit(live) if e["event"] == "read.report"]
    assert [(e["role"], e["purpose"]) for e in runs] == [("operator", "what-if page")]
    visit.shot("whatif")

    page.get_by_label("…or edit the policy text").fill(text_in_force.replace("base_score", "base_scor"))
    page.get_by_label("Policy file (YAML)").set_input_files([])
    page.get_by_role("button", name="Simulate").click()
    assert "unknown key" in text(page, "#whatif-problems")
    visit.shot("whatif-refused")


# -- who may do what ------------------------------------------------------------------------------
def test_forms_refuse_requests_from_elsewhere(visit: Visit) -> None:
    live = visit.live
    page = visit.sign_in("resident_c")
    cookie = {c["name"]: c["value"] for c in visit.context.cookies()}
    with httpx.Client(base_url=live.url, cookies=cookie) as c:
        r = c.post("/objections", data={"record": "tax:x3", "reason": "forged"})
        assert r.status_code == 403 and "out of date or not from this site" in r.text
        assert c.post("/signout", data={}).status_code == 403
    with httpx.Client(base_url=live.url) as c:  # a sign-in form not issued to this browser
        r = c.post("/signin", data={"token": live.city.tokens["operator"], "signin": "x"})
        assert r.status_code == 403 and "credo_session" not in r.headers.get("set-cookie", "")
    assert page.locator("h1").text_content() == "Your credit file"


def test_a_resident_reaches_only_their_own_file(visit: Visit) -> None:
    visit.sign_in("resident_c")
    assert visit.go("/dashboard").locator("h1").text_content() == "Something is not right"
    page = visit.go(f"/residents/{rid('A')}")
    assert "only their own file" in text(page, ".alert.error")
    assert rid("A") not in text(page, "main").replace("/residents/", "")


# -- every page: offline, accessible, phone-width -------------------------------------------------
PAGES = [("operator", "/dashboard"), ("operator", "/whatif"), ("resident", "/me"),
         ("operator", f"/residents/{rid('A')}?purpose=web+test")]


@pytest.mark.parametrize(("who", "path"), PAGES, ids=[p for _, p in PAGES])
def test_pages_are_self_contained_accessible_and_fit_a_phone(browser: Browser, live: Live, who: str,
                                                             path: str) -> None:
    visit = Visit(browser, live, PHONE)
    try:
        page = visit.sign_in(who, then=path)
        assert page.url == live.url + path
        html = page.content()
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.evaluate("(ids => new Set(ids).size === ids.length)"
                             "([...document.querySelectorAll('[id]')].map(e => e.id))"), "an id is used twice"
        assert not re.search(r"(src|href|action)=\"(https?:)?//", html) and "url(" not in html
        css = httpx.get(live.url + page.locator("link[rel=stylesheet]").get_attribute("href")).text
        assert "url(" not in css and "@import" not in css
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "wider than the screen"
        unlabelled = page.eval_on_selector_all(
            "input:not([type=hidden]), select, textarea",
            "xs => xs.filter(x => !(x.id && document.querySelector(`label[for='${x.id}']`)))"
            ".map(x => x.name)")
        assert unlabelled == []
        assert page.eval_on_selector_all("table", "ts => ts.filter(t => !t.querySelector('thead th'))"
                                                  ".length") == 0
        assert page.eval_on_selector_all(
            "svg.chart", "ss => ss.filter(s => s.getAttribute('role') !== 'img' || !s.querySelector('title'))"
                         ".length") == 0
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        assert visit.foreign() == []
    finally:
        visit.close()



def test_the_api_docs_render_with_no_network(visit: Visit) -> None:
    """Swagger UI comes from the server (fastapi-offline) and shows every operation of the schema;
    the ``visit`` fixture fails the test if the page asked any other host for anything."""
    schema = httpx.get(visit.live.url + "/openapi.json").json()
    page = visit.go("/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() == sum(len(item) for item in schema["paths"].values())
