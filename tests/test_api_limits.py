"""Limits an operator sets (CREDO_MAX_BODY, CREDO_RATE_LIMIT), in-process through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from credo.app import create_app
from credo.serving.core import Core
from tests.conftest import City, rid


@pytest.fixture
def client(city: City, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CREDO_MAX_BODY", "2000")
    monkeypatch.setenv("CREDO_RATE_LIMIT", "5")
    with TestClient(create_app(Core(city.db))) as c:
        c.headers["Authorization"] = f"Bearer {city.tokens['provider']}"
        yield c


def test_a_body_past_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    r = client.post("/v1/check/batch", json={"action": "admin.approval", "purpose": "p",
                                             "resident_ids": [rid("C")] * 200})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_a_token_past_its_rate_is_told_to_slow_down(client: TestClient) -> None:
    params = {"resident_id": rid("C"), "action": "admin.approval", "purpose": "p"}
    codes = [client.get("/v1/check", params=params).status_code for _ in range(12)]
    assert codes[:5] == [200] * 5 and 429 in codes
    assert client.get("/v1/check", params=params).json()["error"]["code"] == "rate_limited"


def test_unknown_routes_and_methods_keep_the_error_shape(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.delete("/v1/check")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
