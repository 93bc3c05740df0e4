"""Signed checkpoints of the audit log, and the verification of the chain against them (spec §6).

Why: the hash chain shows an entry edited in place, but whoever can write the database can also cut
the log's tail and move the stored head back, or rewrite entries and re-hash everything after them.
A checkpoint is the head's ``seq`` and ``hash`` and the time, signed with an Ed25519 key kept outside
the database (``credo.signing``); no rewrite under it can produce the hash it signed. Each is kept
twice: in the ``audit_checkpoints`` table and in an append-only file beside the database
(``<db>.audit-checkpoints``, one JSON object a line, fsynced), so that removing one from either place
is itself a finding. The server signs the head every second or so while entries arrive (its journal
mover, off the request path); a CLI command that appended entries signs before it exits. Without a
key nothing is signed and ``verify`` says "unsigned".

What ``verify`` names: for a log cut below a checkpoint or a receipt, the first missing entry; for an
entry whose hash is not the one a checkpoint (or receipt) holds, or a checkpoint whose signature is not
the auditor's key's, the first entry after the last checkpoint that still holds: the rewrite lies in
that range, and no more precise place can be known, since the rewritten entries re-hash consistently.
A checkpoint in one place and not the other names its own entry.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import orjson

from credo import audit, settings, signing
from credo.store import transaction
from credo.times import iso


def checkpoint_path(db: Path | str | None) -> Path:
    """The checkpoint file beside a database file (``CREDO_DB`` when None)."""
    path = Path(db) if db is not None else settings.db_path()
    return path.with_name(path.name + ".audit-checkpoints")


class Checkpoint(NamedTuple):
    """One signed head; ``key`` is the public key that signed (which key, not a proof: the auditor's
    own copy of the public key is what a signature is checked against)."""

    seq: int
    hash: str
    signed_at: str
    key: str
    signature: str

    def payload(self) -> bytes:
        return payload(self.seq, self.hash, self.signed_at)


def payload(seq: int, head_hash: str, signed_at: str) -> bytes:
    """The signed bytes: a fixed label, so a checkpoint's signature can never pass for another document's."""
    return b"credo audit checkpoint\n%d\n%b\n%b\n" % (seq, head_hash.encode(), signed_at.encode())


def stored(con: duckdb.DuckDBPyConnection) -> list[Checkpoint]:
    rows = con.execute("SELECT seq, hash, signed_at, key, signature FROM audit_checkpoints ORDER BY seq").fetchall()
    return [Checkpoint(*r) for r in rows]


def filed(path: Path) -> tuple[list[Checkpoint], list[int]]:
    """The checkpoints in the file, and the numbers of the lines that are not checkpoints."""
    found, bad = [], []
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return [], []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            point = Checkpoint(**orjson.loads(line))
        except (orjson.JSONDecodeError, TypeError):
            bad.append(n)
            continue
        if type(point.seq) is int and all(isinstance(v, str) for v in point[1:]):
            found.append(point)
        else:
            bad.append(n)
    return found, bad


class Notary:
    """Signs the head of one database's log, into its table and its file. The key is read at the
    first signature, so a command that never signs never needs it."""

    def __init__(self, db: Path | str | None) -> None:
        self.key_path = signing.key_path(db)
        self.path = checkpoint_path(db)
        self._signer: signing.Signer | None = None
        self._last: tuple[int, str] | None = None

    def sign(self, con: duckdb.DuckDBPyConnection, head: tuple[int, str], at: str) -> Checkpoint | None:
        """Sign ``head`` unless it is already the last checkpoint (or the log is empty, or there is no
        key). The file first, then the table: each write is durable before the next."""
        if head[0] == 0:
            return None
        if self._last is None:
            last = con.execute("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetchall()
            self._last = (int(last[0][0]), str(last[0][1])) if last else (0, audit.GENESIS)
        if head == self._last:
            return None
        if self._signer is None:
            self._signer = signing.Signer.load(self.key_path)
            if self._signer is None:
                return None
        signer = self._signer
        point = Checkpoint(head[0], head[1], at, signer.public, signer.sign(payload(head[0], head[1], at)))
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, orjson.dumps(point._asdict()) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            audit.sync_folder(self.path.parent)
        with transaction(con):
            con.execute("INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?)", list(point))
        self._last = head
        return point


def parse_receipt(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as a decision answer's receipt gives them."""
    seq, _, h = text.partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise ValueError(f"a receipt must be SEQ:HASH (an entry number and its 64-hex-digit hash), got {text!r}")
    return int(seq), h


def verify(con: duckdb.DuckDBPyConnection, db: Path | str | None, public: str | None = None,
           receipts: list[tuple[int, str]] | None = None) -> audit.Verdict:
    """The chain (``audit.verify``), then every checkpoint of the table and the file, then receipts."""
    verdict = audit.verify(con)
    findings: list[tuple[int | None, str]] = []
    if not verdict.ok:
        findings.append((verdict.first_bad, verdict.problem or ""))
    in_table = stored(con)
    in_file, bad_lines = filed(checkpoint_path(db))
    findings += [(None, f"line {n} of {checkpoint_path(db)} is not a checkpoint") for n in bad_lines]
    table_set, file_set = set(in_table), set(in_file)
    for point in sorted(table_set ^ file_set):
        where, missing = ("the database", "the file") if point in table_set else ("the file", "the database")
        findings.append((point.seq, f"the checkpoint of entry {point.seq} signed at {point.signed_at} is in "
                                    f"{where} but not in {missing} (it was removed from there)"))
    points = sorted(table_set | file_set)
    key = signing.trusted_public(db, public)
    if points and key is None:
        findings.append((None, f"{len(points)} checkpoint(s) but no public key to check their signatures "
                               "(give --public-key)"))
    last_seq = int(con.execute("SELECT coalesce(max(seq), 0) FROM audit").fetchall()[0][0])
    wanted = sorted({p.seq for p in points} | {s for s, _ in receipts or []})
    hashes = dict(con.execute("SELECT seq, hash FROM audit WHERE list_contains(?, seq)", [wanted]).fetchall())
    good: Checkpoint | None = None
    holding: list[Checkpoint] = []
    """The checkpoints that hold (signed by the auditor's key, and the log has their hash), by seq."""
    for point in points:
        signed = key is not None and signing.verify(key, point.payload(), point.signature)
        problem = _against(point.seq, point.hash, hashes, last_seq, good,
                           f"the checkpoint signed at {point.signed_at}")
        if key is not None and not signed:
            findings.append((_after(good), f"the checkpoint of entry {point.seq} signed at {point.signed_at} "
                                           f"is not signed by the auditor's key: {_range(good, point.seq)} "
                                           "are not vouched for (forged, or signed with another key)"))
        elif problem:
            findings.append(problem)
        elif signed:
            good = point
            holding.append(point)
    checked = []
    for seq, h in receipts or []:
        below = max((p for p in holding if p.seq < seq), default=None, key=lambda p: p.seq)
        problem = _against(seq, h, hashes, last_seq, below, "the receipt")
        checked.append({"seq": seq, "hash": h, "ok": problem is None})
        if problem:
            findings.append(problem)
    return _verdict(verdict, findings, points, good, checked)


def _after(good: Checkpoint | None) -> int:
    return good.seq + 1 if good else 1


def _range(good: Checkpoint | None, seq: int) -> str:
    return f"entries {_after(good)} to {seq}" if _after(good) < seq else f"entry {seq}"


def _against(seq: int, expected: str, hashes: dict[int, str], last_seq: int, good: Checkpoint | None,
             what: str) -> tuple[int, str] | None:
    """The finding of a (seq, hash) the log must hold, or None when it does."""
    if seq > last_seq:
        return last_seq + 1, (f"entry {last_seq + 1} is missing: the log ends at entry {last_seq}, but {what} "
                              f"holds entry {seq} (the log was cut)")
    if hashes.get(seq) != expected:
        return _after(good), (f"{_range(good, seq)} were rewritten: entry {seq}'s hash is not the one "
                              f"{what} holds" + (f" (the last checkpoint that holds is of entry {good.seq})"
                                                 if good else ""))
    return None


def _verdict(chain: audit.Verdict, findings: list[tuple[int | None, str]], points: list[Checkpoint],
             good: Checkpoint | None, receipts: list[dict[str, Any]]) -> audit.Verdict:
    """The first bad entry is the lowest one named; a finding without an entry (no key to check with,
    an unreadable line of the file) still fails the verdict."""
    named = sorted((f for f in findings if f[0] is not None), key=lambda f: f[0] or 0)
    first = named[0] if named else (findings[0] if findings else (None, None))
    return audit.Verdict(
        ok=not findings, entries=chain.entries, first_bad=first[0], problem=first[1],
        signing="signed" if points else "unsigned", checkpoints=len(points),
        last_checkpoint=good._asdict() if good else None,
        unsigned_entries=chain.entries - (good.seq if good else 0),
        findings=[{"entry": e, "problem": p} for e, p in findings], receipts=receipts)


def signed_at(when: datetime, tz: str) -> str:
    """The signing time as ISO 8601 with the city's offset (``when`` is naive city time)."""
    text = iso(when, tz)
    assert text is not None
    return text
