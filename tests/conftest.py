"""Fixtures any test may use.

* ``city`` — a fresh DuckDB file (in ``tmp_path``) holding a tiny city built the way
  a real one is: ``credo init`` with a small policy, then CSV feeds written here and
  loaded through ingest; plus a token for each role. The clock is fixed (``NOW``).
  ``build_city(folder)`` makes one anywhere (module-scoped fixtures use it).
* ``running(city, workers=1)`` — ``credo serve`` in a subprocess on a free 127.0.0.1
  port against that city; yields a ``Live`` (base URL, tokens, an httpx client per
  role). ``server`` is that for the ``city`` of one test.
* ``sign_in(client, token)`` and ``page(client, path, cookie)`` — the web pages as a signed-in browser
  reaches them.

Who is in the city, at NOW (2024-09-01 10:00 city time):

====  ==========================================================================
A     tax arrears (x1) in force: on the black list ``tax_defaulter`` (deny rail), score 950, grade B
B     blood donor, record keyed by phone: grade AA (green channel on admin.approval)
C     no records: no measure at all
D     tax arrears (x2) on 2024-08-30: the list is pending until 2024-09-04 (grace 5d)
E..I  each with one tax arrears record in force (x3..x7), for revoke and objection tests
J     no records; the check character of the ID is X (``rid("J").lower()`` is valid too)
====  ==========================================================================
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from credo import ids
from tests.cityfactory import POLICY  # the tiny policy shared by library and server tests

pytest_plugins = ("tests.fixtures.ingest_city",)
"""The ``template`` and ``town`` fixtures: a test starting from a copy of a city built once per module."""

NOW = "2024-09-01T10:00:00+08:00"
PEOPLE: dict[str, tuple[str, str]] = {
    "A": ("11011219870612101", "110112"), "B": ("11011519930318202", "110115"),
    "C": ("11010119900101003", "110101"), "D": ("11010519751230004", "110105"),
    "E": ("11010219600202005", "110102"), "F": ("11010619820714006", "110106"),
    "G": ("11010819991111007", "110108"), "H": ("11010919550505008", "110109"),
    "I": ("11011119881008009", "110111"), "J": ("11010419700101012", "110104"),
}
PHONE_B = "13512345678"
ROLES = ("operator", "agency", "provider", "resident", "auditor")
RECORD_COLUMNS = ("record_id", "type", "subject", "occurred_at", "resolves", "attributes")


def rid(letter: str) -> str:
    """The full 18-character ID of a resident of the tiny city."""
    return PEOPLE[letter][0] + ids.check_char(PEOPLE[letter][0])


@dataclass
class City:
    folder: Path
    db: Path
    tokens: dict[str, str] = field(default_factory=dict)
    """Role (or a named variant: 'resident_c', 'agency_blood') -> bearer token."""

    def env(self) -> dict[str, str]:
        return {"CREDO_DB": str(self.db), "CREDO_NOW": NOW, "CREDO_RATE_LIMIT": "0"}


def write_csv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


@contextmanager
def fixed_clock(now: str) -> Iterator[None]:
    """``CREDO_NOW`` set to ``now`` for the block, then as it was (outside a test's monkeypatch)."""
    old = os.environ.get("CREDO_NOW")
    os.environ["CREDO_NOW"] = now
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CREDO_NOW", None)
        else:
            os.environ["CREDO_NOW"] = old


def build_city(folder: Path) -> City:
    """The tiny city of this module's docstring, through ``credo init`` and ingest."""
    from credo.service import Credo

    folder.mkdir(parents=True, exist_ok=True)
    city = City(folder, folder / "city.duckdb")
    with fixed_clock(NOW), closing(Credo.open(city.db)) as credo:
        credo.apply_policy(POLICY)
        feeds: dict[str, list[tuple[str, ...]]] = {
            "population": [("resident_id", "name", "district", "status", "status_date"),
                           *[(rid(p), f"Resident {p}", district, "", "")
                             for p, (_, district) in PEOPLE.items()]],
            "telecom": [("phone", "resident_id", "valid_from", "valid_to"),
                        (PHONE_B, rid("B"), "2018-01-01", "")],
            "tax": [RECORD_COLUMNS, ("x1", "tax.arrears", rid("A"), "2024-08-01", "", '{"amount": 12000}'),
                    ("x2", "tax.arrears", rid("D"), "2024-08-30", "", ""),
                    *[(f"x{i + 3}", "tax.arrears", rid(p), "2024-07-01", "", "")
                      for i, p in enumerate("EFGHI")]],
            "blood-centre": [RECORD_COLUMNS, ("d1", "civic.donation", PHONE_B, "2024-03-03", "", "")],
        }
        for agency, rows in feeds.items():
            credo.ingest_files(agency, [write_csv(folder / f"{agency}.csv", rows)])
        for name, role, subject in [("operator", "operator", {}), ("agency", "agency", {"agency": "tax"}),
                                    ("provider", "provider", {"provider": "air"}),
                                    ("resident", "resident", {"resident_id": rid("A")}),
                                    ("auditor", "auditor", {}),
                                    ("resident_c", "resident", {"resident_id": rid("C")}),
                                    ("agency_blood", "agency", {"agency": "blood-centre"})]:
            city.tokens[name] = credo.create_token(role, **subject)[0]
    return city


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> City:
    """A fresh tiny city; the clock of this test is fixed at NOW."""
    made = build_city(tmp_path / "city")
    monkeypatch.setenv("CREDO_NOW", NOW)
    monkeypatch.setenv("CREDO_DB", str(made.db))
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    url: str
    city: City
    proc: subprocess.Popen[bytes]

    def client(self, who: str | None = None, token: str | None = None) -> httpx.Client:
        """An httpx client for a role of ``city.tokens`` (or a raw token; neither: no token)."""
        token = token if token is not None else (self.city.tokens[who] if who else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def running(city: City, workers: int = 1) -> Iterator[Live]:
    """``credo serve`` against ``city`` on a free loopback port, stopped (SIGINT) on exit."""
    port = free_port()
    log = (city.folder / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from credo.cli import main; main()", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **city.env()}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, city.folder / f"serve-{port}.log")
        yield Live(url, city, proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"credo serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"credo serve did not become ready:\n{log.read_text()}")


SESSION = "credo_session"
"""The web pages' session cookie."""


def sign_in(client: httpx.Client, token: str) -> str:
    """Sign in through the form as a browser would (a live server's client or a ``TestClient``); the
    session cookie's value."""
    form = client.get("/signin")
    signin = re.search(r'name="signin" value="([^"]+)"', form.text)
    assert signin is not None, form.text
    done = client.post("/signin", data={"token": token, "signin": signin.group(1), "next": "/"},
                       headers={"Cookie": f"credo_signin={form.cookies['credo_signin']}"}, follow_redirects=False)
    assert done.status_code == 303 and SESSION in done.cookies, done.text
    client.cookies.clear()
    return str(done.cookies[SESSION])


def page(client: httpx.Client, path: str, cookie: str) -> httpx.Response:
    """A web page as the signed-in holder of ``cookie`` sees it."""
    client.cookies.clear()
    return client.get(path, headers={"Cookie": f"{SESSION}={cookie}"}, follow_redirects=False)


@pytest.fixture
def server(city: City) -> Iterator[Live]:
    with running(city) as live:
        yield live


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local Spark session for the whole run (it takes ~10 s to start): credo's own scoring
    session, on loopback, two shuffle partitions. Skips when Java or PySpark is missing."""
    import shutil

    if not shutil.which("java"):
        if os.environ.get("CI"):
            pytest.fail("no Java for Spark: under CI a test that cannot run is a failure")
        pytest.skip("no Java for Spark")
    from credo.engines.spark import session

    yield session("local[2]", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
