"""The DuckDB store: one file, numbered migrations applied on open.

The store knows tables, not policy semantics. Residents are keyed by the
int64 of their ID's first 17 digits (the check character is derived), which
halves the memory of every join at city scale. Times are naive city time
(see ``credo.times``). Human decisions (revocations, objection steps) and the
audit log are append-only tables: rows are added, never updated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from credo import settings
from credo.errors import CredoError

MIGRATIONS: list[str] = [
    # 1: the foundation
    """
    CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    CREATE TABLE policies (version INTEGER, name VARCHAR, document VARCHAR, sha256 VARCHAR,
        timezone VARCHAR, applied_at TIMESTAMP, applied_by VARCHAR);
    CREATE TABLE residents (resident BIGINT, name VARCHAR, district VARCHAR, status VARCHAR,
        status_date TIMESTAMP, updated_at TIMESTAMP, batch INTEGER);
    CREATE TABLE phone_links (phone BIGINT, resident BIGINT, valid_from TIMESTAMP,
        valid_until TIMESTAMP, batch INTEGER);
    CREATE TABLE batches (batch INTEGER, agency VARCHAR, source VARCHAR, principal VARCHAR,
        received_at TIMESTAMP, accepted BIGINT, duplicates BIGINT, rejected BIGINT);
    CREATE TABLE ledger (agency VARCHAR, record_id VARCHAR, type VARCHAR, resident BIGINT,
        subject VARCHAR, occurred_at TIMESTAMP, resolves VARCHAR, attributes VARCHAR, batch INTEGER);
    CREATE TABLE revocations (agency VARCHAR, record_id VARCHAR, revoked_at TIMESTAMP,
        reason VARCHAR, principal VARCHAR, objection INTEGER);
    CREATE TABLE rejects (batch INTEGER, agency VARCHAR, source VARCHAR, line BIGINT, row_text VARCHAR,
        reason VARCHAR, field VARCHAR, message VARCHAR, received_at TIMESTAMP);
    CREATE TABLE standings (resident BIGINT, score INTEGER, grade VARCHAR, changes_at TIMESTAMP,
        as_of TIMESTAMP, policy_version INTEGER);
    CREATE TABLE standing_hits (resident BIGINT, list VARCHAR, agency VARCHAR, record_id VARCHAR,
        type VARCHAR, occurred_at TIMESTAMP, takes_effect TIMESTAMP, expires_at TIMESTAMP);
    CREATE TABLE objection_events (objection INTEGER, step VARCHAR, resident BIGINT, agency VARCHAR,
        record_id VARCHAR, text VARCHAR, principal VARCHAR, happened_at TIMESTAMP);
    CREATE TABLE audit (seq BIGINT, logged_at TIMESTAMP, principal VARCHAR, role VARCHAR, event VARCHAR,
        resident BIGINT, action VARCHAR, decision VARCHAR, decision_id VARCHAR, purpose VARCHAR,
        policy VARCHAR, detail VARCHAR, prev_hash VARCHAR, hash VARCHAR);
    CREATE TABLE principals (token_hash VARCHAR, role VARCHAR, agency VARCHAR, provider VARCHAR,
        resident BIGINT, label VARCHAR, created_at TIMESTAMP);
    """,
    # 2: notices, so that a grace period is a real notice before punishment
    """
    CREATE TABLE notices (resident BIGINT, created_at TIMESTAMP, kind VARCHAR, detail VARCHAR);
    """,
    # 3: "record.added" notices are read from the ledger itself (credo.notices), no longer copied
    """
    DELETE FROM notices WHERE kind = 'record.added';
    """,
    # 4: tokens get a number and an expiry, and can be revoked; web sessions can be signed out
    """
    ALTER TABLE principals ADD COLUMN id INTEGER;
    ALTER TABLE principals ADD COLUMN expires_at TIMESTAMP;
    UPDATE principals SET id = n.id FROM (SELECT token_hash,
        row_number() OVER (ORDER BY created_at, token_hash) AS id FROM principals) n
        WHERE principals.token_hash = n.token_hash;
    CREATE TABLE token_revocations (id INTEGER, revoked_at TIMESTAMP, principal VARCHAR);
    CREATE TABLE ended_sessions (session VARCHAR, ended_at TIMESTAMP, until BIGINT);
    """,
    # 5: signed checkpoints of the audit log (credo.checkpoints), also kept in a file beside the database
    """
    CREATE TABLE audit_checkpoints (seq BIGINT, hash VARCHAR, signed_at VARCHAR, key VARCHAR, signature VARCHAR);
    """,
    # 6: when Credo came to know each write (credo.known): the second clock, K (spec §4 "Two clocks")
    """
    CREATE TABLE known (seq BIGINT, known_at TIMESTAMP, kind VARCHAR, batch INTEGER, agency VARCHAR,
        record_id VARCHAR, objection INTEGER, step VARCHAR, policy INTEGER);
    """,
    # 7: redress (credo.redress): each logged decision examined after a withdrawal, and whether it needs redress
    """
    CREATE TABLE redress (decision_id VARCHAR, seq BIGINT, resident BIGINT, principal VARCHAR, provider VARCHAR,
        action VARCHAR, decided_at TIMESTAMP, needed BOOLEAN, said VARCHAR, holds VARCHAR, withdrawn VARCHAR,
        found_at TIMESTAMP, feed_seq BIGINT);
    """,
    # 8: the providers' change feed (credo.providerfeed): each change of a decision, numbered without a gap,
    # the position each provider acknowledged, and a provider token's actions (NULL: every action)
    """
    CREATE TABLE feed (seq BIGINT, resident BIGINT, action VARCHAR, decision VARCHAR, benefits VARCHAR[],
        reasons VARCHAR[], effective_at TIMESTAMP, cause VARCHAR, policy VARCHAR, recorded_at TIMESTAMP);
    CREATE TABLE feed_acks (provider VARCHAR, seq BIGINT, acked_at TIMESTAMP, principal VARCHAR);
    ALTER TABLE principals ADD COLUMN actions VARCHAR[];
    """,
    # 9: identity review (spec §10): rows about a described person, held apart from the ledger with
    # their ranked candidates; judgements appended, never updated; the matching model's parameters
    """
    CREATE TABLE review_items (item INTEGER, agency VARCHAR, record_id VARCHAR, type VARCHAR,
        occurred_at TIMESTAMP, attributes VARCHAR, subject_name VARCHAR, subject_birth_date DATE,
        subject_district VARCHAR, source VARCHAR, line BIGINT, row_text VARCHAR, batch INTEGER,
        received_at TIMESTAMP);
    CREATE TABLE review_candidates (item INTEGER, rank INTEGER, resident BIGINT, probability DOUBLE,
        weight DOUBLE, comparisons VARCHAR);
    CREATE TABLE review_judgements (item INTEGER, step VARCHAR, resident BIGINT, reason VARCHAR,
        principal VARCHAR, role VARCHAR, judged_at TIMESTAMP, batch INTEGER);
    CREATE TABLE identity_models (estimated_at TIMESTAMP, residents BIGINT, registry_batch INTEGER,
        model VARCHAR);
    """,
    # 10: jurisdictions (credo.jurisdictions): each policy version names the jurisdiction it is in force in
    # (NULL: a policy without a jurisdiction block, the one slot of a single-city deployment)
    """
    ALTER TABLE policies ADD COLUMN jurisdiction VARCHAR;
    """,
    # 11: each district a resident was registered in, with the batch that said so (credo.jurisdictions:
    # a move between cities moves the resident from the time its batch is known)
    """
    CREATE TABLE districts (resident BIGINT, district VARCHAR, batch INTEGER);
    INSERT INTO districts SELECT resident, district, batch FROM residents;
    """,
    # 12: standings and list hits per (resident, jurisdiction), the home one marked (credo.jurisdictions);
    # those stored before were of the one policy in force, which holds everyone
    """
    ALTER TABLE standings ADD COLUMN jurisdiction VARCHAR;
    ALTER TABLE standings ADD COLUMN home BOOLEAN;
    ALTER TABLE standing_hits ADD COLUMN jurisdiction VARCHAR;
    ALTER TABLE standing_hits ADD COLUMN home BOOLEAN;
    UPDATE standings SET home = true,
        jurisdiction = (SELECT name FROM policies WHERE version = standings.policy_version);
    UPDATE standing_hits SET home = true, jurisdiction = s.jurisdiction FROM standings s
        WHERE s.resident = standing_hits.resident;
    """,
]


def connect(path: Path | str | None = None, *, read_only: bool = False, migrate_schema: bool = True,
            create: bool = True) -> duckdb.DuckDBPyConnection:
    """Open (creating with mode 0600 unless ``create`` is False) the database and bring its schema up
    to date. A file that is no DuckDB database, or one another process holds, is a one-line
    ``CredoError``; with ``create=False`` so is a path holding no Credo database."""
    path = Path(path) if path is not None else settings.db_path()
    if not create and not path.exists():
        raise CredoError(f"no Credo database at {path}: give the right --db, or create one with `credo init`",
                         code="no_database")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    # The database and its WAL are readable by the owner only. DuckDB creates the WAL at the first
    # write and again after each checkpoint, at moments no caller sees, so the process's umask is
    # tightened for good (never loosened): every file of a process holding a database is private.
    os.umask(os.umask(0o077) | 0o077)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise _unopenable(path, exc) from None
    _configure(con)
    if not create and schema_version(con) == 0:
        con.close()
        raise CredoError(f"{path} is a DuckDB file but holds no Credo database", code="no_database")
    if migrate_schema and not read_only:
        migrate(con)
    return con


_HOLDER = re.compile(r"\(PID (\d+)\)")


def _unopenable(path: Path, exc: duckdb.Error) -> CredoError:
    """DuckDB's refusal to open a file, as one line saying what is wrong (its own message names
    the holder of a lock by executable only, and adds a link)."""
    text = str(exc)
    if "not a valid DuckDB database" in text:
        return CredoError(f"{path} is not a DuckDB database", code="not_a_database")
    held = _HOLDER.search(text) if "lock" in text else None
    if held:
        pid = int(held.group(1))
        holder = "`credo serve`" if _is_server(pid) else "another process"
        return CredoError(f"the database {path} is held by {holder} (PID {pid}): stop it, or go through "
                          "the server's HTTP API", code="database_held")
    return CredoError(f"cannot open the database {path}: {text.splitlines()[0]}", code="database_unopenable")


def _is_server(pid: int) -> bool:
    """Whether ``pid`` runs ``credo serve`` (Linux's /proc; elsewhere the holder is not named)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in argv and any(b"credo" in a for a in argv)


@contextmanager
def creating(path: Path) -> Iterator[Path]:
    """A new database file made whole or not at all: the caller builds (and closes, checkpointed) the
    draft this yields beside ``path``, which is then linked into place. A failure or a crash
    leaves no file a later command would take for a database, and the link (unlike a rename)
    never replaces one another process made meanwhile."""
    if path.exists():
        raise CredoError(f"{path} already exists", code="already_initialised")
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.draft-{os.getpid()}")
    try:
        yield draft
        try:
            os.link(draft, path)
        except FileExistsError:
            raise CredoError(f"{path} was created meanwhile by another process",
                             code="already_initialised") from None
    finally:
        for leftover in (draft, draft.with_name(draft.name + ".wal")):
            leftover.unlink(missing_ok=True)


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    configured = settings.current()
    limit, threads = configured.memory_limit, configured.threads
    if limit:
        con.execute("SET memory_limit = ?", [limit])
    if threads:
        con.execute("SET threads = ?", [threads])
    con.execute("SET TimeZone = 'UTC'")


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(row[0][0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection, upto: int | None = None) -> int:
    """Apply the migrations not yet applied, each in its own transaction."""
    current = schema_version(con)
    target = len(MIGRATIONS) if upto is None else upto
    for number in range(current + 1, target + 1):
        with transaction(con):
            con.execute(MIGRATIONS[number - 1])
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(number)])
    return target


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a crash or an error inside leaves the database as before."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def next_id(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    """The next number of a sequence kept as max+1 (callers hold the write transaction)."""
    assert table.isidentifier() and column.isidentifier()
    return int(con.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}").fetchall()[0][0])
