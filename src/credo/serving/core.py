"""The core: the ``Hub`` that holds the database while the server runs.

Three threads, each the only user of what it owns, and no lock between them:

* the owner (``credo.serving.owner``) holds the DuckDB connection and runs, one job at a time
  and in order, every service call, the rescoring of stale standings an index read needs, and
  the moves of the audit journal into the table (then the signing of its head);
* the audit writer (``credo.serving.commit``) chains decisions' entries and makes them durable
  in the journal file (``credo.serving.journal``); it owns the journal and the chain's head and
  never touches DuckDB;
* the reader holds a second cursor on the database, for the decision indexes' rows and the
  token directory: committed data, read while a write holds the owner (``index_rows``).

The journal and the table meet in two places. A move: the writer seals the journal (every
second, or at 50,000 entries) and nudges the owner, which takes the sealed part from the writer
(a job between two groups), stores it and tells the writer the table's head. A service call's
own entries: they go into the call's transaction, chained after every decision journaled so
far, and may still roll back, so the call borrows the writer (``Loan``): a job on the writer's
thread that journals nothing more until the call has ended and then goes on from the table's
head, or from the journal's own if the call's entries did not commit. Until a call appends
entries, decisions go on being journaled and answered while it runs.

With several worker processes the core lives in the ``credo serve`` process and the workers
reach it through ``credo.serving.remote``.
"""

from __future__ import annotations

import logging
import mmap
import struct
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import duckdb

from credo import audit, index, known
from credo.errors import Unavailable
from credo.policy import Policy
from credo.principals import Directory
from credo.service import Credo
from credo.serving import journal
from credo.serving.commit import GroupCommit
from credo.serving.hub import PRINCIPALS, TOKEN_WRITES, Change, Hub
from credo.serving.owner import Owner
from credo.serving.schedule import Scheduler
from credo.store import transaction

CHECKPOINT_THRESHOLD = "256MB"
"""WAL size at which the serving database checkpoints (replayed on restart after a crash)."""

DRAIN_ROWS, DRAIN_SECONDS = 50_000, 1.0
"""The journal is sealed for the owner to store when it holds this many entries or is this old."""

KEPT = 4096
"""Changes the feed keeps; a worker further behind reloads everything."""

log = logging.getLogger("credo.hub")
P = ParamSpec("P")
T = TypeVar("T")
Head = tuple[int, str]


@dataclass(frozen=True)
class Feed:
    """The change feed as last published by the owner: a value replaced whole, never changed, so a
    worker catching up reads it without waiting for anything."""

    generation: int = 0
    changes: tuple[tuple[int, Change], ...] = ()
    known: int = 0
    """The audit entry of the last write announced: every write up to it is in ``changes``."""


class Loan:
    """The audit writer lent to a service call that appends entries of its own: a job on the
    writer's thread (``lend``) that holds it between two groups until ``end`` hands back the
    table's head, so no decision is chained after entries that may yet roll back."""

    def __init__(self, writer: GroupCommit[Sequence[Any]], lend: Callable[[Future[None], Future[Head]], None]) -> None:
        parked: Future[None] = Future()
        self._back: Future[Head] = Future()
        self._done = writer.between(partial(lend, parked, self._back))
        parked.result()

    def end(self, head: Callable[[], Head]) -> None:
        """Hand the writer back the table's head, and wait until it has gone on from there."""
        try:
            self._back.set_result(head())
        except BaseException as exc:  # the writer goes on from its own head, as after a rollback
            self._back.set_exception(exc)
        self._done.result()


class Turn:
    """One job on the owner: the changes its writes noted and the audit writer if it borrowed it.

    Both are settled when the job ends: the writer handed back first, then the changes announced.
    Announced only then: until a write has returned, decisions may answer from the index as it was
    (the write is not done), and a worker told earlier would only wait for the hub to catch up.
    """

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.loan: Loan | None = None


class Core(Hub):
    """The hub proper: the store, its owner, the audit writer, the reader and the change feed."""

    def __init__(self, path: Path | str | None = None, *, generation_file: Path | None = None,
                 scheduled: bool = True) -> None:
        self.credo = Credo.open(path)
        """Opened here; from the owner's start on, used by the owner's thread alone."""
        # The audit log grows by ~300 bytes a decision; at DuckDB's default (a checkpoint per
        # 16 MB of WAL) the server would stall every few seconds under load to checkpoint.
        self.credo.con.execute("SET checkpoint_threshold = ?", [CHECKPOINT_THRESHOLD])
        self.credo.append_audit = self._append_audit
        self.credo.listen(self._changed)
        self.journal = journal.Journal(audit.journal_path(path))
        self._head = audit.head(self.credo.con)
        self._sealed_at = time.monotonic()
        self.mover_failures = 0
        self.checkpoint_failures = 0
        self.due_failures = 0
        self.scheduler = Scheduler(self.credo) if scheduled else None
        """Tells what time alone changes, at its moment (``credo.serving.schedule``); off: only reads do."""
        self.move_error: Exception | None = None
        """Why the last move of the journal into the table failed, until one succeeds: not ready."""
        self._feed = Feed(known=known.last(self.credo.con))
        self._turn = Turn()
        self._map: mmap.mmap | None = None
        if generation_file is not None:
            generation_file.write_bytes(b"\0" * 8)
            with generation_file.open("r+b") as f:
                self._map = mmap.mmap(f.fileno(), 8)
        self._cursor = self.credo.con.cursor()
        self._reader = Owner("hub-reader")
        self.writer: GroupCommit[Sequence[Any]] = GroupCommit(self._write_audit, "audit-writer")
        self._owner = Owner("hub-owner", tick=partial(self._in_turn, self._tick), every=DRAIN_SECONDS)

    # -- the owner's turns ----------------------------------------------------------------------
    def _on_owner(self, job: Callable[[], T]) -> T:
        return self._owner.run(partial(self._in_turn, job))

    def _in_turn(self, job: Callable[[], T]) -> T:
        """Run ``job`` as the owner's turn, then settle what it borrowed and changed (``Turn``)."""
        turn = self._turn = Turn()
        try:
            return job()
        finally:
            try:
                if turn.loan is not None:
                    turn.loan.end(lambda: audit.head(self.credo.con))
            finally:  # what a committed write rescored is announced whatever happened after
                self._announce(turn.changes, wrote=turn.loan is not None)
                if turn.changes and self.scheduler is not None:
                    self.scheduler.changed()

    # -- the service --------------------------------------------------------------------------
    def service(self, operation: Callable[Concatenate[Credo, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one ``Credo`` method on the owner. The journal is moved into the table first (the call
        may read the log); decisions go on being journaled while the call runs, until it appends
        entries of its own (``_append_audit``)."""
        def call() -> T:
            self._drain()
            result = operation(self.credo, *args, **kwargs)
            if operation in TOKEN_WRITES:
                self._turn.changes.append(PRINCIPALS)
            return result

        return self._on_owner(call)

    def policy(self) -> Policy:
        return self._on_owner(lambda: self.credo.policy)

    def principals(self) -> Directory:
        """Read by the reader (what is committed), so that it does not wait for a write."""
        return self._reader.run(lambda: Directory.load(self._cursor))

    def index_rows(self, scope: index.Keys | None, now: datetime) -> tuple[index.Rows, int]:
        """Rows for a decision index and the last write they reflect (its audit entry, read in the same
        transaction: ``credo.serving.runtime`` waits for its announcement before it answers from
        them), read by the reader through its own cursor, which sees what is
        committed: a worker catching up after one write must not wait for the next one in progress
        (an ingest holds the owner for as long as it runs; docs/api.md has the figures). Only stale standings
        (a ``changes_at`` passed, a new policy) go to the owner, to be rescored first the way every
        write goes; like any write's, the rescore is announced, and the indexes re-read those rows."""
        policy = self.credo.loaded_policy  # no database access: safe beside a running call
        if policy is not None:
            rows = self._reader.run(partial(self._committed_rows, policy, scope, now))
            if rows is not None:
                return rows
        return self._on_owner(partial(self._rescored_rows, scope, now))

    def _committed_rows(self, policy: Policy, scope: index.Keys | None, now: datetime
                        ) -> tuple[index.Rows, int] | None:
        """On the reader, in one transaction (one committed state): the rows and the last write, or
        None when some of the rows are stale."""
        with transaction(self._cursor):
            if len(index.stale_in_store(self._cursor, policy, now, scope)):
                return None
            return index.read_rows(self._cursor, policy, scope), known.last(self._cursor)

    def _rescored_rows(self, scope: index.Keys | None, now: datetime) -> tuple[index.Rows, int]:
        con, policy = self.credo.con, self.credo.policy
        stale = index.stale_in_store(con, self.credo.in_force, now, scope)
        if len(stale):
            self.credo.freshen(None if scope is None and len(stale) > 100_000 else stale, now)
        return index.read_rows(con, policy, scope), known.last(con)

    # -- the change feed ----------------------------------------------------------------------
    def _changed(self, residents: Change) -> None:
        """A ``Credo`` listener, called on the owner by a write that rescored ``residents``."""
        self._turn.changes.append(residents)

    def _announce(self, changes: list[Change], *, wrote: bool) -> None:
        """(the owner, at a turn's end) Publish the turn's changes with the last write committed: the
        turn's own, or an earlier one for a rescore by time (which no write made). A write that
        rescored nobody (a batch of duplicates) moves the last write on alone."""
        if not changes and not wrote:
            return
        feed = self._feed
        try:
            last = known.last(self.credo.con)
        except duckdb.Error as exc:  # announced all the same; the indexes wait for the next write's seq
            log.error("reading the last write's audit entry failed: %s", exc)
            last = feed.known
        generation = feed.generation + len(changes)
        numbered = zip(range(feed.generation + 1, generation + 1), changes, strict=True)
        self._feed = Feed(generation, (*feed.changes, *numbered)[-KEPT:], last)
        if self._map is not None:
            struct.pack_into("q", self._map, 0, generation)

    def generation(self) -> int:
        return self._feed.generation

    def changes_since(self, generation: int) -> tuple[int, int, list[Change] | None]:
        feed = self._feed
        if generation == feed.generation:
            return generation, feed.known, []
        if not feed.changes or feed.changes[0][0] > generation + 1:
            return feed.generation, feed.known, None
        return feed.generation, feed.known, [c for g, c in feed.changes if g > generation]

    # -- the audit log: the writer's side -------------------------------------------------------
    async def log(self, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        receipts = await self.writer.submit(entries)
        assert receipts is not None  # _write_audit always returns them
        return receipts

    def log_wait(self, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        receipts = self.writer.submit_wait(entries)
        assert receipts is not None
        return receipts

    def _write_audit(self, entries: list[Sequence[Any]]) -> audit.Receipts:
        """The writer's flush: one group, chained after the last entry and durable in the journal (a
        write and an fdatasync, not a DuckDB commit). The writer never waits for the database: when
        the journal is due it is sealed and the owner nudged to store it."""
        chained = audit.chain(entries, *self._head)
        self.journal.write(chained)
        self._head = chained.head
        if self._seal(force=False):
            self._owner.nudge()
        return chained.receipts

    def _seal(self, *, force: bool) -> bool:
        """(the writer) Seal the journal if it is due, or ``force``; whether it did."""
        due = force or self.journal.rows >= DRAIN_ROWS or time.monotonic() - self._sealed_at >= DRAIN_SECONDS
        if due and self.journal.seal():
            self._sealed_at = time.monotonic()
            return True
        return False

    def _sealed(self, force: bool) -> tuple[Sequence[audit.Chained], bool]:
        """(the writer) The sealed part waiting to be stored, sealed now if due (or ``force``), and
        whether entries are left unsealed behind it (an earlier part was not stored yet)."""
        self._seal(force=force)
        return self.journal.sealed, bool(self.journal.rows)

    def _settle(self, stored: Head) -> None:
        """(the writer) The table holds the chain up to ``stored``: forget what the journal kept of it,
        and go on from there if it is ahead of the journal (a service call's own entries)."""
        self.journal.settle(stored[0])
        if stored[0] > self._head[0]:
            self._head = stored

    def _lend(self, parked: Future[None], back: Future[Head]) -> None:
        """(the writer) Held by a service call (``Loan``) until it hands back the table's head."""
        parked.set_result(None)
        self._settle(back.result())

    # -- the audit log: the owner's side --------------------------------------------------------
    def _from_writer(self, job: Callable[[], T]) -> T:
        return self.writer.between(job).result()

    def _store(self, sealed: Sequence[audit.Chained]) -> None:
        """(the owner) Store sealed groups in the table and let the writer forget them. A failure
        keeps them sealed and durable, is counted (readiness, metrics) and raised."""
        if not sealed:
            return
        try:
            journal.store(self.credo.con, sealed)
        except Exception as exc:
            self._move_failed(exc)
            raise
        self.move_error = None
        self._from_writer(partial(self._settle, audit.head(self.credo.con)))

    def _move_failed(self, error: Exception) -> None:
        self.mover_failures += 1
        self.move_error = error
        log.error("moving the audit journal into the table failed: %s", error)

    def _drain(self) -> None:
        """(the owner) Move the whole journal into the table before a service call. A failure leaves
        every entry in the journal, durable, and fails this call clearly instead of running it on a
        log that lags."""
        for _ in range(2):  # an earlier sealed part, if any, then the rest
            sealed, rest = self._from_writer(partial(self._sealed, True))
            try:
                self._store(sealed)
            except Exception as exc:
                raise Unavailable(f"the audit journal cannot be moved into the database ({exc}); its entries "
                                  "are kept and the move is retried", code="audit_journal_stuck") from exc
            if not rest:
                return

    def _move(self) -> None:
        """(the owner) Every second and when nudged: store the journal's sealed part (sealing it first
        once it is due, so that entries which stopped arriving are stored and signed within seconds
        too), then sign the table's head (``credo.checkpoints``)."""
        sealed, _ = self._from_writer(partial(self._sealed, False))
        try:
            self._store(sealed)
        except Exception:  # counted by _store; the entries stay sealed and the next round tries again
            return
        try:
            self.credo.checkpoint()
        except Exception as exc:  # the head stays unsigned until the next round manages
            self.checkpoint_failures += 1
            log.error("signing an audit checkpoint failed: %s", exc)

    def _tick(self) -> None:
        """(the owner) Every second: the journal's move and signature, then the due times."""
        self._move()
        if self.scheduler is None:
            return
        try:
            self.scheduler.run()
        except Exception as exc:  # tried again at the next tick
            self.due_failures += 1
            log.error("making current the standings past their due time failed: %s", exc)

    def _append_audit(self, con: duckdb.DuckDBPyConnection, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        """A service call's own entries, inside its transaction, on the owner. They chain after every
        decision journaled so far: the call borrows the writer first (``Loan``: nothing more is
        journaled until the call ends), then what the journal holds past the table's head joins the
        call's transaction, and the call's own entries follow."""
        if self._turn.loan is None:
            self._turn.loan = Loan(self.writer, self._lend)
        behind = self.journal.after(audit.head(con)[0])  # the writer is held: the journal stands still
        if behind is not None:
            audit.extend(con, *behind)
        return audit.append(con, entries)

    # -- the rest -------------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        return {"audit_commits": self.writer.commits, "audit_entries": self.writer.items,
                "audit_failures": self.writer.failures, "audit_writer_alive": float(self.writer.alive),
                "audit_flush_seconds": self.writer.seconds,
                "audit_mover_failures": self.mover_failures, "audit_mover_failing": float(self.move_error is not None),
                "audit_checkpoint_failures": self.checkpoint_failures, "due_failures": self.due_failures,
                "generation": self._feed.generation}

    def close(self) -> None:
        self._reader.close(self._cursor.close)
        self._owner.close(partial(self._in_turn, self._last))

    def _last(self) -> None:
        """The owner's last turn. The writer flushes what it was given and stops, so the journal is the
        owner's from here: all of it goes into the table (or stays on disk, recovered when the
        database is next opened), and the store is closed, which signs the head."""
        self.writer.close()
        try:
            self.journal.drain(self.credo.con)
        except Exception as exc:
            self._move_failed(exc)
        self.journal.close()
        self.credo.close()
        if self._map is not None:
            self._map.close()
