"""/metrics of ``credo serve --workers 2``: one scrape, whichever worker answers it, counts the
requests of both, and the workers' count files live in a folder of that run only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import City, rid, running

CHECK = {"resident_id": rid("C"), "action": "rail.high_speed.book", "purpose": "boarding"}
PER_CONNECTION = 5


def sample(text: str, series: str) -> float:
    """The value of one series (its name and labels, exactly as written) in a scrape; a ``pid`` label,
    as a scrape of one worker once carried, is read past, so that such a scrape fails on its count."""
    values = [float(value) for name, _, value in (line.rpartition(" ") for line in text.splitlines())
              if re.sub(r'pid="\d+",?', "", name).replace("{}", "") == series]
    assert len(values) == 1, f"{series}: {values}"
    return values[0]


def test_one_scrape_counts_the_requests_of_every_worker(city: City, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # where the server makes its private folders
    with running(city, workers=2) as live:
        pids: set[int] = set()
        sent = 0
        for _ in range(60):  # a new connection each time: which worker accepts it is up to them
            with live.client("provider") as c:  # one connection, so one worker, for its requests
                pids.add(c.get("/readyz").json()["pid"])
                for _ in range(PER_CONNECTION):
                    assert c.get("/v1/check", params=CHECK).status_code == 200
                    sent += 1
            if len(pids) == 2 and sent >= 40:
                break
        assert len(pids) == 2
        with live.client("operator") as c:
            text = c.get("/metrics").text
        folders = list(tmp.glob("credo-metrics-*"))
        counted_by = {int(f.stem.partition("_")[2]) for f in folders[0].glob("counter_*.db")} if folders else set()
    assert sample(text, 'credo_http_requests_total{method="GET",route="/v1/check",status="200"}') == sent
    assert sample(text, 'credo_decisions_total{decision="allow"}') + \
        sample(text, 'credo_decisions_total{decision="deny"}') == sent
    requests = sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
                   if line.startswith("credo_http_requests_total{"))
    assert sample(text, "credo_http_request_seconds_count") == requests  # the histogram of the same requests
    assert sample(text, "credo_hub_audit_writer_alive") == 1.0 and "pid=" not in text
    assert len(folders) == 1 and counted_by == pids
    assert not list(tmp.glob("credo-metrics-*"))  # removed when the server stopped
