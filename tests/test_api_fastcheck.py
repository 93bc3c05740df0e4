"""The GET /v1/check fast path: it answers what it can, hands every refusal to the framework,
and answers exactly as the framework does (the same decision, the same audit entry, the same
metrics label).

The seam tests drive the middleware with a real runtime over a real store; the application
behind it is a recorder that stands in for the framework, so that which of the two answered
is observable. The comparison tests go through the whole app over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from fastapi.testclient import TestClient

from credo.api.fastcheck import FastCheck
from credo.app import create_app
from credo.serving.core import Core
from credo.serving.runtime import Runtime
from tests.conftest import City, rid

RAIL = "rail.high_speed.book"


class Framework:
    """Stands in for the application behind the middleware: records the requests handed on."""

    def __init__(self) -> None:
        self.handed: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.handed.append(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def seam(city: City) -> Iterator[tuple[FastCheck, Framework, Runtime]]:
    runtime = Runtime(Core(city.db))
    framework = Framework()
    try:
        yield FastCheck(framework, runtime), framework, runtime
    finally:
        runtime.close()


def ask(middleware: FastCheck, query: dict[str, str], token: str | None, *, method: str = "GET",
        path: str = "/v1/check") -> tuple[int, bytes]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope = {"type": "http", "method": method, "path": path, "headers": headers,
             "query_string": urlencode(query).encode()}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def test_a_check_is_answered_without_the_framework_and_audited(seam: Any, city: City) -> None:
    middleware, framework, runtime = seam
    status, body = ask(middleware, {"resident_id": rid("I"), "action": RAIL, "purpose": "boarding"},
                       city.tokens["provider"])
    d = orjson.loads(body)
    assert status == 200 and framework.handed == []
    assert d["decision"] == "deny" and [r["code"] for r in d["reasons"]] == ["list:tax_defaulter"]
    assert "records" not in d["reasons"][0]  # a provider never sees the records behind a reason
    auditor = runtime.authenticate(city.tokens["auditor"])
    logged = [(e["principal"], e["role"], e["event"], e["action"], e["decision"], e["purpose"])
              for e in runtime.hub.audit_page(auditor, limit=1000)
              if e["decision_id"] == d["decision_id"]]
    assert logged == [("provider:air", "provider", "decision", RAIL, "deny", "boarding")]


REFUSED = [
    ("no token", {"resident_id": rid("A"), "action": RAIL, "purpose": "p"}, None),
    ("wrong role", {"resident_id": rid("A"), "action": RAIL, "purpose": "p"}, "auditor"),
    ("unknown token", {"resident_id": rid("A"), "action": RAIL, "purpose": "p"}, "credo_nope"),
    ("no purpose", {"resident_id": rid("A"), "action": RAIL}, "provider"),
    ("no action", {"resident_id": rid("A"), "purpose": "p"}, "provider"),
    ("no resident", {"action": RAIL, "purpose": "p"}, "provider"),
    ("unknown action", {"resident_id": rid("A"), "action": "space.launch", "purpose": "p"}, "provider"),
    ("invalid ID", {"resident_id": rid("A")[:-1] + "0", "action": RAIL, "purpose": "p"}, "provider"),
    ("unregistered", {"resident_id": "110101199901010010", "action": RAIL, "purpose": "p"}, "provider"),
    ("another resident", {"resident_id": rid("B"), "action": RAIL}, "resident"),
]


@pytest.mark.parametrize(("query", "who"), [(q, w) for _, q, w in REFUSED], ids=[r[0] for r in REFUSED])
def test_every_refusal_is_handed_to_the_framework(seam: Any, city: City, query: dict[str, str],
                                                  who: str | None) -> None:
    middleware, framework, _ = seam
    token = city.tokens.get(who, who) if who else None
    assert ask(middleware, query, token) == (599, b"")
    assert framework.handed == [urlencode(query)]


def test_other_requests_pass_through(seam: Any, city: City) -> None:
    middleware, framework, _ = seam
    query = {"resident_id": rid("I"), "action": RAIL, "purpose": "boarding"}
    assert ask(middleware, query, city.tokens["provider"], method="POST")[0] == 599
    assert ask(middleware, query, city.tokens["provider"], path="/v1/check/batch")[0] == 599
    assert len(framework.handed) == 2


def test_the_rate_limit_hands_the_request_on_having_counted_it_once(city: City,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDO_RATE_LIMIT", "2")
    query = {"resident_id": rid("A"), "action": RAIL, "purpose": "boarding"}
    with TestClient(create_app(Core(city.db))) as c:
        headers = {"Authorization": f"Bearer {city.tokens['provider']}"}
        statuses = [c.get("/v1/check", params=query, headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("who", ["provider", "operator", "resident"])
def test_get_and_post_give_the_same_decision(city: City, who: str) -> None:
    """GET takes the fast path, POST the framework's route: the answers differ only in their ID and
    their receipt (the next entry of the log)."""
    with TestClient(create_app(Core(city.db))) as c:
        c.headers["Authorization"] = f"Bearer {city.tokens[who]}"
        for letter in "ABI":
            if who == "resident" and letter != "A":
                continue
            for action in (RAIL, "admin.approval"):
                ask_ = {"resident_id": rid(letter), "action": action, "purpose": "boarding"}
                got, posted = c.get("/v1/check", params=ask_), c.post("/v1/check", json=ask_)
                assert got.status_code == posted.status_code == 200
                assert got.headers["content-type"] == posted.headers["content-type"]
                g, p = got.json(), posted.json()
                assert g.pop("decision_id") != p.pop("decision_id")
                assert g.pop("receipt")["seq"] + 1 == p.pop("receipt")["seq"]
                assert g == p
        metrics = c.get("/metrics", headers={"Authorization": f"Bearer {city.tokens['operator']}"}).text
    fast = [line for line in metrics.splitlines()
            if 'method="GET",route="/v1/check",status="200"' in line]
    assert len(fast) == 1 and fast[0].endswith(" 2.0" if who == "resident" else " 6.0")  # the library writes floats
