"""The hub: the one place that holds the database while the server runs.

DuckDB allows one writing process and its connection is not safe to share
between threads, so the server opens one connection, guards it with a lock and
funnels every use through here: service calls (``call``), the audit writer
(group commit) and the reads that feed the decision index. With several worker
processes the hub lives in the ``credo serve`` process and the workers reach it
through ``credo.serving.remote``, which offers this same interface.

Decisions' audit entries go to a journal file first (``credo.serving.journal``), which a
mover thread stores in the table; a service call takes the journal over only when it
appends entries of its own, so decisions do not wait for a write in progress.

The hub also keeps a change feed: every write that rescored residents bumps a
generation number and records whom it touched, so each process's decision
index can catch up (``changes_since``) before it decides again.
"""

from __future__ import annotations

import logging
import mmap
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import duckdb

from credo import audit, index
from credo.errors import Unavailable
from credo.policy import Policy
from credo.principals import Directory
from credo.service import Credo
from credo.serving.commit import GroupCommit
from credo.serving.hub import PRINCIPALS, TOKEN_WRITES, Change, Hub
from credo.serving.journal import Journal

CHECKPOINT_THRESHOLD = "256MB"
"""WAL size at which the serving database checkpoints (replayed on restart after a crash)."""

DRAIN_ROWS, DRAIN_SECONDS = 50_000, 1.0
"""The journal is sealed for the mover thread when it holds this many entries or is this old."""

log = logging.getLogger("credo.hub")
P = ParamSpec("P")
T = TypeVar("T")

class Core(Hub):
    """The hub proper: owns the connection, the lock, the audit writer and the change feed."""

    def __init__(self, path: Path | str | None = None, *, generation_file: Path | None = None) -> None:
        self.credo = Credo.open(path)
        self.journal = Journal(audit.journal_path(path))
        self._journal_lock = threading.Lock()
        self._journal_head = audit.head(self.credo.con)
        self._holding_journal = False
        self.credo.append_audit = self._append_audit
        self._sealed_at = time.monotonic()
        self._closing = False
        self._to_move = threading.Event()
        self.mover_failures = 0
        self.checkpoint_failures = 0
        self._mover_failing = False
        """True from a failed move of the journal into the table until one succeeds: not ready."""
        # The audit log grows by ~300 bytes a decision; at DuckDB's default (a checkpoint per
        # 16 MB of WAL) the server would stall every few seconds under load to checkpoint.
        self.credo.con.execute("SET checkpoint_threshold = ?", [CHECKPOINT_THRESHOLD])
        self.lock = threading.RLock()
        self._reader = self.credo.con.cursor()
        self._reader_lock = threading.Lock()
        self._feed_lock = threading.Lock()
        self._generation = 0
        self._changes: deque[tuple[int, Change]] = deque(maxlen=4096)
        self._quiet = False
        self._held: list[Change] | None = None
        self._map: mmap.mmap | None = None
        if generation_file is not None:
            generation_file.write_bytes(b"\0" * 8)
            with generation_file.open("r+b") as f:
                self._map = mmap.mmap(f.fileno(), 8)
        self.credo.listen(self._changed)
        self.writer: GroupCommit[Sequence[Any]] = GroupCommit(self._write_audit, "audit-writer")
        self._mover = threading.Thread(target=self._move, name="audit-mover", daemon=True)
        self._mover.start()

    # -- the service --------------------------------------------------------------------------
    def service(self, operation: Callable[Concatenate[Credo, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one ``Credo`` method under the lock. The journal is moved into the table first (the
        call may read the log); decisions go on being journaled while the call runs, until it
        appends entries of its own (see ``_append_audit``)."""
        with self._store():
            self._drain()
            result = operation(self.credo, *args, **kwargs)
            if operation in TOKEN_WRITES:
                self._changed(PRINCIPALS)
            return result

    def _drain(self) -> None:
        """Move the whole journal into the table (the store held). A failure leaves every entry in the
        journal, durable, and fails this call clearly instead of running it on a log that lags."""
        with self._journal_lock:
            try:
                self.journal.drain(self.credo.con)
            except Exception as exc:
                self._moved(exc)
                raise Unavailable(f"the audit journal cannot be moved into the database ({exc}); its "
                                  "entries are kept and the move is retried", code="audit_journal_stuck") from exc
            self._moved(None)

    def _moved(self, error: Exception | None) -> None:
        """Count a failed move of the journal; readiness and metrics read the state."""
        if error is not None:
            self.mover_failures += 1
            log.error("moving the audit journal into the table failed: %s", error)
        self._mover_failing = error is not None

    @contextmanager
    def _store(self) -> Iterator[None]:
        """The hub lock; on the way out, the journal settled after whatever the holder wrote, and its
        changes announced. Announced only then: until a write has returned, decisions may answer
        from the index as it was (the write is not done), and a worker told earlier would only wait
        for the hub to catch up."""
        with self.lock:
            self._held = []
            try:
                yield
            finally:
                self._settle()
                held, self._held = self._held, None
                for change in held:
                    self._announce(change)

    def policy(self) -> Policy:
        with self.lock:
            return self.credo.policy

    def principals(self) -> Directory:
        """Read through the readers' cursor (what is committed), so it does not wait for a write."""
        with self._reader_lock:
            return Directory.load(self._reader)

    # -- the change feed ----------------------------------------------------------------------
    def _changed(self, residents: Change) -> None:
        if self._quiet:
            return
        if self._held is not None:
            self._held.append(residents)
            return
        self._announce(residents)

    def _announce(self, residents: Change) -> None:
        with self._feed_lock:
            self._generation += 1
            self._changes.append((self._generation, residents))
            if self._map is not None:
                struct.pack_into("q", self._map, 0, self._generation)

    def generation(self) -> int:
        return self._generation

    def changes_since(self, generation: int) -> tuple[int, list[Change] | None]:
        """Changes after ``generation``; None when they are no longer all kept (reload everything).
        The feed has a lock of its own: a worker catching up does not wait for a write in progress."""
        with self._feed_lock:
            now = self._generation
            if generation == now:
                return now, []
            if not self._changes or self._changes[0][0] > generation + 1:
                return now, None
            return now, [c for g, c in self._changes if g > generation]

    def index_rows(self, scope: index.Keys | None, now: datetime) -> index.Rows:
        """Rows for a decision index. Read through a cursor of their own, which sees what is
        committed, so a worker catching up after one write does not wait for the next one in
        progress; only stale standings (a ``changes_at`` passed, a new policy) take the store, to be
        rescored first (quietly: every index sees the passing of ``changes_at`` by itself, so this
        is no change to announce)."""
        policy = self.credo.loaded_policy
        if policy is not None:
            with self._reader_lock:
                if not len(index.stale_in_store(self._reader, policy, now, scope)):
                    return index.read_rows(self._reader, policy, scope)
        with self._store():
            con, policy = self.credo.con, self.credo.policy
            stale = index.stale_in_store(con, policy, now, scope)
            if len(stale):
                self._quiet = True
                try:
                    self.credo.freshen(None if scope is None and len(stale) > 100_000 else stale, now)
                finally:
                    self._quiet = False
            return index.read_rows(con, policy, scope)

    # -- the audit log ------------------------------------------------------------------------
    async def log(self, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        """Return the entries' receipts once they are committed (group commit)."""
        receipts = await self.writer.submit(entries)
        assert receipts is not None  # _write_audit always returns them
        return receipts

    def log_wait(self, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        receipts = self.writer.submit_wait(entries)
        assert receipts is not None
        return receipts

    def _write_audit(self, entries: list[Sequence[Any]]) -> audit.Receipts:
        """One group: chained after the last entry and durable in the journal (a write and an
        fdatasync, not a DuckDB commit). Every second or so the journal is sealed for the mover
        thread to store; the writer itself never waits for the database."""
        with self._journal_lock:
            chained = audit.chain(entries, *self._journal_head)
            self.journal.write(chained)
            self._journal_head = chained.head
            due = self.journal.rows >= DRAIN_ROWS or time.monotonic() - self._sealed_at >= DRAIN_SECONDS
            if due and self.journal.seal():
                self._sealed_at = time.monotonic()
                self._to_move.set()
        return chained.receipts

    def _move(self) -> None:
        """The mover thread: stores each sealed part of the journal in the table, while the writer
        goes on journaling (a store of a second's entries takes a few hundred ms of DuckDB), and
        then signs the table's head (``credo.checkpoints``) when it moved. Entries that stopped
        arriving are sealed here once due, so the last of them are signed within seconds too."""
        while True:
            self._to_move.wait(DRAIN_SECONDS)
            self._to_move.clear()
            with self._journal_lock:
                if time.monotonic() - self._sealed_at >= DRAIN_SECONDS and self.journal.seal():
                    self._sealed_at = time.monotonic()
            with self.lock:
                if self._closing:
                    return
                try:
                    self.journal.store_sealed(self.credo.con)
                except Exception as exc:  # the entries stay sealed and durable; the next round tries again
                    self._moved(exc)
                    continue
                self._moved(None)
                try:
                    self.credo.checkpoint()
                except Exception as exc:  # the head stays unsigned until the next round manages
                    self.checkpoint_failures += 1
                    log.error("signing an audit checkpoint failed: %s", exc)

    def _append_audit(self, con: duckdb.DuckDBPyConnection, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        """A service call's own entries (inside its transaction, the hub lock held). They chain after
        every decision journaled so far: those are moved into the call's transaction first, and the
        journal waits from here until the call ends, since the call's entries may still roll back.
        Lock order is always hub, then journal; the writer never waits for the hub."""
        if not self._holding_journal:
            self._journal_lock.acquire()
            self._holding_journal = True
        behind = self.journal.after(audit.head(con)[0])
        if behind is not None:
            audit.extend(con, *behind)
        return audit.append(con, entries)

    def _settle(self) -> None:
        """After a call that appended entries: the journal forgets what the table now holds, and the
        chain goes on from the table's head if the call's entries were committed (else from the
        journal's, as if the call had not written)."""
        if not self._holding_journal:
            return
        try:
            stored = audit.head(self.credo.con)
            self.journal.settle(stored[0])
            if stored[0] > self._journal_head[0]:
                self._journal_head = stored
        finally:
            self._holding_journal = False
            self._journal_lock.release()

    def stats(self) -> dict[str, float]:
        return {"audit_commits": self.writer.commits, "audit_entries": self.writer.items,
                "audit_failures": self.writer.failures, "audit_writer_alive": float(self.writer.alive),
                "audit_flush_seconds": self.writer.seconds,
                "audit_mover_failures": self.mover_failures, "audit_mover_failing": float(self._mover_failing),
                "audit_checkpoint_failures": self.checkpoint_failures,
                "generation": self._generation}

    def close(self) -> None:
        self.writer.close()
        with self.lock:
            self._closing = True
        self._to_move.set()
        self._mover.join()
        with self.lock, self._journal_lock, self._reader_lock:
            try:
                self.journal.drain(self.credo.con)
            except Exception as exc:  # the journal stays on disk, recovered when the database is next opened
                self._moved(exc)
            self.journal.close()
            self._reader.close()
            self.credo.close()
        if self._map is not None:
            self._map.close()
