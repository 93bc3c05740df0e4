"""The provider feed over a real ``credo serve`` (spec §8): snapshot, changes in order, acknowledgment.

The tiny city of ``conftest``, with one more provider token bound to rail (``--actions``). A
provider takes the snapshot, then the city changes through the API (a record, a revocation, an
objection opened and upheld, a policy); following the feed from the snapshot's ``seq`` in small
pages, it gets every change once, in order, with no gap, only on its actions, and the snapshot
with the changes applied is what the server decides for every resident at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from credo.service import Credo
from tests.cityfactory import POLICY
from tests.conftest import PEOPLE, City, Live, build_city, fixed_clock, rid, running

RAIL, ADMIN = "rail.high_speed.book", "admin.approval"
WHY = {"purpose": "feed test"}
Decisions = dict[tuple[str, str], tuple[str, list[str]]]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    city = build_city(tmp_path_factory.mktemp("feed"))
    with fixed_clock("2024-09-01T10:00:00+08:00"):
        credo = Credo.open(city.db)
        try:
            city.tokens["rail"] = credo.create_token("provider", provider="rail", actions=[RAIL])[0]
        finally:
            credo.close()
    with running(city) as server:
        yield server


def follow(client: httpx.Client, after: int, limit: int = 3, **params: str) -> list[dict[str, Any]]:
    """Every change after ``after``, page by page."""
    out: list[dict[str, Any]] = []
    while True:
        page = client.get("/v1/feed", params={"after": after, "limit": limit, **params})
        assert page.status_code == 200, page.text
        body = page.json()
        out += body["changes"]
        if body["next"] == after:
            return out
        assert body["next"] > after
        after = body["next"]


def applied(snapshot: dict[str, Any], changes: list[dict[str, Any]]) -> Decisions:
    held: Decisions = {(d["resident_id"], d["action"]): (d["decision"], d["benefits"]) for d in snapshot["decisions"]}
    for c in changes:
        held[(c["resident_id"], c["action"])] = (c["decision"], c["benefits"])
    return {k: v for k, v in held.items() if v != ("allow", [])}


def decided(client: httpx.Client, actions: tuple[str, ...]) -> Decisions:
    out: Decisions = {}
    for action in actions:
        batch = client.post("/v1/check/batch", json={"action": action, "resident_ids": [rid(p) for p in PEOPLE],
                                                      **WHY})
        assert batch.status_code == 200, batch.text
        for d in batch.json()["decisions"]:
            if (d["decision"], d["benefits"]) != ("allow", []):
                out[(d["resident_id"], action)] = (d["decision"], d["benefits"])
    return out


def change_the_city(live: Live) -> None:
    with live.client("agency") as tax, live.client("resident") as a, live.client("operator") as operator:
        assert tax.post("/v1/records", json=[{"record_id": "f1", "type": "tax.arrears", "subject": rid("C"),
                                              "occurred_at": "2024-07-01"}]).status_code == 200
        assert tax.post("/v1/records/x3/revoke", json={"reason": "paid"}).status_code == 200
        opened = a.post("/v1/objections", json={"record": "tax:x1", "reason": "not mine"})
        assert opened.status_code == 201, opened.text
        assert tax.post(f"/v1/objections/{opened.json()['id']}/resolve",
                        json={"uphold": True, "answer": "right"}).status_code == 200
        wider = POLICY.replace("policy: tiny-1", "policy: tiny-2").replace("grades: [AA]", "grades: [AA, A]")
        assert operator.put("/v1/policy", content=wider.encode()).status_code == 200


def test_snapshot_and_follow_is_what_the_server_decides(live: Live) -> None:
    with live.client("rail") as rail, live.client("provider") as air, live.client("operator") as operator:
        snap_rail = rail.get("/v1/feed/snapshot").json()
        snap_air = air.get("/v1/feed/snapshot").json()
        assert snap_rail["actions"] == [RAIL] and {d["action"] for d in snap_rail["decisions"]} == {RAIL}
        assert snap_air["actions"] is None and {d["action"] for d in snap_air["decisions"]} == {RAIL, ADMIN}
        assert applied(snap_rail, []) == decided(operator, (RAIL,))
        change_the_city(live)
        rail_changes = follow(rail, snap_rail["seq"])
        air_changes = follow(air, snap_air["seq"], limit=2)
        everything = follow(operator, 0, limit=4)
        assert applied(snap_rail, rail_changes) == decided(operator, (RAIL,))
        assert applied(snap_air, air_changes) == decided(operator, (RAIL, ADMIN))
    seqs = [c["seq"] for c in everything]
    assert seqs == list(range(1, len(seqs) + 1))  # in order, no gap, no duplicate
    assert [c for c in everything if c["seq"] > snap_air["seq"]] == air_changes
    assert rail_changes == [c for c in air_changes if c["action"] == RAIL]
    causes = {(c["resident_id"], c["action"]): c["cause"] for c in air_changes}
    # the wider policy gives grade A a green channel: A and E (their records withdrawn) and J (no record)
    assert causes == {(rid("C"), RAIL): "record", (rid("E"), RAIL): "revocation", (rid("A"), RAIL): "objection",
                      (rid("A"), ADMIN): "policy", (rid("E"), ADMIN): "policy", (rid("J"), ADMIN): "policy"}
    assert all(set(c) == {"seq", "resident_id", "action", "decision", "benefits", "reasons", "effective_at",
                          "cause", "policy"} for c in air_changes)


def test_a_provider_reads_its_own_feed_and_an_operator_any(live: Live) -> None:
    with live.client("rail") as rail, live.client("operator") as operator:
        assert rail.get("/v1/feed", params={"provider": "air"}).status_code == 403
        assert rail.get("/v1/feed", params={"provider": "rail"}).status_code == 200
        as_rail = follow(operator, 0, limit=50, provider="rail")
        assert as_rail == follow(rail, 0, limit=50) and {c["action"] for c in as_rail} == {RAIL}
        missing = operator.get("/v1/feed/snapshot", params={"provider": "nobody"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_provider"
        assert operator.post("/v1/feed/ack", json={"seq": 1}).status_code == 403
        assert rail.get("/v1/feed", params={"limit": 0}).status_code == 422


def test_the_acknowledged_position_is_kept_and_never_moves_back(live: Live) -> None:
    with live.client("rail") as rail:
        head = rail.get("/v1/feed", params={"after": 0, "limit": 1}).json()["head"]
        assert rail.post("/v1/feed/ack", json={"seq": 2}).json() == {"provider": "rail", "seq": 2, "head": head}
        assert rail.post("/v1/feed/ack", json={"seq": 1}).json()["seq"] == 2
        beyond = rail.post("/v1/feed/ack", json={"seq": head + 1})
        assert beyond.status_code == 422 and beyond.json()["error"]["code"] == "beyond_feed"
        assert rail.post("/v1/feed/ack", json={"seq": -1}).status_code == 422


def test_the_acknowledgment_outlives_the_server(tmp_path: Any) -> None:
    city: City = build_city(tmp_path / "city")
    with running(city) as first, first.client("provider") as air:
        assert air.post("/v1/feed/ack", json={"seq": 3}).status_code == 200
    with fixed_clock("2024-09-01T10:00:00+08:00"):
        credo = Credo.open(city.db)
        try:
            assert credo.con.execute("SELECT provider, max(seq) FROM feed_acks GROUP BY ALL").fetchall() == [("air", 3)]
        finally:
            credo.close()
