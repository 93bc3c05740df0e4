"""Load: agencies writing and providers deciding at once, against one ``credo serve`` on 127.0.0.1.

For a bounded time (10 s; CREDO_LONG=1: 60 s) three agency clients send record batches (arrears, and
settlements resolving earlier arrears, from two tax tokens; donations keyed by resident ID or phone from
the blood centre) while three provider clients ask for single decisions and flight manifests, all
against a server with two worker processes. Then:

* no answer was a 5xx (nor anything but 200);
* every record of every acknowledged batch is in the ledger, and every decision answered is in the
  audit log under its ``decision_id``;
* the audit chain verifies, and the standings the server stored incrementally, batch by batch, equal a
  full recompute of everyone at the same time (CREDO_NOW fixes the clock for both).
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from credo import scoring
from credo.service import Credo
from credo.store import transaction
from tests.conftest import NOW, PEOPLE, PHONE_B, City, build_city, rid, running

LONG = os.environ.get("CREDO_LONG") == "1"
SECONDS = 60.0 if LONG else 10.0
ACTIONS = ("rail.high_speed.book", "admin.approval")


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    records: list[str] = field(default_factory=list)  # record_ids of acknowledged batches ("agency:id")
    decisions: list[str] = field(default_factory=list)
    batches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1


def agency(url: str, token: str, name: str, kind: str, deadline: float, tally: Tally, seed: int) -> None:
    """Batches of 1-25 rows until the deadline; tax clients also settle arrears acknowledged earlier."""
    rng = random.Random(seed)
    mine: list[tuple[str, str]] = []  # acknowledged arrears not settled yet: (record_id, subject)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            rows = []
            for i in range(rng.randint(1, 25)):
                record_id = f"{name}-{n}-{i}"
                subject = rid(rng.choice(list(PEOPLE)))
                if kind == "donation":
                    row = {"type": "civic.donation", "subject": rng.choice([subject, PHONE_B])}
                elif mine and rng.random() < 0.2:
                    settled, subject = mine.pop(rng.randrange(len(mine)))
                    row = {"type": "tax.settled", "subject": subject, "resolves": settled}
                else:
                    row = {"type": "tax.arrears", "subject": subject}
                rows.append({"record_id": record_id, "occurred_at": f"2024-0{rng.randint(1, 8)}-1{rng.randint(0, 9)}",
                             **row})
            r = c.post("/v1/records", json=rows)
            tally.note(r.status_code)
            if r.status_code != 200:
                continue
            results = r.json()["results"]
            assert all(x["status"] == "accepted" for x in results), results
            with tally.lock:
                tally.batches += 1
                tally.records += [f"{'blood-centre' if kind == 'donation' else 'tax'}:{x['record_id']}" for x in rows]
            mine += [(x["record_id"], x["subject"]) for x in rows if x["type"] == "tax.arrears"]


def provider(url: str, token: str, deadline: float, tally: Tally, seed: int) -> None:
    """Single checks, and now and then a manifest of the whole city."""
    rng = random.Random(seed)
    everyone = [rid(p) for p in PEOPLE]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        while time.monotonic() < deadline:
            if rng.random() < 0.1:
                r = c.post("/v1/check/batch", json={"action": rng.choice(ACTIONS), "purpose": "load",
                                                    "resident_ids": everyone})
                ids = [d["decision_id"] for d in r.json()["decisions"]] if r.status_code == 200 else []
            else:
                r = c.get("/v1/check", params={"resident_id": rng.choice(everyone), "action": rng.choice(ACTIONS),
                                               "purpose": "load"})
                ids = [r.json()["decision_id"]] if r.status_code == 200 else []
            tally.note(r.status_code)
            with tally.lock:
                tally.decisions += ids


def extra_token(city: City) -> str:
    """A second tax token: two agency principals writing the same agency's ledger at once."""
    credo = Credo.open(city.db)
    try:
        return credo.create_token("agency", agency="tax")[0]
    finally:
        credo.close()


def standings(credo: Credo) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    con = credo.con
    return (con.execute("SELECT resident, score, grade, changes_at FROM standings ORDER BY resident").fetchall(),
            con.execute("SELECT resident, list, agency, record_id, type, occurred_at, takes_effect, expires_at "
                        "FROM standing_hits ORDER BY ALL").fetchall())


def test_agencies_and_providers_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDO_NOW", NOW)
    city = build_city(tmp_path / "city")
    tax2 = extra_token(city)
    tally = Tally()
    with running(city, workers=2) as live:
        deadline = time.monotonic() + SECONDS
        tokens = city.tokens
        threads = [threading.Thread(target=agency, args=(live.url, tokens["agency"], "t1", "tax", deadline, tally, 1)),
                   threading.Thread(target=agency, args=(live.url, tax2, "t2", "tax", deadline, tally, 2)),
                   threading.Thread(target=agency, args=(live.url, tokens["agency_blood"], "b1", "donation", deadline,
                                                         tally, 3)),
                   *[threading.Thread(target=provider, args=(live.url, tokens["provider"], deadline, tally, 10 + i))
                     for i in range(3)]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 120)
        assert not any(t.is_alive() for t in threads)
    requests = sum(tally.statuses.values())
    print(f"\n{SECONDS:.0f} s: {requests} requests {dict(tally.statuses)}; {tally.batches} batches, "
          f"{len(tally.records)} records acknowledged; {len(tally.decisions)} decisions answered")
    assert set(tally.statuses) == {200}, tally.statuses
    assert tally.batches >= 6 and len(tally.decisions) >= 100

    copy = tmp_path / "copy.duckdb"  # the server has stopped (and checkpointed): take the file as it is
    shutil.copy(city.db, copy)
    credo = Credo.open(copy)
    try:
        con = credo.con
        stored = set(con.execute("SELECT agency || ':' || record_id FROM ledger").fetchall())
        missing = [r for r in tally.records if (r,) not in stored]
        assert not missing, f"{len(missing)} acknowledged records are not in the ledger: {missing[:5]}"
        logged = {r[0] for r in con.execute("SELECT decision_id FROM audit WHERE event = 'decision'").fetchall()}
        unlogged = [d for d in tally.decisions if d not in logged]
        assert not unlogged, f"{len(unlogged)} decisions answered but not in the audit log"
        verdict = credo.verify_audit()
        assert verdict.ok, verdict.problem
        before = standings(credo)
        with transaction(con):
            scoring.rescore(con, credo.policy, credo.now())
        assert standings(credo) == before, "stored standings differ from a full recompute"
    finally:
        credo.close()
