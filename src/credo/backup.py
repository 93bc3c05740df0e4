"""Backups: a consistent snapshot of the whole database as Parquet files, and restoring one.

The snapshot is taken inside one read transaction, so DuckDB's MVCC gives a
single point in time while the server keeps writing (the server takes it with
its own connection: ``POST /v1/admin/backup``, which ``credo backup`` falls back
to when the server holds the database). Each table goes to ``TABLE.parquet``
through DuckDB's relational API, so no path or value is ever spliced into SQL
text; the files are readable by the owner only, like the database. A manifest
records the schema version, the tables, their row counts and the audit chain's
head; restoring builds that schema version, loads every table, brings the
schema up to date, then checks the counts and verifies the audit chain before
declaring success.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb

from credo import audit, store
from credo.errors import CredoError
from credo.store import transaction

FORMAT = 2
"""2: one Parquet file per table (1 was DuckDB's EXPORT DATABASE)."""
MANIFEST = "credo-manifest.json"


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


def backup(con: duckdb.DuckDBPyConnection, directory: Path) -> dict[str, Any]:
    """Write a snapshot into an empty or new directory; returns its manifest."""
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
        manifest = {"format": FORMAT, "schema_version": version, "tables": tables, "counts": counts,
                    "audit_head": list(head)}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    finally:
        os.umask(old)
    return manifest


def restore(directory: Path, target: Path) -> dict[str, Any]:
    """Rebuild a database file from a snapshot; refuses to overwrite an existing one."""
    manifest_file = directory / MANIFEST
    if not manifest_file.is_file():
        raise CredoError(f"{directory} holds no Credo backup (no {MANIFEST})", code="not_a_backup")
    if target.exists():
        raise CredoError(f"{target} exists: restore into a new file", code="target_exists")
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("format") != FORMAT:
        raise CredoError(f"{directory} is a backup of format {manifest.get('format', 1)}; this Credo reads "
                         f"format {FORMAT}", code="backup_format")
    con = store.connect(target, migrate_schema=False)
    try:
        store.migrate(con, upto=int(manifest["schema_version"]))
        with transaction(con):
            for table in manifest["tables"]:
                if table not in _tables(con):
                    raise CredoError(f"the backup holds a table {table!r} unknown to its schema version",
                                     code="restore_mismatch")
                con.execute(f"DELETE FROM {table}")
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)",
                            [str(directory / f"{table}.parquet")])
        store.migrate(con)
        counts = _counts(con, list(manifest["counts"]))
        if counts != manifest["counts"]:
            raise CredoError("restored row counts differ from the backup's manifest", code="restore_mismatch",
                             details={"expected": manifest["counts"], "found": counts})
        verdict = audit.verify(con)
        if not verdict.ok:
            raise CredoError(f"restored audit log does not verify: {verdict.problem}", code="restore_audit")
    finally:
        con.close()
    return {**manifest, "audit_entries": verdict.entries}
