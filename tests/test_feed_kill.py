"""The feed survives a kill -9 (spec §8: durable and ordered, the same after a kill and restart).

``credo serve`` ingests batches of tax arrears records through the API, each record putting one
more resident on ``tax_defaulter`` (occurred long ago: no grace left, so rail is denied at once and
each accepted record is one feed row). While a batch is in flight the server's whole process group
is killed with SIGKILL. After a restart: the feed's seqs run 1, 2, 3, ... with no gap and no
duplicate; its rows of the new records are exactly the residents whose record the ledger holds
(none of the killed batch, all of every batch that was answered), one row each; and the next batch
goes on numbering from the last.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import httpx

from credo import ids
from credo.service import Credo
from tests.conftest import City, _wait_ready, build_city, fixed_clock, free_port, running, write_csv

RAIL = "rail.high_speed.book"
BATCH = 400
PEOPLE = [ids.make_resident_id("110101", date(1980, 1, 1) + timedelta(days=n // 1000), n % 1000)
          for n in range(40 * BATCH)]


def register(city: City) -> None:
    rows = [("resident_id", "name", "district", "status", "status_date"),
            *[(p, f"Resident {i}", "110101", "", "") for i, p in enumerate(PEOPLE)]]
    with fixed_clock("2024-09-01T10:00:00+08:00"), closing(Credo.open(city.db)) as credo:
        credo.ingest_files("population", [write_csv(city.folder / "many.csv", rows)])


def batch(n: int) -> list[dict[str, str]]:
    return [{"record_id": f"k{n}-{i}", "type": "tax.arrears", "subject": p, "occurred_at": "2024-07-01"}
            for i, p in enumerate(PEOPLE[n * BATCH:(n + 1) * BATCH])]


def serve(city: City) -> tuple[subprocess.Popen[bytes], str]:
    """``credo serve`` in its own process group (so that SIGKILL reaches its workers too)."""
    port = free_port()
    log = city.folder / f"kill-{port}.log"
    proc = subprocess.Popen([sys.executable, "-c", "from credo.cli import main; main()", "serve", "--host",
                             "127.0.0.1", "--port", str(port)], env={**os.environ, **city.env()},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, proc, log)
    return proc, url


def feed_rows(db: Path) -> tuple[list[int], list[tuple[int, str]], set[int]]:
    """(every seq in order, (resident, cause) of the rail denials of new records, residents whose new
    record the ledger holds)."""
    with fixed_clock("2024-09-01T10:00:00+08:00"), closing(Credo.open(db)) as credo:
        seqs = [s for (s,) in credo.con.execute("SELECT seq FROM feed ORDER BY seq").fetchall()]
        denied = credo.con.execute(
            "SELECT f.resident, f.cause FROM feed f WHERE f.action = ? AND f.decision = 'deny' AND f.resident IN "
            "(SELECT resident FROM ledger WHERE record_id LIKE 'k%') ORDER BY f.seq", [RAIL]).fetchall()
        held = {r for (r,) in credo.con.execute("SELECT resident FROM ledger WHERE record_id LIKE 'k%'").fetchall()}
    return seqs, [(int(r), str(c)) for r, c in denied], {int(r) for r in held}


def test_a_kill_mid_ingest_leaves_the_feed_whole(tmp_path: Path) -> None:
    city = build_city(tmp_path / "city")
    register(city)
    proc, url = serve(city)
    answered: list[int] = []
    in_flight: list[int] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {city.tokens['agency']}"},
                          timeout=60) as client:
            for n in range(len(PEOPLE) // BATCH):
                if stop.is_set():
                    return
                in_flight.append(n)
                try:
                    done = client.post("/v1/records", json=batch(n))
                except httpx.HTTPError:
                    return
                assert done.status_code == 200, done.text
                answered.append(n)

    sender = threading.Thread(target=send)
    sender.start()
    while len(answered) < 3 and sender.is_alive():
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.15))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    sender.join(60)
    assert in_flight[-1] not in answered, "the kill must come while a batch is in flight"

    with running(city) as live, live.client("agency") as tax:  # restarted: and the next batch goes on
        after = len(PEOPLE) // BATCH - 1
        assert tax.post("/v1/records", json=batch(after)).status_code == 200
        answered.append(after)
    seqs, denied, held = feed_rows(city.db)
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    assert [c for _, c in denied] == ["record"] * len(denied)
    residents = [r for r, _ in denied]
    assert len(residents) == len(set(residents)) == len(held)  # one row per record the ledger holds
    assert set(residents) == held
    answered_keys = {ids.resident_key(p) for n in answered for p in PEOPLE[n * BATCH:(n + 1) * BATCH]}
    assert answered_keys <= held  # every answered batch is durable
    assert len(held) in (len(answered_keys), len(answered_keys) + BATCH)  # the killed one: all or nothing
