"""The audit log: tampering in the DuckDB file is found and named; group commit loses nothing.

Tampering is done the way an intruder with the file would do it — SQL on the
DuckDB file — and ``credo audit verify`` (the command and the library) must name
the first entry that no longer fits.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from credo import audit
from credo.audit import Entry
from credo.errors import CredoError
from credo.ids import parse_resident_id
from credo.principals import Principal
from credo.service import Credo
from credo.serving.commit import GroupCommit
from credo.serving.core import Core
from credo.serving.journal import Journal
from credo.store import connect
from tests.conftest import City, rid

PROVIDER = Principal("provider:air", "provider", provider="air")


@pytest.fixture
def logged(city: City) -> Path:
    """The tiny city plus a few decisions: a log of more than ten entries."""
    from credo.service import Credo

    credo = Credo.open(city.db)
    try:
        for letter in "ABCD":
            credo.check(parse_resident_id(rid(letter)), "rail.high_speed.book", PROVIDER, "boarding")
        assert credo.verify_audit().ok
        assert credo.verify_audit().entries > 10
    finally:
        credo.close()
    return city.db


def count(db: Path) -> int:
    with duckdb.connect(str(db)) as con:
        return int(con.execute("SELECT count(*) FROM audit").fetchall()[0][0])


def verify_command(db: Path) -> subprocess.CompletedProcess[str]:
    """``credo audit verify`` as a user runs it."""
    command = [sys.executable, "-c", "from credo.cli import main; main()", "audit", "verify"]
    return subprocess.run(command, env={**os.environ, "CREDO_DB": str(db)}, capture_output=True, text=True,
                          timeout=120)


def swap(seq_a: int, seq_b: int) -> list[str]:
    return [f"UPDATE audit SET seq = -1 WHERE seq = {seq_a}",
            f"UPDATE audit SET seq = {seq_a} WHERE seq = {seq_b}",
            f"UPDATE audit SET seq = {seq_b} WHERE seq = -1"]


def recomputed(con: duckdb.DuckDBPyConnection, seq: int) -> list[str]:
    """Edit an entry and recompute its own hash, as a careful intruder would: the next link breaks."""
    row = con.execute(f"SELECT {', '.join(audit.COLUMNS)} FROM audit WHERE seq = ?", [seq]).fetchall()[0]
    values = list(row[1:-2])
    values[audit.FIELDS.index("purpose")] = "nothing to see"
    new_hash = audit.entry_hash(row[-2], values)
    return [f"UPDATE audit SET purpose = 'nothing to see', hash = '{new_hash}' WHERE seq = {seq}"]


# (name, how to tamper given the log's size, the entry named, words of the problem)
CASES = [
    ("edit", lambda con, n: ["UPDATE audit SET purpose = 'curiosity' WHERE seq = 5"], 5, "altered"),
    ("flip a decision", lambda con, n: ["UPDATE audit SET decision = CASE decision WHEN 'allow' THEN 'deny' "
                                         f"ELSE 'allow' END WHERE seq = {n - 1}"], None, "altered"),
    ("edit and rehash", lambda con, n: recomputed(con, 4), 5, "does not link"),
    ("delete", lambda con, n: ["DELETE FROM audit WHERE seq = 3"], 3, "missing"),
    ("delete the first", lambda con, n: ["DELETE FROM audit WHERE seq = 1"], 1, "missing"),
    ("delete the last", lambda con, n: [f"DELETE FROM audit WHERE seq = {n}"], None, "removed from the end"),
    ("reorder", lambda con, n: swap(3, 4), 3, "does not link"),
    ("reorder far apart", lambda con, n: swap(2, 7), 2, "does not link"),
    ("duplicate", lambda con, n: ["INSERT INTO audit SELECT * FROM audit WHERE seq = 6"], 6, "twice"),
]


@pytest.mark.parametrize(("name", "tamper", "first_bad", "words"), CASES, ids=[c[0] for c in CASES])
def test_tampering_is_found_and_named(logged: Path, name: str, tamper: object, first_bad: int | None,
                                      words: str) -> None:
    n = count(logged)
    with duckdb.connect(str(logged)) as con:
        for sql in tamper(con, n):  # type: ignore[operator]
            con.execute(sql)
    expected = first_bad if first_bad is not None else n if name == "delete the last" else n - 1
    con = connect(logged)
    try:
        verdict = audit.verify(con)
    finally:
        con.close()
    assert not verdict.ok
    assert verdict.first_bad == expected, verdict
    assert words in (verdict.problem or ""), verdict
    cli = verify_command(logged)
    assert cli.returncode == 1
    assert f"entry {expected}" in cli.stderr


def test_an_intact_log_verifies(logged: Path) -> None:
    cli = verify_command(logged)
    assert cli.returncode == 0, cli.stderr
    assert f"{count(logged)} entries" in cli.stdout


# -- group commit -----------------------------------------------------------------------------
def test_group_commit_gathers_concurrent_submitters() -> None:
    groups: list[list[int]] = []
    gate = threading.Event()

    def flush(items: list[int]) -> None:
        gate.wait(5)  # hold the first group until everybody has submitted
        groups.append(items)

    commit: GroupCommit[int] = GroupCommit(flush)

    async def main() -> None:
        tasks = [asyncio.create_task(commit.submit([i])) for i in range(200)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    commit.close()
    assert sorted(i for g in groups for i in g) == list(range(200))
    assert len(groups) <= 3  # the first, perhaps one caught mid-way, the rest together


def test_a_failed_flush_fails_its_group_only() -> None:
    calls = 0

    def flush(items: list[int]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")

    commit: GroupCommit[int] = GroupCommit(flush)
    with pytest.raises(OSError, match="disk full"):
        commit.submit_wait([1])
    commit.submit_wait([2])  # the writer lives on
    assert commit.failures == 1 and commit.commits == 2
    commit.close()


def test_close_flushes_what_is_pending() -> None:
    seen: list[int] = []
    commit: GroupCommit[int] = GroupCommit(seen.extend)
    threads = [threading.Thread(target=commit.submit_wait, args=([i],)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    commit.close()
    assert sorted(seen) == list(range(20))
    with pytest.raises(RuntimeError):
        commit.submit_wait([99])


KILLED_HUB = """
import os, signal, sys
from datetime import datetime
from credo.serving.core import Core
from credo.audit import Entry
from credo.errors import CredoError
from credo.principals import OPERATOR_CLI
from credo.ids import parse_resident_id
core = Core(sys.argv[1])
# a service call: its own entries, chained in the table
core.standing(parse_resident_id(sys.argv[2]), who=OPERATOR_CLI, purpose=None)
at = datetime(2024, 9, 1, 10)
for i in range(50):
    core.log_wait([Entry(at, "provider:air", "provider", "decision", 1, "flight.book", "deny", f"k-{i}",
                         "boarding", "tiny-1@1", "[]")])
print("acknowledged", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_acknowledged_decisions_survive_a_kill_through_the_journal(city: City) -> None:
    """Entries are durable in the journal once acknowledged; the table gets them when the store is
    next opened, chained after the service's own entries, and the journal is emptied."""
    from credo.service import Credo

    run = subprocess.run([sys.executable, "-c", KILLED_HUB, str(city.db), rid("A")], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == -9 and "acknowledged" in run.stdout, run.stderr
    journal = audit.journal_path(city.db)
    assert journal.stat().st_size > 0  # killed before the one-second drain
    credo = Credo.open(city.db)
    try:
        ids = [r[0] for r in credo.con.execute("SELECT decision_id FROM audit WHERE decision_id LIKE 'k-%' "
                                               "ORDER BY seq").fetchall()]
        assert ids == [f"k-{i}" for i in range(50)]
        assert credo.verify_audit().ok
    finally:
        credo.close()
    assert journal.stat().st_size == 0
    assert audit.recover(connect(city.db), journal) == 0


def test_a_torn_journal_line_is_dropped_and_known_entries_skipped(city: City, tmp_path: Path) -> None:
    """A crash mid-write leaves a partial last line (never acknowledged): dropped. A crash after the
    table took the journal but before it was emptied: those entries are not stored twice."""
    con = connect(city.db)
    at = datetime(2024, 9, 1, 10)
    first, prev = audit.head(con)
    entries = [Entry(at, "p", "provider", "decision", None, "a", "allow", f"t-{i}", "x", "tiny-1@1", None)
               for i in range(3)]
    one = audit.chain(entries[:1], first, prev)
    two = audit.chain(entries[1:], *one.head)
    journal = tmp_path / "j"
    writer = Journal(journal)
    writer.write(one)
    audit.store_chained(con, audit.table([one]), one.head)  # the table has the first: the journal not yet emptied
    writer.write(two)
    writer.close()
    with journal.open("ab") as f:
        f.write(b'[999, "2024-09-01T10:00:00", "p", "prov')
    assert audit.recover(con, journal) == 2
    got = [r[0] for r in con.execute("SELECT decision_id FROM audit WHERE decision_id LIKE 't-%' ORDER BY seq")
           .fetchall()]
    assert got == ["t-0", "t-1", "t-2"]
    assert audit.verify(con).ok
    con.close()


def test_a_journal_of_another_database_is_refused(city: City, tmp_path: Path) -> None:
    """A journal left beside a database it does not continue (a recreated file, an edit) is not
    spliced into the chain: opening fails, naming the file."""
    con = connect(city.db)
    stranger = audit.chain([Entry(datetime(2024, 9, 1), "p", "provider", "decision", None, "a", "allow", "s-1",
                                  "x", "tiny-1@1", None)], 0, audit.GENESIS)
    journal = tmp_path / "j"
    writer = Journal(journal)
    writer.write(stranger)
    writer.close()
    with pytest.raises(CredoError, match="does not continue"):
        audit.recover(con, journal)
    assert con.execute("SELECT count(*) FROM audit WHERE decision_id = 's-1'").fetchall() == [(0,)]
    con.close()


def test_decisions_logged_through_the_hub_are_committed_and_chained(city: City) -> None:
    core = Core(city.db)
    now = datetime(2024, 9, 1, 10)

    async def main() -> None:
        entries = [Entry(now, "provider:air", "provider", "decision", 1, "rail.high_speed.book", "allow",
                         f"d-{i}", "boarding", "tiny-1@1", "[]") for i in range(100)]
        await asyncio.gather(*[core.log([e]) for e in entries])

    asyncio.run(main())
    commits = core.writer.commits
    core.close()
    assert commits < 100
    con = connect(city.db)
    try:
        ids = {r[0] for r in con.execute("SELECT decision_id FROM audit WHERE event = 'decision'").fetchall()}
        assert {f"d-{i}" for i in range(100)} <= ids
        assert audit.verify(con).ok
    finally:
        con.close()


def test_a_journal_line_is_the_json_of_its_row(city: City) -> None:
    """The journal's lines are spliced from each entry's hashed bytes: they must read back as exactly
    the row the table gets (recovery parses them), numpy integers and missing values included."""
    import numpy as np
    import orjson

    at = datetime(2024, 9, 1, 10, 0, 0, 123456)
    entries = [Entry(at, "p", "provider", "decision", np.int64(110101199001010010), "a", "deny", "d-1", "x",
                     "tiny-1@1", '["list:tax_defaulter"]'),
               Entry(at.replace(microsecond=0), "operator", "operator", "audit.read", None, None, None, None,
                     None, None, '{"after": 0}')]
    chained = audit.chain(entries, 41, "f" * 64)
    rows = [orjson.loads(line) for line in chained.lines.splitlines()]
    expected = audit.table([chained]).to_pylist()
    assert [r[0] for r in rows] == [42, 43] and chained.head == (43, rows[-1][-1])
    for row, want in zip(rows, expected, strict=True):
        row[1] = datetime.fromisoformat(row[1])
        assert dict(zip(audit.COLUMNS, row, strict=True)) == want
    assert rows[0][-2] == "f" * 64 and rows[1][-2] == rows[0][-1]
    assert rows[0][-1] == audit.entry_hash("f" * 64, entries[0])


def test_a_drained_journal_stores_exactly_its_entries(city: City, tmp_path: Path) -> None:
    """DuckDB parses the journal on drain: awkward values (quotes, backslashes, a newline, CJK text,
    a missing resident, a numpy integer, whole seconds) must come back as the hashed entries did,
    or the chain would no longer verify."""
    import numpy as np

    con = connect(city.db)
    first, prev = audit.head(con)
    at = datetime(2024, 9, 1, 10, 0, 0, 5)
    entries = [Entry(at, 'p "quoted"', "provider", "decision", np.int64(110101199001010010), "a\\b", "deny",
                     "d-1", "登机\nline two", "tiny-1@1", '["list:tax_defaulter"]'),
               Entry(at.replace(microsecond=0), "operator", "operator", "audit.read", None, None, None, None,
                     None, None, '{"after": 0, "note": "\\u00e9"}')]
    journal = Journal(tmp_path / "j")
    one = audit.chain(entries[:1], first, prev)
    two = audit.chain(entries[1:], *one.head)
    journal.write(one)
    journal.write(two)
    journal.drain(con)
    stored = con.execute(f"SELECT {audit.COLUMN_LIST} FROM audit WHERE seq > ? ORDER BY seq", [first]).fetchall()
    assert [dict(zip(audit.COLUMNS, r, strict=True)) for r in stored] == audit.table([one, two]).to_pylist()
    assert audit.head(con) == two.head and audit.verify(con).ok
    assert (tmp_path / "j").stat().st_size == 0 and journal.rows == 0
    journal.close()
    con.close()


def test_a_journal_holding_entries_is_not_written_before_it_is_recovered(tmp_path: Path) -> None:
    (tmp_path / "j").write_bytes(b'[1, "2024-09-01T10:00:00"]\n')
    with pytest.raises(CredoError, match="holds entries"):
        Journal(tmp_path / "j")


def _decisions(prefix: str, n: int) -> list[Entry]:
    at = datetime(2024, 9, 1, 10)
    return [Entry(at, "provider:air", "provider", "decision", 1, "rail.high_speed.book", "allow", f"{prefix}-{i}",
                  "boarding", "tiny-1@1", "[]") for i in range(n)]


def _log_all(core: Core, entries: list[Entry], timeout: float = 10.0) -> None:
    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*[core.log([e]) for e in entries]), timeout)

    asyncio.run(main())


def _logged(core: Core) -> list[tuple[int, str, str | None]]:
    core.verify_audit()  # any call moves the journal into the table first
    return [(int(s), str(e), d) for s, e, d in
            core.credo.con.execute("SELECT seq, event, decision_id FROM audit ORDER BY seq").fetchall()]


def test_decisions_are_logged_while_a_write_holds_the_store(city: City, tmp_path: Path) -> None:
    """An ingest holds the store for as long as it takes; decisions asked meanwhile are journaled
    and answered without waiting for it, and the batch's own entry chains after them."""
    from tests.conftest import RECORD_COLUMNS, write_csv

    core = Core(city.db)
    start = audit.head(core.credo.con)[0]
    inside, release = threading.Event(), threading.Event()

    def progress(phase: str, rows: int, total: int) -> None:
        if phase == "score" and rows == 0:  # inside the batch's transaction, before its audit entry
            inside.set()
            release.wait(30)

    feed = write_csv(tmp_path / "tax.csv", [RECORD_COLUMNS, ("late-1", "tax.arrears", rid("C"), "2024-08-20", "", "")])
    ingest = threading.Thread(target=core.service, args=(Credo.ingest_files, "tax", [feed]),
                              kwargs={"progress": progress})
    try:
        ingest.start()
        assert inside.wait(30)
        _log_all(core, _decisions("during", 40))  # times out if decisions wait for the write
        assert ingest.is_alive()
    finally:
        release.set()
        ingest.join(30)
    try:
        logged = _logged(core)
        assert [e for s, e, _ in logged if s > start] == ["decision"] * 40 + ["batch.ingested"]
        assert [s for s, _, _ in logged] == list(range(1, len(logged) + 1))
        assert core.credo.verify_audit().ok
        assert core.journal.rows == 0 and core.journal.path.stat().st_size == 0
    finally:
        core.close()


def test_a_write_that_rolls_back_leaves_the_journaled_decisions_and_the_chain_whole(city: City) -> None:
    """A service call appends its entry after the journal's (moved into its transaction), then rolls
    back: the journal still holds its decisions, and the chain goes on from them."""
    core = Core(city.db)

    def roll_back(credo: Credo) -> int:  # a service call: the store is busy, nothing moves the journal
        con = credo.con
        _log_all(core, _decisions("kept", 5))
        assert core.journal.rows == 5
        con.execute("BEGIN TRANSACTION")
        credo.append_audit(con, [Entry(datetime(2024, 9, 1, 11), "operator", "operator", "record.revoked")])
        assert con.execute("SELECT count(*) FROM audit WHERE decision_id LIKE 'kept-%'").fetchall() == [(5,)]
        con.execute("ROLLBACK")
        return core.journal.rows

    try:
        assert core.service(roll_back) == 5  # the call has ended: the writer went on from the journal
        assert core.journal.rows == 5
        _log_all(core, _decisions("after", 3))
        logged = _logged(core)
        assert [d for _, e, d in logged if e == "decision"][-8:] == [f"kept-{i}" for i in range(5)] + [
            f"after-{i}" for i in range(3)]
        assert "record.revoked" not in [e for _, e, _ in logged]
        assert [s for s, _, _ in logged] == list(range(1, len(logged) + 1))
        assert core.credo.verify_audit().ok
    finally:
        core.close()


def test_a_write_announces_its_changes_when_it_is_done(city: City) -> None:
    """Residents a write rescored are announced to the decision indexes when it has returned, not
    while it runs: until then a decision answers from the index as it was, without waiting."""
    import numpy as np

    core = Core(city.db)
    try:
        before = core.generation()

        def write(credo: Credo) -> int:
            core._changed(np.array([7], np.int64))  # what a write's rescore tells its listeners
            return core.generation()

        assert core.service(write) == before
        generation, _, changes = core.changes_since(before)
        assert generation == before + 1 and changes is not None and [list(c) for c in changes] == [[7]]
    finally:
        core.close()


def test_a_sealed_journal_is_stored_while_writing_goes_on_and_recovered_first(city: City, tmp_path: Path) -> None:
    """The journal is sealed (renamed aside) before it is stored, so writing goes on meanwhile. A
    crash may leave a sealed file and a fresh one, or a sealed file whose entries the table already
    has: recovery reads the sealed file first and stores each entry once."""
    con = connect(city.db)
    first, prev = audit.head(con)
    a = audit.chain(_decisions("a", 3), first, prev)
    b = audit.chain(_decisions("b", 2), *a.head)
    c = audit.chain(_decisions("c", 2), *b.head)
    path = tmp_path / "j"
    journal = Journal(path)
    journal.write(a)
    assert journal.seal() and audit.sealed_path(path).exists() and path.stat().st_size == 0
    journal.write(b)  # the sealed part is not stored yet: writing goes on in the fresh file
    assert not journal.seal()  # one sealed part at a time
    journal.store_sealed(con)  # a crash here, before the removal, is the next case below
    assert not audit.sealed_path(path).exists() and journal.rows == 2
    assert journal.seal()
    journal.write(c)
    journal.close()  # a crash: the sealed part (b) and the fresh file (c) are left
    with pytest.raises(CredoError, match="holds entries"):
        Journal(path)
    audit.sealed_path(path).write_bytes(a.lines + b.lines)  # a stored again: as if its removal was lost
    assert audit.recover(con, path) == 4
    got = [r[0] for r in con.execute("SELECT decision_id FROM audit WHERE seq > ? ORDER BY seq", [first]).fetchall()]
    assert got == ["a-0", "a-1", "a-2", "b-0", "b-1", "c-0", "c-1"]
    assert audit.verify(con).ok
    assert not audit.sealed_path(path).exists() and path.stat().st_size == 0
    con.close()


def test_a_worker_catches_up_beside_a_write_in_progress(city: City, tmp_path: Path) -> None:
    """The change feed and the index rows are read without the connection a write holds: a worker
    catching up after one write does not wait for the next. The rows are the committed ones."""
    import numpy as np

    from credo import ids
    from tests.conftest import RECORD_COLUMNS, write_csv

    core = Core(city.db)
    inside, release = threading.Event(), threading.Event()

    def progress(phase: str, rows: int, total: int) -> None:
        if phase == "score" and rows == 0:
            inside.set()
            release.wait(30)

    feed = write_csv(tmp_path / "tax.csv", [RECORD_COLUMNS, ("late-2", "tax.arrears", rid("C"), "2024-08-20", "", "")])
    ingest = threading.Thread(target=core.service, args=(Credo.ingest_files, "tax", [feed]),
                              kwargs={"progress": progress})
    key = ids.resident_key(rid("C"))
    try:
        ingest.start()
        assert inside.wait(30)
        read: list[object] = []
        reader = threading.Thread(target=lambda: read.extend([
            core.changes_since(0), core.index_rows(np.array([key], np.int64), core.credo.now())]))
        reader.start()
        reader.join(10)
        assert not reader.is_alive() and ingest.is_alive()  # answered while the write still runs
        rows, _ = read[1]  # type: ignore[misc]
        assert list(rows.keys) == [key] and key not in dict(rows.measured)  # C is not listed yet
    finally:
        release.set()
        ingest.join(30)
    try:
        rows, _ = core.index_rows(np.array([key], np.int64), core.credo.now())
        assert key in dict(rows.measured)  # once committed, C's new arrears put C on the list
    finally:
        core.close()
