"""The HTTP conventions around the operations, against a live ``credo serve`` of the tiny city.

One table per kind: a method a path does not take (405 names the ones it does, ``Allow``); a token
past its rate (429 says when to come back, ``Retry-After``, and coming back then works); a record
batch that is not an array (422, nothing stored); a question whose answer must not reveal whether
someone else's record or objection exists (the same answer before and after it does); the pages of
/docs (everything they load comes from the server); what the OpenAPI schema says of ``purpose``
and of resident IDs; and roles named with their article in messages.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from credo import ids
from credo.api.schemas import RESIDENT_ID_PATTERN
from credo.principals import ROLES, a_role
from tests.conftest import City, Live, build_city, rid, running

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with running(build_city(tmp_path_factory.mktemp("http"))) as server:
        yield server


def answer(r: httpx.Response) -> tuple[int, Any]:
    return r.status_code, r.json()


# -- 405: Allow ----------------------------------------------------------------------------------
NOT_ALLOWED = [
    ("DELETE", "/v1/check", "GET, POST"),  # two routes on one path: both methods
    ("PUT", "/v1/me", "GET"),
    ("DELETE", "/v1/policy", "GET, PUT"),
    ("GET", "/v1/records", "POST"),
    ("GET", "/v1/objections/1/resolve", "POST"),
    ("PATCH", f"/v1/residents/{rid('A')}/standing", "GET"),
    ("POST", "/openapi.json", "GET, HEAD"),
    ("POST", "/docs-assets/swagger-ui.css", "GET, HEAD"),
    ("PUT", "/signin", "GET, POST"),  # a web page
]


@pytest.mark.parametrize(("method", "path", "allow"), NOT_ALLOWED, ids=[f"{m}-{p}" for m, p, _ in NOT_ALLOWED])
def test_a_405_names_the_methods_the_path_takes(live: Live, method: str, path: str, allow: str) -> None:
    with live.client("operator") as c:
        r = c.request(method, path)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        assert r.headers.get("allow") == allow
        for taken in allow.split(", "):  # and each method it names is one the path takes
            assert c.request(taken, path).status_code != 405, taken


# -- 429: Retry-After ----------------------------------------------------------------------------
class LimitedCity(City):
    def env(self) -> dict[str, str]:
        return {**super().env(), "CREDO_RATE_LIMIT": "3"}


CHECK = {"resident_id": rid("C"), "action": "admin.approval", "purpose": "rate"}
LIMITED: list[tuple[str, str, str, dict[str, Any]]] = [
    ("check, fast path", "GET", "/v1/check", {"params": CHECK}),
    ("check, framework", "POST", "/v1/check", {"json": CHECK}),
    ("batch", "POST", "/v1/check/batch", {"json": {**CHECK, "resident_ids": [rid("C")]}}),
    ("me", "GET", "/v1/me", {}),
]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    city = build_city(tmp_path_factory.mktemp("limited"))
    with running(LimitedCity(city.folder, city.db, city.tokens)) as server:
        yield server


@pytest.mark.parametrize(("name", "method", "path", "kwargs"), LIMITED, ids=[n for n, *_ in LIMITED])
def test_a_429_says_when_to_come_back(limited: Live, name: str, method: str, path: str,
                                      kwargs: dict[str, Any]) -> None:
    with limited.client("operator") as c:
        codes = []
        for _ in range(20):
            r = c.request(method, path, **kwargs)
            codes.append(r.status_code)
            if r.status_code == 429:
                break
        assert codes[-1] == 429 and set(codes[:-1]) <= {200}, codes
        wait = int(r.headers["retry-after"])
        assert wait == 1  # 3 a second: one request back within the second
        error = r.json()["error"]
        assert error["code"] == "rate_limited" and error["details"] == {"retry_after": wait}
        time.sleep(wait)
        assert c.request(method, path, **kwargs).status_code == 200


def test_a_web_page_past_the_rate_says_when_to_come_back(limited: Live) -> None:
    with httpx.Client(base_url=limited.url, timeout=30) as c:  # signed in through the form, as a browser is
        form = c.get("/signin").text
        signin = re.search(r'name="signin" value="([^"]+)"', form)
        assert signin is not None
        signed = c.post("/signin", data={"signin": signin[1], "token": limited.city.tokens["resident"]})
        assert signed.status_code == 303
        with ThreadPoolExecutor(8) as pool:  # at once: a page takes longer than a third of a second
            answers = list(pool.map(lambda _: c.get("/me"), range(8)))
        refused = [r for r in answers if r.status_code == 429]
        assert refused and {r.status_code for r in answers} == {200, 429}, [r.status_code for r in answers]
        assert {r.headers["retry-after"] for r in refused} == {"1"}
        time.sleep(1)
        assert c.get("/me").status_code == 200


# -- POST /v1/records: a JSON array, or NDJSON when declared -----------------------------------------
ROW = b'{"record_id": "na1", "type": "tax.arrears", "subject": "%s", "occurred_at": "2024-08-01"}' % \
    rid("C").encode()
NOT_AN_ARRAY = [
    ("one row as an object", ROW, "application/json", "not_an_array"),
    ("a number", b"42", "application/json", "not_an_array"),
    ("a string", b'"rows"', "application/json", "not_an_array"),
    ("null", b"null", "application/json", "not_an_array"),
    ("true", b"true", "application/json; charset=utf-8", "not_an_array"),
    ("an object, no content type", ROW, None, "not_an_array"),
    ("NDJSON not declared", ROW + b"\n" + ROW, None, "bad_json"),
]


@pytest.mark.parametrize(("name", "body", "media", "code"), NOT_AN_ARRAY, ids=[n for n, *_ in NOT_AN_ARRAY])
def test_a_batch_that_is_not_an_array_is_refused_whole(live: Live, name: str, body: bytes, media: str | None,
                                                       code: str) -> None:
    with live.client("agency") as c:
        before = len(c.get("/v1/rejects").json()["rejects"])
        r = c.post("/v1/records", content=body, headers={"Content-Type": media} if media else {})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == code and r.json()["error"]["details"] == {"field": "body"}
        assert "application/x-ndjson" in r.json()["error"]["message"]  # says how to send NDJSON
        assert len(c.get("/v1/rejects").json()["rejects"]) == before  # nothing stored as a malformed row
        declared = c.post("/v1/records", content=ROW, headers={"Content-Type": "application/x-ndjson"})
        assert declared.status_code == 200 and declared.json()["rows"] == 1


# -- no existence oracle ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """``who`` asks ``ask``; ``make`` then creates the thing asked about, someone else's; asked again,
    the answer must be the one it was when the thing did not exist."""

    who: str
    ask: Callable[[httpx.Client], httpx.Response]
    make: Callable[[Live], None]


def _ingest(live: Live, record_id: str, letter: str) -> None:
    row = {"record_id": record_id, "type": "tax.arrears", "subject": rid(letter), "occurred_at": "2024-08-01"}
    with live.client("agency") as c:
        assert c.post("/v1/records", json=[row]).json()["accepted"] == 1


def _object(live: Live, record: str, letter: str) -> None:
    with live.client("operator") as c:
        r = c.post("/v1/objections", json={"record": record, "reason": "probe", "resident_id": rid(letter)})
        assert r.status_code == 201 and r.json()["id"] == 1, r.text


PROBES = {
    "a resident contests someone else's record": Probe(
        "resident", lambda c: c.post("/v1/objections", json={"record": "tax:probe1", "reason": "mine?"}),
        lambda live: _ingest(live, "probe1", "C")),
    "an agency answers another agency's objection": Probe(
        "agency_blood", lambda c: c.post("/v1/objections/1/resolve", json={"uphold": True, "answer": "ours?"}),
        lambda live: _object(live, "tax:x5", "G")),
}


@pytest.fixture
def fresh(city: City) -> Iterator[Live]:
    with running(city) as server:
        yield server


@pytest.mark.parametrize("name", PROBES)
def test_someone_elses_thing_is_answered_as_a_missing_one(fresh: Live, name: str) -> None:
    probe = PROBES[name]
    with fresh.client(probe.who) as c:
        missing = answer(probe.ask(c))
        probe.make(fresh)
        others = answer(probe.ask(c))
    assert missing[0] == 404
    assert others == missing


# -- /docs works with no network ----------------------------------------------------------
class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_the_api_docs_load_everything_from_the_server(live: Live) -> None:
    r = httpx.get(live.url + "/docs")
    assert r.status_code == 200
    links = Links()
    links.feed(r.text)
    assert len([u for u in links.urls if u.endswith((".js", ".css"))]) == 2, links.urls  # Swagger UI's
    for url in [*links.urls, *re.findall(r"url: *'([^']+)'", r.text)]:  # and the schema it loads
        assert url.startswith("/") and not url.startswith("//"), f"/docs loads {url} from elsewhere"
        asset = httpx.get(live.url + url)
        assert asset.status_code == 200 and asset.content, url
        assert "no-store" not in asset.headers.get("cache-control", ""), url  # public: may be cached


# -- the OpenAPI schema: purpose and resident IDs -----------------------------------------------------
def operations(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield f"{method.upper()} {path}", op


def body_schema(schema: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = body.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else body


def test_the_schema_says_who_must_give_a_purpose(live: Live) -> None:
    schema = httpx.get(live.url + "/openapi.json").json()
    required = {name: op["x-purpose-required-for"] for name, op in operations(schema)
                if op.get("x-purpose-required-for")}
    assert required == {"GET /v1/check": ["provider", "operator"], "POST /v1/check": ["provider", "operator"],
                        "POST /v1/check/batch": ["provider", "operator"],
                        **{f"GET /v1/residents/{{resident_id}}/{part}": ["operator"]
                           for part in ("standing", "explanation", "records", "notices")}}
    for name, op in operations(schema):
        fields = [p for p in op.get("parameters", []) if p["name"] == "purpose"]
        fields += [f for n, f in body_schema(schema, op).get("properties", {}).items() if n == "purpose"]
        roles = required.get(name)
        if roles is None:
            assert all("x-required-for" not in f for f in fields), name
            continue
        assert fields, f"{name} requires a purpose and takes none"
        for field in fields:
            assert field["x-required-for"] == roles, name
            assert f"Required when the caller is {' or '.join(a_role(r) for r in roles)} " in field["description"]


VALID = [rid(p) for p in "ABCDEFGHIJ"] + [rid("J").lower(), rid("A")[:6] + rid("A")[8:17]]
INVALID = ["11010119900101003", "1101011990010100300", "11010119900101003Y", "X" + rid("C")[1:], "x" * 18,
           "11010590012312X"]


def test_the_schema_gives_the_resident_id_pattern_everywhere_one_is_asked(live: Live) -> None:
    schema = httpx.get(live.url + "/openapi.json").json()
    seen = []
    for name, op in operations(schema):
        for p in op.get("parameters", []):
            if p["name"] == "resident_id":
                seen.append(f"{name} ?{p['name']}")
                assert p["schema"].get("pattern") == RESIDENT_ID_PATTERN, name
        props = body_schema(schema, op).get("properties", {})
        if "resident_id" in props:
            seen.append(f"{name} .resident_id")
            assert props["resident_id"].get("pattern") == RESIDENT_ID_PATTERN, name
        if "resident_ids" in props:
            seen.append(f"{name} .resident_ids")
            assert props["resident_ids"]["items"].get("pattern") == RESIDENT_ID_PATTERN, name
    assert len(seen) == 13, seen  # check (3), the file (4), objections (2), redress, the audit log, tokens, review
    assert schema["components"]["schemas"]["DecisionOut"]["properties"]["resident_id"]["pattern"] == \
        RESIDENT_ID_PATTERN
    for given in VALID:  # the pattern admits what the server accepts...
        ids.normalise_resident_id(given)
        assert re.fullmatch(RESIDENT_ID_PATTERN, given), given
    for given in INVALID:  # ...and refuses shapes the server refuses
        assert not re.fullmatch(RESIDENT_ID_PATTERN, given), given
        with pytest.raises(ids.IdError):
            ids.normalise_resident_id(given)


# -- roles with their article ------------------------------------------------------------------------
WORDING: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("auditor", "GET", "/v1/check", {"params": CHECK}, "an auditor may not call this endpoint"),
    ("agency", "GET", "/v1/check", {"params": CHECK}, "an agency may not call this endpoint"),
    ("provider", "POST", "/v1/tokens", {"json": {"role": "auditor"}}, "a provider may not call this endpoint"),
    ("resident", "GET", "/metrics", {}, "a resident may not call this endpoint"),
    ("operator", "GET", "/v1/check", {"params": {**CHECK, "purpose": ""}}, "an operator must give a purpose"),
]


@pytest.mark.parametrize(("who", "method", "path", "kwargs", "message"), WORDING, ids=[w[-1] for w in WORDING])
def test_messages_name_a_role_with_its_article(live: Live, who: str, method: str, path: str,
                                               kwargs: dict[str, Any], message: str) -> None:
    with live.client(who) as c:
        assert c.request(method, path, **kwargs).json()["error"]["message"] == message


def test_no_text_says_a_before_a_vowel_role() -> None:
    assert [a_role(r) for r in ROLES] == ["an operator", "an agency", "a provider", "a resident", "an auditor"]
    wrong = re.compile(r"\b[Aa] (agency|operator|auditor)\b|\b[Aa] \{[^}]*role[^}]*\}")
    files = [*ROOT.glob("src/credo/**/*.py"), *ROOT.glob("src/credo/**/*.html"), *ROOT.glob("docs/*.md"),
             ROOT / "README.md"]
    found = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for f in files
             for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if wrong.search(line)]
    assert found == []


def test_an_engine_failure_is_logged_and_its_sql_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    """A library error of status 500 is the server's fault: the client gets the generic answer, the
    log gets the step and its SQL."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from credo.api import errors
    from credo.engines.base import EngineError

    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise EngineError("duckdb", "hits", "SELECT secret FROM ledger_in", ValueError("no such column"))

    with caplog.at_level("ERROR"), TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom")
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal"
    assert "SELECT" not in answer.text and "ledger_in" not in answer.text
    assert "failed at step hits" in caplog.text and "SELECT secret FROM ledger_in" in caplog.text
