"""Crash safety of the server: ``credo serve`` killed (SIGKILL, its whole process group) during record batches.

Each trial starts ``credo serve`` on the lane's database (so every restart also recovers from what the
previous kill left), has two agency clients send small record batches (``POST /v1/records``) as fast as
they are answered, and kills the hub and its worker together at a random moment. Then the database is
reopened and:

* every batch acknowledged (HTTP 200) before the kill is in the ledger whole: all its rows (counted by
  the batch's ``record_id`` prefix), and its ``batches`` row says so;
* a batch in flight at the kill is all in or all out, never half in;
* the ledger, the batch records and the audit log moved together (one ``batch.ingested`` entry per batch
  that landed), and the audit chain verifies.

Two lanes (two databases, two servers) run side by side so that the default run's trials fit in about
a minute; CREDO_LONG=1 runs three times as many. The figures go to docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from credo.service import Credo
from tests.conftest import PEOPLE, City, build_city, free_port, rid

LONG = os.environ.get("CREDO_LONG") == "1"
LANES = 2
TRIALS_PER_LANE = 30 if LONG else 10
CLIENTS = 2
MAX_BATCH = 12  # rows; small, so that many batches are in flight around each kill
KILL_WITHIN = 0.4  # seconds after the first acknowledged batch of a trial


@dataclass
class Batch:
    prefix: str
    rows: int
    acked: bool = False
    source: str | None = None


@dataclass
class Figures:
    trials: int = 0
    acked: int = 0
    acked_rows: int = 0
    in_flight: int = 0
    in_flight_landed: int = 0
    seconds_to_ready: list[float] = field(default_factory=list)


def serve(city: City, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``credo serve`` in a session of its own (so that killpg reaches the hub and every worker)."""
    port = free_port()
    log = (city.folder / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from credo.cli import main; main()", "serve", "--host", "127.0.0.1",
         "--port", str(port)],
        env={**os.environ, **city.env(), "TMPDIR": str(tmp)}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, (city.folder / "serve.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.03)
    raise AssertionError("credo serve did not become ready")


def sender(url: str, token: str, trial: int, client: int, sent: list[Batch], first: threading.Event,
           stop: threading.Event, seed: int) -> None:
    """Send batches until the server dies; note each before sending and whether it was acknowledged."""
    rng = random.Random(seed)
    people = list(PEOPLE)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        n = 0
        while not stop.is_set():
            n += 1
            batch = Batch(f"k{trial}c{client}b{n}", rng.randint(1, MAX_BATCH))
            rows = [{"record_id": f"{batch.prefix}-{i}", "type": "tax.arrears",
                     "subject": rid(rng.choice(people)), "occurred_at": "2024-08-01",
                     "attributes": {"trial": trial}} for i in range(batch.rows)]
            sent.append(batch)
            try:
                r = c.post("/v1/records", json=rows)
            except httpx.HTTPError:
                return  # the kill: this batch's fate is for the database to tell
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["accepted"] == batch.rows, body
            batch.acked, batch.source = True, r.headers["x-credo-source"]
            first.set()


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def check(db: Path, trial: int, batches: list[Batch], figures: Figures) -> None:
    """Reopen the killed database: acknowledged batches whole, none half in, the audit chain intact."""
    credo = Credo.open(db)
    try:
        con = credo.con
        landed = dict(con.execute(
            "SELECT regexp_extract(record_id, '^(k[0-9]+c[0-9]+b[0-9]+)-', 1) AS prefix, count(*) "
            "FROM ledger WHERE agency = 'tax' AND starts_with(record_id, 'k') GROUP BY prefix").fetchall())
        for b in batches:
            rows = landed.get(b.prefix, 0)
            assert rows in (0, b.rows), f"batch {b.prefix} is half in: {rows} of {b.rows} rows"
            if b.acked:
                assert rows == b.rows, f"acknowledged batch {b.prefix} lost ({rows} of {b.rows} rows)"
                assert con.execute("SELECT accepted FROM batches WHERE source = ?",
                                   [b.source]).fetchall() == [(b.rows,)]
            else:
                figures.in_flight += 1
                figures.in_flight_landed += rows == b.rows
        mine = {p for p in landed if p.startswith(f"k{trial}c")}
        assert mine <= {b.prefix for b in batches}, f"rows of batches never sent: {mine}"
        [(api_batches,)] = con.execute("SELECT count(*) FROM batches WHERE principal = 'agency:tax'").fetchall()
        [(logged,)] = con.execute("SELECT count(*) FROM audit WHERE event = 'batch.ingested' "
                                  "AND principal = 'agency:tax'").fetchall()
        [(with_rows,)] = con.execute("SELECT count(DISTINCT batch) FROM ledger WHERE agency = 'tax' "
                                     "AND starts_with(record_id, 'k')").fetchall()
        assert api_batches == logged == with_rows, (api_batches, logged, with_rows)
        verdict = credo.verify_audit()
        assert verdict.ok, verdict.problem
    finally:
        credo.close()
    figures.acked += sum(b.acked for b in batches)
    figures.acked_rows += sum(b.rows for b in batches if b.acked)


def lane(number: int, root: Path) -> Figures:
    city = build_city(root / f"lane{number}")
    tmp = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))  # short: the hub's Unix socket goes in here
    figures = Figures()
    rng = random.Random(8000 + number)
    try:
        for trial in range(number * 1000, number * 1000 + TRIALS_PER_LANE):
            started = time.monotonic()
            proc, url = serve(city, tmp)
            figures.seconds_to_ready.append(time.monotonic() - started)
            sent: list[list[Batch]] = [[] for _ in range(CLIENTS)]
            first, stop = threading.Event(), threading.Event()
            threads = [threading.Thread(target=sender, args=(url, city.tokens["agency"], trial, c, sent[c], first,
                                                             stop, rng.randrange(2**32)), daemon=True)
                       for c in range(CLIENTS)]
            try:
                for t in threads:
                    t.start()
                assert first.wait(30), "no batch was acknowledged"
                time.sleep(rng.uniform(0, KILL_WITHIN))
            finally:
                stop.set()
                kill_group(proc)
                for t in threads:
                    t.join(30)
            for leftover in tmp.iterdir():  # the killed hub's socket folder
                shutil.rmtree(leftover, ignore_errors=True)
            check(city.db, trial, [b for s in sent for b in s], figures)
            figures.trials += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


def test_killed_server_keeps_every_acknowledged_batch_whole(tmp_path: Path) -> None:
    with ThreadPoolExecutor(LANES) as pool:
        results = list(pool.map(lane, range(LANES), [tmp_path] * LANES))
    total = Figures()
    for f in results:
        total.trials += f.trials
        total.acked += f.acked
        total.acked_rows += f.acked_rows
        total.in_flight += f.in_flight
        total.in_flight_landed += f.in_flight_landed
        total.seconds_to_ready += f.seconds_to_ready
    print(f"\n{total.trials} kills: {total.acked} acknowledged batches ({total.acked_rows} rows) all whole; "
          f"{total.in_flight} in flight at a kill: {total.in_flight_landed} landed whole, "
          f"{total.in_flight - total.in_flight_landed} not at all; none half in; audit verified after each; "
          f"server ready in {min(total.seconds_to_ready):.1f}-{max(total.seconds_to_ready):.1f} s")
    assert total.trials == LANES * TRIALS_PER_LANE >= 20
    assert total.acked >= total.trials  # batches really were flowing at each kill


def test_a_restarted_server_serves_what_the_killed_one_acknowledged(city: City) -> None:
    """After a kill, the restarted server itself (not only the file) answers from the recovered state."""
    tmp = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))
    try:
        proc, url = serve(city, tmp)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {city.tokens['agency']}"}) as c:
                r = c.post("/v1/records", json=[{"record_id": "late-1", "type": "tax.arrears", "subject": rid("C"),
                                                 "occurred_at": "2024-08-01"}])
                assert r.status_code == 200 and r.json()["accepted"] == 1
        finally:
            kill_group(proc)
        for leftover in tmp.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        proc, url = serve(city, tmp)
        try:
            headers = {"Authorization": f"Bearer {city.tokens['provider']}"}
            d = httpx.get(f"{url}/v1/check", headers=headers, params={
                "resident_id": rid("C"), "action": "rail.high_speed.book", "purpose": "after the crash"}).json()
            assert d["decision"] == "deny"  # on the tax defaulters' list since 2024-08-06 (grace 5d)
            headers = {"Authorization": f"Bearer {city.tokens['operator']}"}
            records = httpx.get(f"{url}/v1/residents/{rid('C')}/records", headers=headers,
                                params={"purpose": "after the crash"}).json()["records"]
            assert [x["record_id"] for x in records] == ["late-1"]
            assert httpx.get(f"{url}/v1/audit/verify", headers=headers).json()["ok"]
        finally:
            kill_group(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
