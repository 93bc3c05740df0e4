"""Backups: a consistent snapshot of the whole database as Parquet files, and restoring one.

The snapshot is taken inside one read transaction, so DuckDB's MVCC gives a
single point in time while the server keeps writing (the server takes it with
its own connection: ``POST /v1/admin/backup``, which ``credo backup`` falls back
to when the server holds the database). Each table goes to ``TABLE.parquet``
through DuckDB's relational API, so no path or value is ever spliced into SQL
text; the files are readable by the owner only, like the database.

A manifest records the schema version, the tables, their row counts, the audit
chain's head and the size and SHA-256 of every file; it is signed with the
signing key (``credo.signing``) when there is one, the signature beside it.
Why both: row counts and the audit chain cannot see a changed ledger row, a
digest can; and a digest can be recomputed by whoever changed the file, a
signature by a key they do not hold cannot.

Restoring checks, before anything is written, that the manifest is signed by
the trusted key (or ``unsigned`` was asked for), that the folder holds exactly
the manifest's files and that each matches its digest; it then builds the
database in a file of its own beside the target (that schema version, every
table, then the schema brought up to date), checks the counts and verifies the
audit chain, and only then gives it the target's name. A refused restore
leaves no target behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import duckdb

from credo import audit, checkpoints, signing, store
from credo.errors import CredoError
from credo.store import transaction

FORMAT = 3
"""3: format 2 plus every file's digest, the manifest signed; 2: one Parquet file per table, row counts
only (restored only when ``unsigned`` is asked for); 1 was DuckDB's EXPORT DATABASE."""
MANIFEST = "credo-manifest.json"
SIGNATURE = "credo-manifest.sig"
CHECKPOINTS = "audit-checkpoints.jsonl"
"""The signed audit checkpoints up to the snapshot's head, restored beside the new database."""
CONTEXT = b"credo backup manifest\n"
"""Signed before the manifest's bytes, so that the signature of a manifest can never pass for that of
anything else the same key signs (audit checkpoints), nor the other way round."""
_SHAPE: dict[str, type] = {"schema_version": int, "tables": list, "counts": dict, "files": dict}


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The database's own tables (not the connection's temporary ones), from its catalogue."""
    return [str(r[0]) for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]


def _counts(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:  # an identifier from the catalogue, never a value
        counts[table] = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    return counts


def _digest(path: Path) -> dict[str, Any]:
    """A file's size and SHA-256, read in chunks (a ledger file may be larger than memory)."""
    with path.open("rb") as f:
        return {"bytes": os.fstat(f.fileno()).st_size, "sha256": hashlib.file_digest(f, "sha256").hexdigest()}


def _db_file(con: duckdb.DuckDBPyConnection) -> Path:
    """The connection's database file (the server takes backups with its own connection)."""
    [(path,)] = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return Path(path)


def _signer(con: duckdb.DuckDBPyConnection) -> signing.Signer | None:
    """The key that signs this database's backups: CREDO_AUDIT_KEY, else beside the connection's file
    (so the server, taking a backup with its own connection, signs with the same key as the CLI)."""
    return signing.Signer.load(signing.key_path(_db_file(con)))


def _copy_checkpoints(source: Path, directory: Path, upto: int) -> list[str]:
    """The signed checkpoints of the file beside the database, up to the snapshot's audit head (the
    server may sign later ones while the backup is written): a restored log is checked against them
    as the original was. The file names written (none when there is no checkpoint)."""
    lines = [line for line in source.read_bytes().splitlines() if _seq(line) <= upto] if source.is_file() else []
    if not lines:
        return []
    (directory / CHECKPOINTS).write_bytes(b"\n".join(lines) + b"\n")
    return [CHECKPOINTS]


def _seq(line: bytes) -> int:
    """A checkpoint line's sequence number (lines that are not checkpoints are left out: verify names them)."""
    try:
        seq = json.loads(line)["seq"]
    except (ValueError, KeyError, TypeError):
        return sys.maxsize
    return seq if type(seq) is int else sys.maxsize


def backup(con: duckdb.DuckDBPyConnection, directory: Path) -> dict[str, Any]:
    """Write a snapshot into an empty or new directory; returns its manifest and ``signed_by`` (the
    public key that signed it, None without a key)."""
    signer = _signer(con)  # an unreadable key fails the backup before anything is written
    old = os.umask(0o077)  # the snapshot holds what the database holds: owner only
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if any(directory.iterdir()):
            raise CredoError(f"{directory} is not empty", code="backup_exists")
        with transaction(con):
            tables = _tables(con)
            counts = _counts(con, tables)
            head = audit.head(con)
            version = store.schema_version(con)
            for table in tables:
                con.table(table).write_parquet(str(directory / f"{table}.parquet"))
        names = [f"{t}.parquet" for t in tables]
        names += _copy_checkpoints(checkpoints.checkpoint_path(_db_file(con)), directory, head[0])
        files = {name: _digest(directory / name) for name in names}
        manifest = {"format": FORMAT, "schema_version": version, "tables": tables, "counts": counts,
                    "audit_head": list(head), "files": files}
        text = json.dumps(manifest, indent=2).encode()
        (directory / MANIFEST).write_bytes(text)
        if signer is not None:
            (directory / SIGNATURE).write_text(json.dumps(
                {"algorithm": "ed25519", "public_key": signer.public, "signature": signer.sign(CONTEXT + text)},
                indent=2))
    finally:
        os.umask(old)
    return {**manifest, "signed_by": signer.public if signer else None}


def _read_manifest(directory: Path, text: bytes) -> dict[str, Any]:
    """The manifest's content, refused when it is not one this Credo can restore."""
    try:
        manifest = json.loads(text)
        found = manifest.get("format", 1)
    except (ValueError, AttributeError) as exc:
        raise CredoError(f"{directory / MANIFEST} is not a Credo backup manifest: {exc}", code="not_a_backup") from None
    if found not in (2, FORMAT):
        raise CredoError(f"{directory} is a backup of format {found}; this Credo reads format {FORMAT} "
                         f"(and 2)", code="backup_format")
    for key, kind in _SHAPE.items():
        if not isinstance(manifest.get(key), kind) and not (key == "files" and found == 2):
            raise CredoError(f"{directory / MANIFEST}: {key} is missing or not a {kind.__name__}",
                             code="not_a_backup")
    if not set(manifest["counts"]) <= set(manifest["tables"]):  # counted by name: only tables it loads
        raise CredoError(f"{directory / MANIFEST}: counts name a table not in tables", code="not_a_backup")
    return dict(manifest)


def _check_signature(directory: Path, text: bytes, trusted: str | None, unsigned: bool) -> str | None:
    """The trusted public key the manifest is signed with; None when restoring without that proof,
    which only ``unsigned`` allows. A signature that is checked and fails is refused even then."""
    sig_file = directory / SIGNATURE
    if not sig_file.is_file():
        if unsigned:
            return None
        raise CredoError(f"the manifest of {directory} is not signed: its digests prove nothing against whoever "
                         "could rewrite them (restore it anyway with --unsigned)", code="backup_unsigned")
    try:
        sig = json.loads(sig_file.read_text())
        by, signature = str(sig["public_key"]), str(sig["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CredoError(f"{sig_file} is not a manifest signature: {exc!r}", code="backup_signature") from None
    if trusted is None:
        if unsigned:
            return None
        raise CredoError(f"no public key to check the signature of {directory} (by {by}) against: give --public-key "
                         "(the auditor's copy of the key's .pub), or restore it unchecked with --unsigned",
                         code="backup_unsigned")
    if by != trusted:
        raise CredoError(f"the manifest of {directory} is signed by another key ({by}), not the trusted {trusted}",
                         code="backup_signature")
    if not signing.verify(trusted, CONTEXT + text, signature):
        raise CredoError(f"the manifest of {directory} does not match its signature: it was changed after signing",
                         code="backup_signature")
    return trusted


def _check_files(directory: Path, manifest: dict[str, Any]) -> None:
    """The folder holds the manifest's files, no others, each matching its digest; each table has its file."""
    listed: dict[str, Any] = manifest["files"]
    present = {p.name for p in directory.iterdir()} - {MANIFEST, SIGNATURE}
    if missing := sorted(set(listed) - present):
        raise CredoError(f"{directory} lacks {', '.join(missing)}, listed in its manifest", code="backup_mismatch")
    if extra := sorted(present - set(listed)):
        raise CredoError(f"{directory} holds {', '.join(extra)}, not in its manifest", code="backup_mismatch")
    if unfiled := [t for t in manifest["tables"] if f"{t}.parquet" not in listed]:
        raise CredoError(f"the manifest of {directory} lists table(s) {', '.join(map(str, unfiled))} without a file",
                         code="backup_mismatch")
    for name, expected in listed.items():  # names of entries of the folder itself (checked above)
        if not (directory / name).is_file() or _digest(directory / name) != expected:
            raise CredoError(f"{name} in {directory} does not match its digest in the manifest",
                             code="backup_mismatch")


def restore(directory: Path, target: Path, *, public_key: str | None = None,
            unsigned: bool = False) -> dict[str, Any]:
    """Rebuild a database file from a snapshot, once it is proved; refuses to overwrite an existing one.

    ``public_key`` is the key the manifest must be signed with (default: ``signing.trusted_public(target)``);
    ``unsigned`` accepts a manifest without a signature, or one no key is at hand to check. The answer
    is the manifest, ``audit_entries`` and ``signed_by`` (the key checked, None when none was)."""
    manifest_file = directory / MANIFEST
    if not manifest_file.is_file():
        raise CredoError(f"{directory} holds no Credo backup (no {MANIFEST})", code="not_a_backup")
    if target.exists():
        raise CredoError(f"{target} exists: restore into a new file", code="target_exists")
    text = manifest_file.read_bytes()
    manifest = _read_manifest(directory, text)
    if manifest["format"] == FORMAT:
        signed_by = _check_signature(directory, text, signing.trusted_public(target, public_key), unsigned)
        _check_files(directory, manifest)
    elif unsigned:
        signed_by = None
    else:
        raise CredoError(f"{directory} is a backup of format 2, which carries no digests nor signature "
                         "(restore it on its row counts and audit chain alone with --unsigned)", code="backup_unsigned")
    building = target.with_name(f".{target.name}.restoring")
    _remove(building)  # what an interrupted restore into this target left
    try:
        entries = _load(directory, manifest, building)
        try:
            os.link(building, target)  # unlike a rename, never replaces a file that appeared meanwhile
        except FileExistsError:
            raise CredoError(f"{target} exists: restore into a new file", code="target_exists") from None
        if CHECKPOINTS in manifest.get("files", {}):  # the new database's own: one left there is stale
            shutil.copyfile(directory / CHECKPOINTS, checkpoints.checkpoint_path(target))
            os.chmod(checkpoints.checkpoint_path(target), 0o600)
    finally:
        _remove(building)
    return {**manifest, "audit_entries": entries, "signed_by": signed_by}


def _remove(database: Path) -> None:
    for path in (database, database.with_name(database.name + ".wal")):
        path.unlink(missing_ok=True)


def _load(directory: Path, manifest: dict[str, Any], database: Path) -> int:
    """Build ``database`` from the snapshot's files and check it; the audit chain's length."""
    con = store.connect(database, migrate_schema=False)
    try:
        store.migrate(con, upto=int(manifest["schema_version"]))
        with transaction(con):
            for table in manifest["tables"]:
                if table not in _tables(con):
                    raise CredoError(f"the backup holds a table {table!r} unknown to its schema version",
                                     code="restore_mismatch")
                con.execute(f"DELETE FROM {table}")
                try:
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)",
                                [str(directory / f"{table}.parquet")])
                except duckdb.Error as exc:
                    raise CredoError(f"cannot load {table}.parquet of the backup: {str(exc).splitlines()[0]}",
                                     code="restore_mismatch") from None
        store.migrate(con)
        counts = _counts(con, list(manifest["counts"]))
        if counts != manifest["counts"]:
            raise CredoError("restored row counts differ from the backup's manifest", code="restore_mismatch",
                             details={"expected": manifest["counts"], "found": counts})
        verdict = audit.verify(con)
        if not verdict.ok:
            raise CredoError(f"restored audit log does not verify: {verdict.problem}", code="restore_audit")
        con.execute("CHECKPOINT")  # everything in the file itself: only the file is given the target's name
    finally:
        con.close()
    return verdict.entries
