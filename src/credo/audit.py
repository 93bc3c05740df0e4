"""The audit log: typed events, appended by one function, hash-chained, verified by one command.

Each entry carries the hash of the one before (``prev_hash``) and its own hash
over its content and that link, so an edited, removed or reordered entry
breaks the chain at the first place it touches. The head (``seq:hash``) is also
kept in ``meta``, so cutting entries off the end is detected too, and so that
an append finds the head with a point read instead of scanning the log.

An entry is a plain tuple (``Entry`` is a NamedTuple): the server logs every
decision, tens of thousands a second, and hashing a tuple serialised by orjson
costs about a microsecond where a dataclass walked by ``asdict`` cost five.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from credo import settings
from credo.errors import CredoError
from credo.store import transaction

GENESIS = "0" * 64
_OPTS = orjson.OPT_SERIALIZE_NUMPY


class Event(StrEnum):
    READ_STANDING = "read.standing"
    READ_EXPLANATION = "read.explanation"
    READ_RECORDS = "read.records"
    READ_ACCESSES = "read.accesses"
    READ_REPORT = "read.report"
    DECISION = "decision"
    RECORD_REVOKED = "record.revoked"
    OBJECTION_OPENED = "objection.opened"
    OBJECTION_RESOLVED = "objection.resolved"
    POLICY_APPLIED = "policy.applied"
    BATCH_INGESTED = "batch.ingested"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFIED = "audit.verified"
    BACKUP_TAKEN = "backup.taken"
    FEED_READ = "feed.read"
    FEED_ACKED = "feed.acked"
    READ_REVIEW = "read.review"
    REVIEW_CONFIRMED = "review.confirmed"
    REVIEW_DECLINED = "review.declined"


class Entry(NamedTuple):
    """One logged event; the order of the fields is the order they are hashed and stored in."""

    logged_at: datetime
    principal: str
    role: str
    event: Event
    resident: int | None = None
    action: str | None = None
    decision: str | None = None
    decision_id: str | None = None
    purpose: str | None = None
    policy: str | None = None
    detail: str | None = None


DecisionEntry = tuple[datetime, str, str, Event, int, str, str, str, str | None, str, str]
"""A decision's entry as a plain tuple in ``Entry``'s field order, which is all the log needs: the batch
check makes thousands a request, and an ``Entry`` costs five times as much to build."""


NOTHING_APPLIED = '{"codes":[],"benefits":[],"records":[]}'
"""The detail of a decision no measure applied to (most of them): made once."""
NOTHING_APPLIED_KNOWN = '{"codes":[],"benefits":[],"records":[],"known":%d}'
"""The same for a decision answered from a decision index, with the last write the index reflects."""


def decision(at: datetime, principal: str, role: str, resident: int, action: str, verdict: str, decision_id: str,
             purpose: str | None, policy: str, reasons: Sequence[Mapping[str, Any]],
             benefits: Sequence[str] = (), asked: Mapping[str, str] | None = None,
             known: int | None = None) -> DecisionEntry:
    """A decision's audit entry: the one place it is made, for the CLI's check and the API's single and
    batch checks. Its ``detail`` is what the decision answered, so that ``credo audit replay`` can
    compare it with a recomputation: ``{"codes", "benefits", "records"}`` (each reason's records as
    ``AGENCY:RECORD_ID``, in the reasons' order), and, for a check asked about another time,
    ``asked`` (``{"as_of", "known_at"}``); for a decision answered from the server's decision index,
    ``known``: the audit entry of the last write that index reflects, which a replay counts up to
    instead of up to the decision's own entry. An entry logged before benefits and records were kept
    holds the reason codes alone, as a JSON array."""
    if not reasons and not benefits and asked is None:
        return at, principal, role, Event.DECISION, resident, action, verdict, decision_id, purpose, policy, \
            NOTHING_APPLIED if known is None else NOTHING_APPLIED_KNOWN % known
    detail: dict[str, Any] = {"codes": [r["code"] for r in reasons], "benefits": list(benefits),
                              "records": [[f"{x['agency']}:{x['record_id']}" for x in r["records"]] for r in reasons]}
    if asked is not None:
        detail["asked"] = dict(asked)
    if known is not None:
        detail["known"] = known
    return (at, principal, role, Event.DECISION, resident, action, verdict, decision_id, purpose, policy,
            orjson.dumps(detail).decode())


FIELDS = list(Entry._fields)
COLUMNS = ["seq", *FIELDS, "prev_hash", "hash"]
COLUMN_LIST = ", ".join(COLUMNS)
"""The columns as SQL names, for the statements below (an identifier list from code, never from data)."""
_SCHEMA = pa.schema([
    ("seq", pa.int64()), ("logged_at", pa.timestamp("us")), ("principal", pa.string()), ("role", pa.string()),
    ("event", pa.string()), ("resident", pa.int64()), ("action", pa.string()), ("decision", pa.string()),
    ("decision_id", pa.string()), ("purpose", pa.string()), ("policy", pa.string()), ("detail", pa.string()),
    ("prev_hash", pa.string()), ("hash", pa.string()),
])


def entry_hash(prev: str, entry: Sequence[Any]) -> str:
    """SHA-256 over the previous hash and the entry's values as a JSON array (datetimes as ISO 8601)."""
    return hashlib.sha256(prev.encode() + orjson.dumps(tuple(entry), option=_OPTS)).hexdigest()


def _stored_head(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    row = con.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchall()
    if not row:
        return None
    seq, _, h = str(row[0][0]).partition(":")
    return int(seq), h


def head(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    """The last entry's (seq, hash): from ``meta`` (a point read), else from the log itself."""
    stored = _stored_head(con)
    if stored is not None:
        return stored
    found = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchall()
    return (int(found[0][0]), str(found[0][1])) if found else (0, GENESIS)


class Receipts(NamedTuple):
    """Where entries joined the chain: the first one's number and each one's hash. An entry's
    ``{"seq", "hash"}`` is the receipt its decision answer carries (spec §6), which a provider or
    resident can keep and an auditor check with ``credo audit verify --receipt SEQ:HASH``."""

    first: int
    hashes: list[str]

    def part(self, start: int, count: int) -> Receipts:
        """The receipts of ``count`` entries from the ``start``-th on (one submitter's share of a group)."""
        return Receipts(self.first + start, self.hashes[start:start + count])

    def receipt(self, i: int = 0) -> dict[str, Any]:
        return {"seq": self.first + i, "hash": self.hashes[i]}


@dataclass(frozen=True)
class Chained:
    """Entries linked into the chain after entry ``first - 1`` (whose hash is ``prev``): each one's
    hash, and the journal's lines for them, made in the same pass."""

    entries: Sequence[Sequence[Any]]
    first: int
    prev: str
    hashes: list[str]
    lines: bytes

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last entry: what the next group chains after."""
        return self.first + len(self.hashes) - 1, self.hashes[-1] if self.hashes else self.prev

    @property
    def receipts(self) -> Receipts:
        return Receipts(self.first, self.hashes)


def chain(entries: Sequence[Sequence[Any]], seq: int, prev: str) -> Chained:
    """Link entries after (seq, prev).

    One loop that only hashes and joins bytes: each entry is serialised once, for its hash, and its
    journal line (``[seq, ...entry, prev_hash, hash]``, what ``orjson`` would write for that list)
    is spliced from the same bytes; the table is built later, once per drain (``table``).
    """
    hashes: list[str] = []
    lines: list[bytes] = []
    link = prev.encode()
    width = len(FIELDS)
    for n, e in enumerate(entries, seq + 1):
        if len(e) != width:  # refused here, for its own group: never journaled, never stored
            raise ValueError(f"an audit entry has {width} fields, got {len(e)}: {e!r}")
        body = orjson.dumps(tuple(e), option=_OPTS)
        new = hashlib.sha256(link + body).hexdigest().encode()
        lines.append(b'[%d,%b,"%b","%b"]\n' % (n, body[1:-1], link, new))
        hashes.append(new.decode())
        link = new
    return Chained(entries, seq + 1, prev, hashes, b"".join(lines))


def table(groups: Sequence[Chained]) -> pa.Table:
    """The audit table's rows for chained groups, in order: built column-wise, one array per column."""
    fields: list[list[Any]] = [[] for _ in FIELDS]
    seqs, prevs, hashes = [], [], []
    for g in groups:
        if not g.hashes:
            continue  # an empty group (a manifest that decided nothing) adds no rows
        for column, values in zip(fields, zip(*g.entries, strict=True), strict=True):
            column.extend(values)
        seqs.append(np.arange(g.first, g.first + len(g.hashes), dtype=np.int64))
        prevs += [g.prev, *g.hashes[:-1]]
        hashes += g.hashes
    resident = FIELDS.index("resident")
    if any(isinstance(r, np.integer) for r in fields[resident]):
        fields[resident] = [None if r is None else int(r) for r in fields[resident]]
    columns = [np.concatenate(seqs) if seqs else np.zeros(0, np.int64), *fields, prevs, hashes]
    return pa.Table.from_arrays([pa.array(c, t.type) for c, t in zip(columns, _SCHEMA, strict=True)],
                                schema=_SCHEMA)


def append(con: duckdb.DuckDBPyConnection, entries: Sequence[Sequence[Any]]) -> Receipts:
    """Chain and store entries (``Entry`` or tuples in its field order); their receipts.

    The caller holds the transaction, so the entries become durable together with
    its other writes.
    """
    chained = chain(entries, *head(con))
    if entries:
        extend(con, table([chained]), chained.head)
    return chained.receipts


def extend(con: duckdb.DuckDBPyConnection, audit_in: pa.Table, last: tuple[int, str]) -> None:
    """Insert rows chained after the stored head and move the head to ``last``, inside the caller's
    transaction. The rows are read through DuckDB's replacement scan of the local variable:
    registering and unregistering a view costs four times the insert itself."""
    con.execute(f"INSERT INTO audit SELECT {COLUMN_LIST} FROM audit_in")
    head_text = f"{last[0]}:{last[1]}"
    if not con.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", [head_text]).fetchall()[0][0]:
        con.execute("INSERT INTO meta VALUES ('audit_head', ?)", [head_text])


def store_chained(con: duckdb.DuckDBPyConnection, audit_in: pa.Table, last: tuple[int, str]) -> None:
    """``extend`` in a transaction of its own (the journal's entries, moved in off the request path)."""
    with transaction(con):
        extend(con, audit_in, last)


# -- the server's journal (``credo.serving.journal``): where it lies, and recovering what it left --------

def journal_path(db: Path | str | None) -> Path:
    """The journal beside a database file (``CREDO_DB`` when None)."""
    path = Path(db) if db is not None else settings.db_path()
    return path.with_name(path.name + ".audit-journal")


def sealed_path(path: Path) -> Path:
    return path.with_name(path.name + ".sealed")


def sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Move entries a stopped server left in its journal (its sealed part first) into the audit
    table; how many.

    The journal must continue this database's chain: its entries the table already holds must be
    the same entries, and the first new one must link to the table's last. Anything else (a journal
    left beside a recreated database, an edit) is refused rather than spliced into the log.
    """
    files = [p for p in (sealed_path(path), path) if p.exists() and p.stat().st_size]
    rows = []
    for line in b"\n".join(p.read_bytes() for p in files).split(b"\n"):
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # the torn last line of a write that was never acknowledged
    last, link = head(con)
    known = [r for r in rows if r[0] <= last]
    rows = [r for r in rows if r[0] > last]
    stored = con.execute("SELECT hash FROM audit WHERE seq = ?", [known[-1][0]]).fetchall() if known else []
    if (known and stored != [(known[-1][-1],)]) or (rows and (rows[0][0] != last + 1 or rows[0][-2] != link)):
        raise CredoError(f"the audit journal {path} does not continue this database's log (it ends at "
                         f"entry {last}); it belongs to another database or was altered: move it away "
                         "to open this one", code="audit_journal_mismatch")
    for row in rows:
        row[1] = datetime.fromisoformat(row[1])
    if rows:
        table = pa.Table.from_pylist([dict(zip(COLUMNS, r, strict=True)) for r in rows], schema=_SCHEMA)
        store_chained(con, table, (rows[-1][0], rows[-1][-1]))
    sealed_path(path).unlink(missing_ok=True)
    if path.exists():
        with path.open("r+b") as f:
            f.truncate(0)
    return len(rows)


@dataclass
class Verdict:
    """The chain's verdict (``verify``), extended by ``credo.checkpoints.verify`` with the checkpoints':
    whether the log is signed, how many checkpoints, the last that holds, the entries after it, every
    finding (``{"entry", "problem"}``; ``first_bad`` and ``problem`` are the lowest entry's) and the
    receipts checked."""

    ok: bool
    entries: int
    first_bad: int | None = None
    problem: str | None = None
    signing: str = "unsigned"
    checkpoints: int = 0
    last_checkpoint: dict[str, Any] | None = None
    unsigned_entries: int | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify(con: duckdb.DuckDBPyConnection) -> Verdict:
    """Walk the chain in order; name the first entry that does not fit."""
    cur = con.execute(f"SELECT {COLUMN_LIST} FROM audit ORDER BY seq")
    prev, expected_seq, count = GENESIS, 1, 0
    while batch := cur.fetchmany(10_000):
        for row in batch:
            seq, *values, prev_hash, h = row
            if seq != expected_seq:
                if seq == expected_seq - 1:
                    return Verdict(False, count, seq, f"entry {seq} appears twice (an entry was copied or "
                                   "renumbered)")
                return Verdict(False, count, expected_seq, f"entry {expected_seq} is missing: entry {seq} "
                               f"follows entry {expected_seq - 1} (an entry was removed or renumbered)")
            if prev_hash != prev:
                return Verdict(False, count, seq, f"entry {seq} does not link to the entry before it "
                               "(entries were removed or reordered)")
            if entry_hash(prev, values) != h:
                return Verdict(False, count, seq, f"entry {seq} was altered (its hash does not match)")
            prev, expected_seq, count = h, expected_seq + 1, count + 1
    stored = con.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchall()
    if stored and stored[0][0] != f"{count}:{prev}":
        return Verdict(False, count, count + 1, "entries were removed from the end of the log "
                       f"(the head names {str(stored[0][0]).partition(':')[0]})")
    return Verdict(True, count)


EXPORT_WINDOW = 20_000
"""Sequence numbers read per query by ``export``: about 10 MB of rows at a time."""
EXPORT_MEMORY = "64MB"
"""DuckDB's memory limit while ``export`` reads (see there)."""


def export(con: duckdb.DuckDBPyConnection) -> Iterator[dict[str, Any]]:
    """Every entry, oldest first, read one window of sequence numbers at a time, so memory stays
    bounded at any size of log: one ``ORDER BY seq`` over the whole table sorts all of it in memory
    first (11.5 GB for 4.56 M entries). A window is a range filter that the table's min/max per row
    group answers without reading the rest. DuckDB also keeps every block it read cached, up to its
    memory limit (70 bytes an entry), so the limit is lowered while the export reads and set back
    to the store's (``CREDO_MEMORY_LIMIT``) when it ends."""
    con.execute("SET memory_limit = ?", [EXPORT_MEMORY])
    try:
        low, high = con.execute("SELECT coalesce(min(seq), 1), coalesce(max(seq), 0) FROM audit").fetchall()[0]
        for start in range(int(low), int(high) + 1, EXPORT_WINDOW):
            rows = con.execute(f"SELECT {COLUMN_LIST} FROM audit WHERE seq >= ? AND seq < ? ORDER BY seq",
                               [start, start + EXPORT_WINDOW]).fetchall()
            for r in rows:
                yield dict(zip(COLUMNS, r, strict=True))
    finally:
        limit = settings.current().memory_limit
        con.execute("SET memory_limit = ?", [limit]) if limit else con.execute("RESET memory_limit")


def page(con: duckdb.DuckDBPyConnection, *, resident: int | None = None, after: int = 0,
         limit: int = 100) -> list[dict[str, Any]]:
    """Entries after ``seq`` ``after``, oldest first; only those about ``resident`` when given."""
    rows = con.execute(f"SELECT {COLUMN_LIST} FROM audit WHERE seq > ? AND (?::BIGINT IS NULL OR resident = ?) "
                       "ORDER BY seq LIMIT ?", [after, resident, resident, limit]).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]
