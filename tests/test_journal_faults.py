"""No request can wedge the audit journal or the database's owner, and a failing move is visible.

A manifest that decides nothing once journaled an empty group, after which every move of the journal
into the table failed and every service call answered 500 while ``/readyz`` said ready. These tests
hold the server to: such a request is harmless; a move that fails (injected here) shows in readiness
and metrics, a service call meanwhile fails clearly (503) instead of running on a lagging log, and
once the move succeeds again every acknowledged entry is in the table and the chain verifies.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from credo import audit
from credo.app import create_app
from credo.audit import Entry
from credo.errors import Unavailable
from credo.serving import journal
from credo.serving.core import Core
from tests.conftest import City, Live, build_city, rid, running

RAIL = "rail.high_speed.book"
UNREGISTERED = "110101199001010097"[:17]


def _unregistered() -> str:
    from credo import ids

    return UNREGISTERED + ids.check_char(UNREGISTERED)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with running(build_city(tmp_path_factory.mktemp("journal-faults"))) as server:
        yield server


MANIFESTS: list[tuple[str, Callable[[], list[str]]]] = [
    ("empty", list),
    ("only invalid IDs", lambda: ["not-an-id", "110101"]),
    ("only unregistered IDs", lambda: [_unregistered()]),
]


@pytest.mark.parametrize(("name", "ids_of"), MANIFESTS, ids=[m[0] for m in MANIFESTS])
def test_a_manifest_that_decides_nothing_leaves_the_server_whole(live: Live, name: str,
                                                                 ids_of: Callable[[], list[str]]) -> None:
    with live.client("provider") as p, live.client("operator") as op, live.client("auditor") as au:
        r = p.post("/v1/check/batch", json={"action": RAIL, "purpose": "boarding", "resident_ids": ids_of()})
        assert r.status_code == 200 and r.json()["allowed"] + r.json()["denied"] == 0
        time.sleep(1.5)  # past the journal's seal interval: the mover has run on what was journaled
        assert p.get("/v1/check", params={"resident_id": rid("C"), "action": RAIL,
                                          "purpose": "boarding"}).json()["decision"] == "allow"
        time.sleep(1.5)
        assert live.client().get("/readyz").status_code == 200
        for path in (f"/v1/residents/{rid('A')}/standing", f"/v1/residents/{rid('A')}/records", "/v1/objections"):
            assert op.get(path, params={"purpose": "review"}).status_code == 200, path
        verdict = au.get("/v1/audit/verify")
        assert verdict.status_code == 200 and verdict.json()["ok"], verdict.text


def test_an_empty_group_is_not_a_write(city: City) -> None:
    core = Core(city.db)
    try:
        before = audit.head(core.credo.con)
        asyncio.run(core.log([]))
        assert core.journal.rows == 0 and core.journal.path.stat().st_size == 0
        assert core.verify_audit().ok
        assert audit.head(core.credo.con) == before
    finally:
        core.close()


def test_an_entry_of_the_wrong_shape_fails_its_own_group_only(city: City) -> None:
    core = Core(city.db)
    try:
        with pytest.raises(ValueError, match="fields"):
            asyncio.run(core.log([("too", "short")]))
        asyncio.run(core.log([_decision(1)]))
        assert core.verify_audit().ok
        assert core.stats()["audit_mover_failing"] == 0
    finally:
        core.close()


def _decision(n: int) -> Entry:
    return Entry(datetime(2024, 9, 1, 10), "provider:air", "provider", "decision", 1, RAIL, "allow", f"f-{n}",
                 "boarding", "tiny-1@1", "[]")


class FailingMoves:
    """The journal's store made to fail (a disk full, a lost file) while ``failing`` is set."""

    def __init__(self) -> None:
        self.failing = True
        self.failures = 0
        self._store = journal.store

    def __call__(self, con: Any, groups: Any) -> None:
        if self.failing:
            self.failures += 1
            raise OSError("no space left on device (injected)")
        self._store(con, groups)


def _wait(predicate: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_failing_move_is_visible_fails_calls_clearly_and_loses_nothing(city: City, monkeypatch:
                                                                         pytest.MonkeyPatch) -> None:
    core = Core(city.db)
    faults = FailingMoves()
    monkeypatch.setattr(journal, "store", faults)
    with TestClient(create_app(core)) as client:
        auditor = {"Authorization": f"Bearer {city.tokens['auditor']}"}
        asyncio.run(_log_many(core, 30))
        _wait(lambda: faults.failures >= 1)  # the mover sealed the journal and failed to store it
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "audit journal" in ready.json()["why"]
        metrics = client.get("/metrics", headers=auditor).text
        assert "credo_hub_audit_mover_failing 1.0" in metrics
        assert re.search(r"^credo_hub_audit_mover_failures [1-9]", metrics, re.M)
        with pytest.raises(Unavailable, match="audit journal"):
            core.verify_audit()
        assert client.get("/v1/audit/verify", headers=auditor).status_code == 503
        faults.failing = False  # the store works again
        verdict = client.get("/v1/audit/verify", headers=auditor)
        assert verdict.status_code == 200 and verdict.json()["ok"]
        assert client.get("/readyz").status_code == 200
        asyncio.run(_log_many(core, 5, start=30))
        assert core.verify_audit().ok
        ids_stored = [r[0] for r in core.credo.con.execute(
            "SELECT decision_id FROM audit WHERE decision_id LIKE 'f-%' ORDER BY seq").fetchall()]
        assert ids_stored == [f"f-{n}" for n in range(35)]


async def _log_many(core: Core, n: int, start: int = 0) -> None:
    await asyncio.gather(*[core.log([_decision(i)]) for i in range(start, start + n)])


def test_a_stopped_server_leaves_a_stuck_journal_for_recovery(city: City, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a move that never succeeds loses nothing: the entries wait in the journal for the next open."""
    core = Core(city.db)
    monkeypatch.setattr(journal, "store", FailingMoves())
    asyncio.run(_log_many(core, 7))
    core.close()
    from credo.service import Credo

    credo = Credo.open(city.db)
    try:
        assert credo.verify_audit().ok
        assert credo.con.execute("SELECT count(*) FROM audit WHERE decision_id LIKE 'f-%'").fetchall() == [(7,)]
    finally:
        credo.close()
