"""Backups: a consistent snapshot of the whole database as Parquet files, and restoring one.

The snapshot is taken inside one read transaction, so DuckDB's MVCC gives a
single point in time while the server keeps writing. A manifest records the
schema version, row counts and the audit chain's head; restoring checks the
counts and verifies the audit chain before declaring success.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb

from credo import audit, store
from credo.errors import CredoError
from credo.store import transaction

TABLES = ("residents", "phone_links", "ledger", "revocations", "rejects", "standings", "objection_events",
          "audit", "policies", "principals", "batches", "notices")
_SAFE_PATH = re.compile(r"^[^'\x00]+$")


def _quoted(path: Path) -> str:
    text = str(path.resolve())
    if not _SAFE_PATH.match(text):
        raise CredoError(f"backup directory {text!r} contains a quote", code="bad_path")
    return "'" + text + "'"


def backup(con: duckdb.DuckDBPyConnection, directory: Path) -> dict[str, Any]:
    """Write a snapshot into an empty or new directory; returns its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise CredoError(f"{directory} is not empty", code="backup_exists")
    with transaction(con):
        counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in TABLES}
        head = audit.head(con)
        version = store.schema_version(con)
        con.execute(f"EXPORT DATABASE {_quoted(directory)} (FORMAT parquet)")
    manifest = {"schema_version": version, "counts": counts, "audit_head": list(head)}
    (directory / "credo-manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def restore(directory: Path, target: Path) -> dict[str, Any]:
    """Rebuild a database file from a snapshot; refuses to overwrite an existing one."""
    manifest_file = directory / "credo-manifest.json"
    if not manifest_file.is_file():
        raise CredoError(f"{directory} holds no Credo backup (no credo-manifest.json)", code="not_a_backup")
    if target.exists():
        raise CredoError(f"{target} exists: restore into a new file", code="target_exists")
    manifest = json.loads(manifest_file.read_text())
    con = store.connect(target, migrate_schema=False)
    try:
        con.execute(f"IMPORT DATABASE {_quoted(directory)}")
        store.migrate(con)
        counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in TABLES}
        if counts != manifest["counts"]:
            raise CredoError("restored row counts differ from the backup's manifest", code="restore_mismatch",
                             details={"expected": manifest["counts"], "found": counts})
        verdict = audit.verify(con)
        if not verdict.ok:
            raise CredoError(f"restored audit log does not verify: {verdict.problem}", code="restore_audit")
    finally:
        con.close()
    return {**manifest, "audit_entries": verdict.entries}
