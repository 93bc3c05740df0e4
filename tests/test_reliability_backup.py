"""``credo backup DIR`` while ``credo serve`` holds the database, and ``credo restore`` from it.

The server holds DuckDB's file lock, so the CLI finds the database locked and asks the server
(``POST /v1/admin/backup`` with the operator token in CREDO_TOKEN) to take the snapshot with its own
connection. One snapshot is taken while an agency writes batches and a provider checks: restored, it
verifies its audit chain, holds every batch whole, and its stored standings equal a full recompute of
its own ledger. A second is taken once the writers stop: restored, it equals the live database table
by table (standings included).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from credo import backup, scoring, signing
from credo.service import Credo
from credo.store import transaction
from tests.conftest import NOW, PEOPLE, City, Live, rid

TABLES = ("ledger", "batches", "rejects", "standings", "standing_hits", "objection_events", "revocations",
          "principals", "policies", "residents", "phone_links", "notices")


def cli(city: City, *args: str, port: str = "9", db: Path | None = None,
        token: str | None = "operator") -> subprocess.CompletedProcess[str]:
    """A ``credo`` command as an operator runs it beside the server (CREDO_HOST, CREDO_PORT, CREDO_TOKEN)."""
    env = {**os.environ, **city.env(), "CREDO_HOST": "127.0.0.1", "CREDO_PORT": port}
    env.pop("CREDO_TOKEN", None)
    if token:
        env["CREDO_TOKEN"] = city.tokens[token]
    if db is not None:
        env["CREDO_DB"] = str(db)
    return subprocess.run([sys.executable, "-c", "from credo.cli import main; main()", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def writers(live: Live, stop: threading.Event, acked: list[str]) -> list[threading.Thread]:
    def agency() -> None:
        with live.client("agency") as c:
            n = 0
            while not stop.is_set():
                n += 1
                rows = [{"record_id": f"bk{n}-{i}", "type": "tax.arrears", "subject": rid(p),
                         "occurred_at": "2024-08-20"} for i, p in enumerate("ABCDEFGHIJ"[: 1 + n % 10])]
                r = c.post("/v1/records", json=rows)
                assert r.status_code == 200, r.text
                acked.append(f"bk{n}")

    def provider() -> None:
        with live.client("provider") as c:
            while not stop.is_set():
                r = c.get("/v1/check", params={"resident_id": rid("A"), "action": "rail.high_speed.book",
                                               "purpose": "backup test"})
                assert r.status_code == 200, r.text

    return [threading.Thread(target=agency), threading.Thread(target=provider)]


def rows(db: Path, table: str) -> list[tuple[object, ...]]:
    credo = Credo.open(db)
    try:
        return credo.con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    finally:
        credo.close()


def test_backup_while_serving_then_restore(server: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    city, port = server.city, server.url.rsplit(":", 1)[1]
    root = city.folder / "backups"  # CREDO_BACKUP_DIR's default: beside the database
    key = signing.key_path(city.db)  # the server signs with the key beside its database, made while it runs
    public = signing.make_key(key)
    stop, acked = threading.Event(), []
    threads = writers(server, stop, acked)
    for t in threads:
        t.start()
    try:
        while len(acked) < 3:
            threading.Event().wait(0.05)
        during = cli(city, "backup", str(root / "during"), port=port)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert during.returncode == 0, during.stderr
    after = cli(city, "backup", str(root / "after"), port=port)
    assert after.returncode == 0, after.stderr
    for taken in (during, after):
        assert f"manifest signed by {public}" in " ".join(taken.stdout.split()), taken.stdout
    signed = (root / "after" / backup.SIGNATURE).read_text()
    assert signing.verify(public, backup.CONTEXT + (root / "after" / backup.MANIFEST).read_bytes(),
                          orjson.loads(signed)["signature"])
    for f in (root / "during").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f"{f} is readable by others"
    with server.client("operator") as c:
        logged = c.get("/v1/audit", params={"limit": 1000}).json()["entries"]
    assert [e["event"] for e in logged].count("backup.taken") == 2

    # refused: no token, a folder outside CREDO_BACKUP_DIR, a folder already used
    no_token = cli(city, "backup", str(root / "x"), port=port, token=None)
    assert no_token.returncode == 2 and "CREDO_TOKEN" in no_token.stderr
    outside = cli(city, "backup", str(tmp_path / "elsewhere"), port=port)
    assert outside.returncode == 2 and "CREDO_BACKUP_DIR" in outside.stderr
    again = cli(city, "backup", str(root / "after"), port=port)
    assert again.returncode == 2 and "not empty" in again.stderr
    server.proc.send_signal(2)
    server.proc.wait(60)

    # the snapshot taken under writes: consistent in itself
    restored = tmp_path / "during.duckdb"
    done = cli(city, "restore", str(root / "during"), "--public-key", str(signing.public_path(key)), db=restored)
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("CREDO_NOW", NOW)
    credo = Credo.open(restored)
    try:
        assert credo.verify_audit(public_key=public).ok  # against the checkpoints it carried
        per_batch = credo.con.execute("SELECT regexp_extract(record_id, '^(bk[0-9]+)-', 1) AS b, count(*) "
                                      "FROM ledger WHERE starts_with(record_id, 'bk') GROUP BY b").fetchall()
        assert per_batch, "the snapshot holds none of the batches acknowledged before it"
        assert all(n == 1 + int(b[2:]) % 10 for b, n in per_batch), per_batch  # every batch whole
        before = (credo.con.execute("SELECT resident, score, grade, changes_at FROM standings ORDER BY ALL")
                  .fetchall(), credo.con.execute("SELECT * FROM standing_hits ORDER BY ALL")
                  .fetchall())
        with transaction(credo.con):
            scoring.rescore(credo.con, credo.policy, credo.now())
        assert before == (credo.con.execute("SELECT resident, score, grade, changes_at FROM standings ORDER BY ALL")
                          .fetchall(), credo.con.execute("SELECT * FROM standing_hits ORDER BY ALL").fetchall())
    finally:
        credo.close()

    # the snapshot taken once writes stopped: the live database, table by table
    restored = tmp_path / "after.duckdb"
    done = cli(city, "restore", str(root / "after"), "--public-key", public, db=restored)
    assert done.returncode == 0, done.stderr
    for table in TABLES:
        assert rows(restored, table) == rows(city.db, table), table
    live_audit = rows(city.db, "audit")
    assert rows(restored, "audit") == live_audit[: len(rows(restored, "audit"))]
    assert len(PEOPLE) == len(rows(restored, "residents"))


def test_backup_without_a_server_opens_the_file_itself(city: City, tmp_path: Path) -> None:
    """No server: ``credo backup`` takes the snapshot itself (no token needed), anywhere. No signing key:
    the manifest is unsigned, and restoring it needs --unsigned."""
    done = cli(city, "backup", str(tmp_path / "direct"), token=None)
    assert done.returncode == 0, done.stderr
    assert "NOT signed" in done.stderr
    restored = tmp_path / "r.duckdb"
    refused = cli(city, "restore", str(tmp_path / "direct"), db=restored)
    assert refused.returncode == 2 and "is not signed" in " ".join(refused.stderr.split()), refused.stderr
    assert not restored.exists()
    assert cli(city, "restore", str(tmp_path / "direct"), "--unsigned", db=restored).returncode == 0
    for table in TABLES:
        assert rows(restored, table) == rows(city.db, table), table
