"""Time-driven changes reach the feed (spec §8): a grace period that ends while the server runs is in
the feed within a minute (here: within seconds) with cause ``grace_ended``, and one that ended while
it was stopped is there once it has started, told once however often it starts.

Resident D of ``conftest`` has a tax arrears record of 2024-08-30, on ``tax_defaulter`` (grace 5
days): pending until 2024-09-04 00:00, so rail is allowed until then and denied after. The clock is
fixed (``CREDO_NOW``) and moved past the grace end; nobody reads or writes meanwhile.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from credo.ids import parse_resident_id
from credo.principals import OPERATOR_CLI
from credo.serving.core import Core
from tests.conftest import NOW, City, rid, running

D = rid("D")
AFTER = "2024-09-05T10:00:00+08:00"
GRACE_END = "2024-09-04T00:00:00+08:00"
RAIL = "rail.high_speed.book"


def page(core: Core, after: int) -> dict[str, Any]:
    """A page of the whole feed, its changes parsed (the service gives them as JSON text)."""
    found = core.feed_page(OPERATOR_CLI, after, 1000, None)
    return {**found, "changes": json.loads(found["changes"])}


def rows_of_d(changes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["decision"], c["cause"], c["effective_at"]) for c in changes if c["resident_id"] == D]


def test_a_grace_end_while_serving_is_in_the_feed_within_seconds(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    core = Core(city.db)
    try:
        head = page(core, 0)["head"]
        assert rows_of_d(page(core, 0)["changes"]) == []
        generation = core.generation()
        monkeypatch.setenv("CREDO_NOW", AFTER)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and page(core, head)["head"] == head:
            time.sleep(0.2)
        after = page(core, head)
        assert rows_of_d(after["changes"]) == [("deny", "grace_ended", GRACE_END)]
        assert [c["seq"] for c in after["changes"]] == [head + 1]
        assert core.generation() > generation  # announced: every decision index re-reads D
        assert core.scheduler is not None and core.scheduler.runs == 1
        told = [n for n in core.notices(parse_resident_id(D), who=OPERATOR_CLI)
                if n["kind"] == "list.in_force"]
        assert len(told) == 1
        time.sleep(2.5)  # more ticks: nothing more to tell
        assert page(core, head)["head"] == head + 1
    finally:
        core.close()


def test_a_grace_end_while_stopped_is_in_the_feed_at_start_once(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(City, "env", lambda self: {"CREDO_DB": str(self.db), "CREDO_NOW": AFTER,
                                                   "CREDO_RATE_LIMIT": "0"})
    assert NOW < AFTER
    for _ in range(2):
        with running(city) as live, live.client("operator") as operator:
            changes = operator.get("/v1/feed", params={"limit": 1000}).json()["changes"]
            assert rows_of_d(changes) == [("deny", "grace_ended", GRACE_END)]
            with live.client("provider") as air:
                check = air.get("/v1/check", params={"resident_id": D, "action": RAIL, "purpose": "time test"})
                assert check.json()["decision"] == "deny"
