"""One rescoring path: whoever first reads a standing whose grace period has ended, the resident is
told once that the list is in force (spec §4 "grace", §5 notices).

Resident D of ``conftest`` has a tax arrears record of 2024-08-30, on a list with a grace of 5 days:
pending until 2024-09-04 00:00. The clock (``CREDO_NOW``) starts on 2024-09-01, when nothing is
stale, and is moved past the grace end; then one kind of read happens, twice. After the first, D
holds exactly one notice that the list is in force, and still one after the second. Before the
read, D holds none: the count itself (a read of the notices, which rescores nothing) writes
nothing, so the notice is the read's.

Each front is real: the ``credo`` script in a subprocess; the application ``credo serve`` runs
(``credo.app.create_app`` over a hub, ``TestClient``), started before the clock moves so that it is
the read (not the server's start) that finds the standing stale, with the server's scheduler of due
times off (it would otherwise be first: tests/test_feed_time.py); and, for the server's catch-up on
due times, that application started after the clock moved (its index is read through the hub's
``index_rows``, which makes every stale standing current first) and started once more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient

from credo.app import create_app
from credo.ids import parse_resident_id
from credo.service import Credo
from credo.serving.core import Core
from tests.conftest import City, page, rid, sign_in

CREDO = str(Path(sys.executable).with_name("credo"))
D = rid("D")
AFTER = "2024-09-05T10:00:00+08:00"
"""Past D's grace end (2024-09-04 00:00)."""
IN_FORCE = {"list": "tax_defaulter", "takes_effect": "2024-09-04T00:00:00+08:00"}
RAIL = "rail.high_speed.book"
WHY = {"purpose": "rescoring test"}


def in_force_notices(notices: list[dict[str, Any]]) -> int:
    return sum(n["kind"] == "list.in_force" and n["detail"] == IN_FORCE for n in notices)


@dataclass
class Front:
    """Where a read is made: the CLI (the database closed between commands) or a served application."""

    city: City
    client: TestClient | None = None

    def cli(self, *args: str) -> Any:
        done = subprocess.run([CREDO, "--db", str(self.city.db), *args, "--json"], capture_output=True, text=True,
                              timeout=120, env={**os.environ, **self.city.env(), "CREDO_NOW": AFTER})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def get(self, path: str, who: str = "operator", **params: str) -> Any:
        assert self.client is not None
        answer = self.client.get(path, params={**WHY, **params}, headers=self._as(who))
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        assert self.client is not None
        answer = self.client.post(path, json={**WHY, **body}, headers=self._as("operator"))
        assert answer.status_code == 200, answer.text
        return answer.json()

    def web(self, path: str) -> str:
        assert self.client is not None
        shown = page(self.client, path, sign_in(self.client, self.city.tokens["operator"]))
        assert shown.status_code == 200, shown.text
        return shown.text

    def told(self) -> int:
        """D's notices that the list is in force, read without rescoring anyone."""
        if self.client is not None:
            return in_force_notices(self.get(f"/v1/residents/{D}/notices")["notices"])
        credo = Credo.open(self.city.db, create=False)
        try:
            return in_force_notices(credo.notices(parse_resident_id(D)))
        finally:
            credo.close()

    def _as(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.city.tokens[who]}"}


def shown_in_force(html: str) -> bool:
    """The resident page lists tax_defaulter among the lists in force, not the pending ones."""
    held = html.split('id="lists-in-force"', 1)[-1].split('id="lists-pending"', 1)[0]
    return 'data-list="tax_defaulter"' in held


def dashboard_count(html: str, key: str) -> str:
    return html.split(f'data-k="{key}"', 1)[1].split(">", 1)[1].split("<", 1)[0]


@dataclass(frozen=True)
class Read:
    front: Literal["cli", "served", "start"]
    """cli: the command line; served: an application started before the clock moved; start: the
    application started after it (the read is its start)."""
    read: Callable[[Front], bool]
    """Make the read; whether what it answered shows the list in force."""


CASES: dict[str, Read] = {
    "cli standing": Read("cli", lambda f: f.cli("standing", D)["lists"] == ["tax_defaulter"]),
    "cli explain": Read("cli", lambda f: f.cli("explain", D)["lists"] == ["tax_defaulter"]),
    "cli check": Read("cli", lambda f: f.cli("check", D, RAIL)["decision"] == "deny"),
    "api standing": Read("served", lambda f: f.get(f"/v1/residents/{D}/standing")["lists"] == ["tax_defaulter"]),
    "api explanation": Read("served",
                            lambda f: f.get(f"/v1/residents/{D}/explanation")["lists"] == ["tax_defaulter"]),
    "api check": Read("served", lambda f: f.get("/v1/check", resident_id=D, action=RAIL)["decision"] == "deny"),
    "api batch check": Read("served", lambda f: [i["decision"] for i in f.post(
        "/v1/check/batch", {"action": RAIL, "resident_ids": [D, rid("C")]})["decisions"]] == ["deny", "allow"]),
    "resident page": Read("served", lambda f: shown_in_force(f.web(f"/residents/{D}?purpose=rescoring+test"))),
    "dashboard": Read("served", lambda f: (dashboard_count(f.web("/dashboard"), "list-tax_defaulter-in-force"),
                                           dashboard_count(f.web("/dashboard"), "list-tax_defaulter-pending"))
                      == ("7", "0")),
    "server catch-up": Read("start", lambda f: f.get(f"/v1/residents/{D}/notices")["resident_id"] == D),
}


@contextmanager
def served(city: City) -> Iterator[TestClient]:
    with TestClient(create_app(Core(city.db, scheduled=False))) as client:
        yield client


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_grace_end_is_told_once_whoever_reads_first(city: City, monkeypatch: pytest.MonkeyPatch,
                                                      case: str) -> None:
    kind, read = CASES[case].front, CASES[case].read
    if kind != "start":
        with ExitStack() as stack:
            client = stack.enter_context(served(city)) if kind == "served" else None
            front = Front(city, client)
            monkeypatch.setenv("CREDO_NOW", AFTER)
            assert front.told() == 0
            for _ in range(2):
                assert read(front)
                assert front.told() == 1
        return
    monkeypatch.setenv("CREDO_NOW", AFTER)
    assert Front(city).told() == 0
    for _ in range(2):
        with served(city) as client:
            front = Front(city, client)
            assert read(front)
            assert front.told() == 1


def test_a_read_for_a_past_time_stores_nothing(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--as-of`` computes a standing for any time and tells no one: a pure read."""
    front = Front(city)
    monkeypatch.setenv("CREDO_NOW", AFTER)
    assert front.cli("standing", D, "--as-of", "2024-09-04T12:00:00+08:00")["lists"] == ["tax_defaulter"]
    assert front.cli("explain", D, "--as-of", "2024-09-04T12:00:00+08:00")["lists"] == ["tax_defaulter"]
    assert front.told() == 0


def test_every_notice_of_the_grace_end_is_dated_when_it_was_noticed(city: City,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The notice is dated when a read noticed the list came into force; its detail says since when."""
    monkeypatch.setenv("CREDO_NOW", AFTER)
    Front(city).cli("standing", D)
    credo = Credo.open(city.db, create=False)
    try:
        [told] = [n for n in credo.notices(parse_resident_id(D)) if n["kind"] == "list.in_force"]
    finally:
        credo.close()
    assert told == {"at": AFTER, "kind": "list.in_force", "detail": IN_FORCE}
