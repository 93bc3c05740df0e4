"""The audit log: typed events, appended by one function, hash-chained, verified by one command.

Each entry carries the hash of the one before (``prev_hash``) and its own hash
over its content and that link, so an edited, removed or reordered entry
breaks the chain at the first place it touches. The head hash is also kept in
``meta``, so cutting entries off the end is detected too.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import duckdb
import orjson

GENESIS = "0" * 64


class Event(StrEnum):
    READ_STANDING = "read.standing"
    READ_EXPLANATION = "read.explanation"
    READ_RECORDS = "read.records"
    DECISION = "decision"
    RECORD_REVOKED = "record.revoked"
    OBJECTION_OPENED = "objection.opened"
    OBJECTION_RESOLVED = "objection.resolved"
    POLICY_APPLIED = "policy.applied"
    BATCH_INGESTED = "batch.ingested"
    TOKEN_CREATED = "token.created"
    AUDIT_EXPORTED = "audit.exported"


@dataclass(frozen=True)
class Entry:
    logged_at: datetime
    principal: str
    role: str
    event: str
    resident: int | None = None
    action: str | None = None
    decision: str | None = None
    decision_id: str | None = None
    purpose: str | None = None
    policy: str | None = None
    detail: str | None = None


FIELDS = [f for f in Entry.__dataclass_fields__]


def entry_hash(prev: str, entry: Entry) -> str:
    body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(entry).items()}
    return hashlib.sha256(prev.encode() + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def head(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    row = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchall()
    return (int(row[0][0]), str(row[0][1])) if row else (0, GENESIS)


def append(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> list[int]:
    """Chain and store entries; the caller's transaction makes them durable with its other writes."""
    seq, prev = head(con)
    rows: list[tuple[Any, ...]] = []
    for e in entries:
        seq += 1
        h = entry_hash(prev, e)
        rows.append((seq, *(getattr(e, f) for f in FIELDS), prev, h))
        prev = h
    if rows:
        con.executemany(f"INSERT INTO audit VALUES ({', '.join('?' * (len(FIELDS) + 3))})", rows) \
            if len(rows) < 8 else _append_arrow(con, rows)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('audit_head', ?)", [f"{seq}:{prev}"])
    return [r[0] for r in rows]


def _append_arrow(con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> None:
    import pyarrow as pa

    names = ["seq", *FIELDS, "prev_hash", "hash"]
    table = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
    con.register("audit_in", table)
    con.execute(f"INSERT INTO audit SELECT {', '.join(names)} FROM audit_in")
    con.unregister("audit_in")


@dataclass
class Verdict:
    ok: bool
    entries: int
    first_bad: int | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify(con: duckdb.DuckDBPyConnection) -> Verdict:
    """Walk the chain in order; name the first entry that does not fit."""
    cur = con.execute(f"SELECT seq, {', '.join(FIELDS)}, prev_hash, hash FROM audit ORDER BY seq")
    prev, expected_seq, count = GENESIS, 1, 0
    while batch := cur.fetchmany(10_000):
        for row in batch:
            seq, *values, prev_hash, h = row
            entry = Entry(*values)
            if seq != expected_seq:
                return Verdict(False, count, seq, f"entry {seq} found where {expected_seq} was expected "
                               "(an entry was removed or reordered)")
            if prev_hash != prev:
                return Verdict(False, count, seq, f"entry {seq} does not link to the entry before it")
            if entry_hash(prev, entry) != h:
                return Verdict(False, count, seq, f"entry {seq} was altered (its hash does not match)")
            prev, expected_seq, count = h, expected_seq + 1, count + 1
    stored = con.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchall()
    if stored and stored[0][0] != f"{count}:{prev}":
        return Verdict(False, count, count + 1, "entries were removed from the end of the log")
    return Verdict(True, count)


def export(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = ["seq", *FIELDS, "prev_hash", "hash"]
    rows = con.execute(f"SELECT {', '.join(cols)} FROM audit ORDER BY seq").fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]
