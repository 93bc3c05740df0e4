"""The serving machinery on its own: the owner thread, the hub over its socket, the feed of rescores.

Real parts throughout: a real tiny city, a real ``CoreServer`` on a Unix socket in a temporary
folder, a real ``RemoteHub`` reaching it.
"""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import AuthenticationError, Client
from pathlib import Path

import numpy as np
import pytest

from credo import ids
from credo.errors import Forbidden
from credo.ids import parse_resident_id
from credo.principals import OPERATOR_CLI, Principal
from credo.service import Credo
from credo.serving.commit import GroupCommit
from credo.serving.core import Core
from credo.serving.hub import Hub
from credo.serving.owner import Owner
from credo.serving.remote import CoreServer, RemoteHub
from tests.conftest import City, rid


def test_the_owner_runs_jobs_in_order_on_one_thread_and_its_last_job_last() -> None:
    seen: list[tuple[str, int]] = []
    ticks: list[bool] = []
    closed = threading.Event()
    owner = Owner("test-owner", tick=lambda: ticks.append(closed.is_set()), every=0.01)
    futures = [owner.submit(lambda n=n: seen.append((threading.current_thread().name, n))) for n in range(50)]
    with pytest.raises(ZeroDivisionError):
        owner.run(lambda: 1 // 0)  # a job's error reaches whoever waits for it; the owner goes on
    assert owner.run(lambda: "still here") == "still here"
    time.sleep(0.05)  # a few ticks while idle

    def last() -> None:
        closed.set()
        time.sleep(0.03)  # the next tick is due by the time the last job ends

    owner.close(last)
    assert [n for _, n in seen] == list(range(50)) and {name for name, _ in seen} == {"test-owner"}
    assert all(f.done() for f in futures)
    assert ticks and not any(ticks)  # never a tick after the last job (it may close what ticks use)
    with pytest.raises(RuntimeError, match="closed"):
        owner.submit(lambda: None)


def test_a_job_between_groups_runs_on_the_writer_thread() -> None:
    flushed: list[int] = []
    threads: set[str] = set()

    def flush(items: list[int]) -> None:
        threads.add(threading.current_thread().name)
        flushed.extend(items)

    commit: GroupCommit[int] = GroupCommit(flush, "test-writer")
    commit.submit_wait([1, 2])
    assert commit.between(lambda: (threading.current_thread().name, list(flushed))).result() == (
        "test-writer", [1, 2])
    commit.close()
    assert threads == {"test-writer"}
    with pytest.raises(RuntimeError, match="closed"):
        commit.between(lambda: None)


@pytest.fixture
def served(city: City, tmp_path: Path) -> Iterator[tuple[CoreServer, RemoteHub]]:
    folder = tmp_path / "hub"
    folder.mkdir()
    server = CoreServer(Core(city.db, generation_file=folder / "generation"), folder)
    remote = RemoteHub(server.address)
    yield server, remote
    remote.close()
    server.close()


def test_a_worker_reaches_the_store_through_typed_calls(served: tuple[CoreServer, RemoteHub]) -> None:
    server, remote = served
    hub: Hub = remote
    assert stat.S_IMODE(Path(server.address.socket).stat().st_mode) == 0o600
    here = server.core.standing(parse_resident_id(rid("A")), who=OPERATOR_CLI, purpose="review")
    there = hub.standing(parse_resident_id(rid("A")), who=OPERATOR_CLI, purpose="review")
    assert (there.resident, there.grade, there.score) == (here.resident, here.grade, here.score)
    provider = Principal("provider:air", "provider", provider="air")
    with pytest.raises(Forbidden):  # the store's own refusals come back as themselves
        hub.explain(parse_resident_id(rid("A")), who=provider, purpose="boarding")
    before = hub.generation()
    hub.revoke_token(hub.create_token("provider", agency=None, provider="rail", resident_id=None, expires=None,
                                      who=OPERATOR_CLI)[1].id, OPERATOR_CLI)
    generation, _, changes = hub.changes_since(before)
    assert generation == hub.generation() == before + 2 and changes == ["principals", "principals"]
    assert hub.verify_audit().ok


def test_the_hub_answers_only_what_the_protocol_names(served: tuple[CoreServer, RemoteHub], tmp_path: Path) -> None:
    server, remote = served
    with pytest.raises(AttributeError, match="does not answer"):  # a Credo method no front uses
        remote.service(Credo.ingest_files, "tax", [tmp_path / "x.csv"])
    with pytest.raises(AttributeError, match="does not answer"):
        remote.service(Credo.close)
    key = bytes.fromhex(server.address.key)
    with Client(server.address.socket, family="AF_UNIX", authkey=key) as conn:
        conn.send(("standing", (rid("A"),), {}))  # the old shape: a name and arguments
        assert isinstance(conn.recv().error, AttributeError)
    with pytest.raises(AuthenticationError):
        Client(server.address.socket, family="AF_UNIX", authkey=b"not the key")
    assert remote.verify_audit().ok  # still serving


def test_a_rescore_while_reading_index_rows_is_announced(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """D's pending listing comes into force on 2024-09-05: reading D's row after that rescores D in the
    store first, and the rescore is announced like any write's, so every index re-reads D."""
    core = Core(city.db)
    try:
        core.policy()
        key = ids.resident_key(rid("D"))
        before = core.generation()
        monkeypatch.setenv("CREDO_NOW", "2024-09-05T00:00:00+08:00")
        rows, _ = core.index_rows(np.array([key], np.int64), core.credo.now())
        assert key in dict(rows.measured)
        generation, _, changes = core.changes_since(before)
        assert generation == before + 1 and changes is not None and [list(c) for c in changes] == [[key]]
        again, _ = core.index_rows(np.array([key], np.int64), core.credo.now())  # now fresh: nothing to announce
        assert dict(again.measured) == dict(rows.measured) and core.generation() == generation
    finally:
        core.close()


def test_the_feed_names_the_last_write_it_announced(served: tuple[CoreServer, RemoteHub]) -> None:
    """Each announcement carries the last write's audit entry, so a worker's index knows which writes
    its decisions rest on; a batch that rescored nobody (all duplicates) moves it on alone, since an
    index reading rows after it waits until that write is announced."""
    server, remote = served
    hub: Hub = remote
    generation, first, _ = hub.changes_since(hub.generation())
    rows, read = hub.index_rows(None, server.core.credo.now())
    assert read == first > 0 and len(rows.keys) > 0  # nothing written since: the rows hold no more
    revoker = Principal("agency:tax", "agency", agency="tax")
    hub.revoke("tax", "x3", "paid", revoker)
    after, revoked, changes = hub.changes_since(generation)
    assert after == generation + 1 and changes is not None and revoked > first
    assert hub.index_rows(None, server.core.credo.now())[1] == revoked
    row = {"record_id": "x1", "type": "tax.arrears", "subject": rid("A"), "occurred_at": "2024-08-01",
           "attributes": {"amount": 12000}}
    assert hub.ingest_rows("tax", [row], revoker, "test").accepted == 0  # a duplicate: nobody rescored
    same, duplicate, none = hub.changes_since(after)
    assert (same, none) == (after, []) and duplicate > revoked
    assert hub.index_rows(None, server.core.credo.now())[1] == duplicate
