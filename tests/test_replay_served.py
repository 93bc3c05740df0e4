"""Decisions the server answers while an agency writes replay the same (docs/corrections.md, "Replay").

A real ``credo serve`` (one worker and two) on loopback: threads ask single and batch checks about
residents whose records an agency adds and revokes through the API, back to back, for a few seconds,
the clock standing still. A decision asked while a write runs is answered from the index as it was
and journaled after the write's audit entry, since the write holds the audit writer until it ends:
it falls in the window between the write's entry and the index taking the write in. Once the server
has stopped, every logged decision about those residents is replayed through the library; the test
also shows that decisions fell in that window and that, counted up to their own entries, some of
them would have replayed differently (what each decision's ``known`` prevents).
"""

from __future__ import annotations

import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from credo import decisions, known, replay, standing
from credo.ids import resident_key
from credo.known import Known
from tests.conftest import City, build_city, rid, running

RAIL = "rail.high_speed.book"
BOARDING = {"purpose": "boarding"}
TOGGLED = "BC"
"""The residents whose records the agency adds and revokes (each record denies them rail)."""
SECONDS = 4.0
"""At least this long, and until the agency has made ``PAIRS`` additions and revocations (a write
takes up to a second on a loaded machine)."""
PAIRS = 3
CHECKERS = 4
SAMPLE = 60
"""Decisions outside the window replayed, spread evenly over the run."""


def _agency(client: httpx.Client, writes: list[str]) -> None:
    """Add a tax arrears record for a toggled resident, then revoke it, ``PAIRS`` times."""
    for n in range(PAIRS):
        letter = TOGGLED[n % len(TOGGLED)]
        record = f"w{n}"
        row = {"record_id": record, "type": "tax.arrears", "subject": rid(letter), "occurred_at": "2024-07-01"}
        added = client.post("/v1/records", json=[row])
        assert added.status_code == 200 and added.json()["accepted"] == 1, added.text
        revoked = client.post(f"/v1/records/{record}/revoke", json={"reason": "paid"})
        assert revoked.status_code == 200, revoked.text
        writes += [f"add {record}", f"revoke {record}"]


def _checker(client: httpx.Client, stop: threading.Event, made: list[tuple[str, str]], i: int) -> None:
    manifest = {"action": RAIL, "resident_ids": [rid(p) for p in "ABCDE"], **BOARDING}
    n = 0
    while not stop.is_set():
        if (n + i) % 3:
            one = client.get("/v1/check", params={"resident_id": rid(TOGGLED[n % 2]), "action": RAIL, **BOARDING})
            assert one.status_code == 200, one.text
            made.append((one.json()["decision_id"], one.json()["decision"]))
        else:
            many = client.post("/v1/check/batch", json=manifest)
            assert many.status_code == 200, many.text
            made += [(d["decision_id"], d["decision"]) for d in many.json()["decisions"]]
        n += 1


def _old_rule(con: duckdb.DuckDBPyConnection, entry: dict[str, Any]) -> str:
    """The decision recomputed from every write whose entry precedes its own (the rule before ``known``)."""
    then = Known(entry["at"], entry["seq"])
    policy = known.policy_at(con, then)
    found = standing.at(con, policy, entry["resident"], entry["at"], then)
    return decisions.decide(policy, found, entry["action"], entry["at"]).decision


@pytest.mark.parametrize("workers", [1, 2])
def test_decisions_answered_while_an_agency_writes_replay_the_same(tmp_path: Path, workers: int) -> None:
    city: City = build_city(tmp_path / "served")
    made: list[tuple[str, str]] = []
    writes: list[str] = []
    stop = threading.Event()
    with running(city, workers=workers) as live:
        clients = [live.client("provider") for _ in range(CHECKERS)]
        agency = live.client("agency")
        threads = [threading.Thread(target=_checker, args=(c, stop, made, i)) for i, c in enumerate(clients)]
        threads.append(threading.Thread(target=_agency, args=(agency, writes)))
        started = time.monotonic()
        for t in threads:
            t.start()
        threads[-1].join(120)
        time.sleep(max(0.0, SECONDS - (time.monotonic() - started)))
        stop.set()
        for t in threads:
            t.join(60)
        for c in [*clients, agency]:
            c.close()
    assert not any(t.is_alive() for t in threads)
    said = dict(made)
    assert len(writes) == 2 * PAIRS and {"allow", "deny"} <= set(said.values())  # the writes changed decisions

    with closing(duckdb.connect(str(city.db), read_only=True)) as con:
        written = sorted(int(s) for (s,) in con.execute("SELECT seq FROM known").fetchall())
        assert len(written) >= len(writes)
        keys = {resident_key(rid(p)) for p in TOGGLED}
        toggled = [(did, e) for did, e in ((did, replay.logged(con, did)) for did in said) if e["resident"] in keys]
        window = [(did, e) for did, e in toggled  # chained after a write the index answering it had not taken in
                  if any(e["detail"]["known"] < s < e["seq"] for s in written)]
        # every decision in the window, and an even sample of the rest (a replay costs tens of ms)
        sample = {did for did, _ in toggled[::max(1, len(toggled) // SAMPLE)]} | {did for did, _ in window}
        replayed = [replay.replay(con, did, "Asia/Shanghai") for did in sorted(sample)]
        would_differ = [e for _, e in window if _old_rule(con, e) != e["decision"]]
    print(f"workers={workers} writes={len(writes)} decisions={len(said)} replayed={len(replayed)} "
          f"window={len(window)} would_differ={len(would_differ)}")
    assert [r["differences"] for r in replayed if r["differences"]] == []
    assert [r["replayed"]["decision"] for r in replayed] == [said[r["decision_id"]] for r in replayed]
    assert len(replayed) >= min(SAMPLE, len(toggled))
    assert window, "no decision fell between a write's audit entry and the index taking it in"
    assert would_differ, f"{len(window)} decisions in the window, none changed by the write before them"

