"""``credo serve --workers 2``: the hub process holds the database, two workers answer.

A write through one worker must reach the other worker's decision index before
its next decision; the decisions of both go into one hash chain. A keep-alive
connection stays with one worker, and a decision's id starts with its process's
prefix, so the test holds one connection to each worker.
"""

from __future__ import annotations

import time

import httpx

from tests.conftest import City, rid, running

RAIL = "rail.high_speed.book"


def decide(client: httpx.Client, resident_id: str) -> dict[str, str]:
    r = client.get("/v1/check", params={"resident_id": resident_id, "action": RAIL, "purpose": "boarding"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def worker_of(client: httpx.Client) -> str:
    """The process prefix of a decision for a resident without a measure (J)."""
    return decide(client, rid("J"))["decision_id"][:22]


def test_two_workers_share_one_store_and_one_chain(city: City) -> None:
    with running(city, workers=2) as live:
        clients: dict[str, httpx.Client] = {}
        deadline = time.monotonic() + 60  # the second worker may still be loading its index
        while len(clients) < 2 and time.monotonic() < deadline:  # new connections until each worker holds one
            client = live.client("provider")
            worker = worker_of(client)
            if worker in clients:
                client.close()
                time.sleep(0.1)
            else:
                clients[worker] = client
        assert len(clients) == 2, "one worker took every connection"
        made = [decide(c, rid("C")) for c in clients.values()]
        assert {d["decision"] for d in made} == {"allow"}
        with live.client("agency") as c:
            r = c.post("/v1/records", json=[{"record_id": "w1", "type": "tax.arrears", "subject": rid("C"),
                                             "occurred_at": "2024-08-01"}])
        assert r.status_code == 200 and r.json()["accepted"] == 1
        after = [decide(c, rid("C")) for c in clients.values()]
        assert {d["decision"] for d in after} == {"deny"}  # in both workers, at once
        for c in clients.values():
            c.close()
        with live.client("auditor") as c:
            logged = {e["decision_id"] for e in c.get("/v1/audit", params={"limit": 1000}).json()["entries"]}
            assert c.get("/v1/audit/verify").json()["ok"] is True
        assert {d["decision_id"] for d in made + after} <= logged
