"""The server's audit journal: decisions' entries durable in a file before DuckDB has them.

Only the server journals (``credo.serving.core``); the library knows where the journal lies and
moves in what a stopped server left there (``credo.audit.journal_path``, ``credo.audit.recover``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from credo import audit
from credo.errors import CredoError


def store(con: duckdb.DuckDBPyConnection, groups: Sequence[audit.Chained]) -> None:
    """Store journaled groups in the audit table, in one transaction of their own."""
    audit.store_chained(con, audit.table(groups), groups[-1].head)


class Journal:
    """An append-only file that makes the server's audit entries durable in a fraction of a
    millisecond (write + fdatasync), where a DuckDB commit takes about five. One thread at a time
    uses it (the server's audit writer, or whoever holds the writer still).

    Entries are chained when written, one JSON array per line in the table's column order. To move
    them into the audit table, the file is first sealed (``seal``: renamed aside, a fresh file takes
    the next writes) and the sealed entries are then stored (``store_sealed``) while writing goes
    on; the sealed file is removed once the table has them. A write that fails is cut off again, so
    the files only ever hold whole lines of acknowledged groups while the server runs. Whatever a
    crash leaves is moved by ``recover`` when the database is next opened, the sealed file first;
    entries the table already holds (a crash between storing and removing) are skipped by their
    number, and a torn last line, never acknowledged, is dropped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sealed_path = audit.sealed_path(path)
        if self.sealed_path.exists() or (path.exists() and path.stat().st_size):
            raise CredoError(f"the audit journal {path} holds entries: open the database (which recovers "
                             "them) before writing to it", code="audit_journal_pending")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0
        self._pending: list[audit.Chained] = []
        self._sealed: list[audit.Chained] = []
        self.rows = 0
        """Entries written since the last seal."""

    def write(self, chained: audit.Chained) -> None:
        if not chained.hashes:
            return  # nothing to make durable; an empty group must never reach the sealed part
        try:
            os.write(self._fd, chained.lines)
            os.fdatasync(self._fd)
        except BaseException:
            os.ftruncate(self._fd, self._size)
            raise
        self._size += len(chained.lines)
        self._pending.append(chained)
        self.rows += len(chained.hashes)

    def seal(self) -> bool:
        """Set what is written aside for storing and go on in a fresh file; False while an earlier
        seal is not stored yet (or nothing is written)."""
        if self._sealed or not self._pending:
            return False
        os.rename(self.path, self.sealed_path)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        audit.sync_folder(self.path.parent)  # both names durable before an entry is acknowledged in the new file
        os.close(self._fd)
        self._fd, self._size = fd, 0
        self._sealed, self._pending, self.rows = self._pending, [], 0
        return True

    @property
    def sealed(self) -> tuple[audit.Chained, ...]:
        """The groups set aside by the last seal and not stored yet."""
        return tuple(self._sealed)

    def store_sealed(self, con: duckdb.DuckDBPyConnection) -> None:
        """Move the sealed entries into the audit table, then remove the sealed file. Needs only the
        database: writing goes on meanwhile."""
        if self._sealed:
            store(con, self._sealed)
            self.sealed_path.unlink()
            self._sealed = []  # last: a seal waits until the file is gone

    def drain(self, con: duckdb.DuckDBPyConnection) -> None:
        """Everything written into the table, now."""
        self.store_sealed(con)
        if self.seal():
            self.store_sealed(con)

    def after(self, seq: int) -> tuple[pa.Table, tuple[int, str]] | None:
        """What the journal holds past entry ``seq`` (the table's head), as rows and their head."""
        groups = [g for g in [*self._sealed, *self._pending] if g.first > seq]
        return (audit.table(groups), groups[-1].head) if groups else None

    def settle(self, seq: int) -> None:
        """Forget the groups the table now holds (up to entry ``seq``), and the files that held only those."""
        self._sealed = [g for g in self._sealed if g.first > seq]
        if not self._sealed:
            self.sealed_path.unlink(missing_ok=True)
        self._pending = [g for g in self._pending if g.first > seq]
        self.rows = sum(len(g.hashes) for g in self._pending)
        if not self._pending:
            os.ftruncate(self._fd, 0)
            self._size = 0

    def close(self) -> None:
        os.close(self._fd)
