"""``credo audit export``: the same JSON Lines as before, streamed a window of entries at a time so
that memory stays bounded at any size of log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest
from bench.audit_export import FILL, measure

from credo import audit
from credo.ids import named_by_id, parse_resident_id
from credo.service import Credo
from tests.conftest import NOW, City, rid

CREDO = str(Path(sys.executable).with_name("credo"))
FIELDS = ["seq", "logged_at", "principal", "role", "event", "resident", "action", "decision", "decision_id",
          "purpose", "policy", "detail", "prev_hash", "hash"]
FIRST = ('{"seq":1,"logged_at":"2024-09-01T10:00:00","principal":"cli","role":"operator","event":"policy.applied",'
         '"resident":null,"action":null,"decision":null,"decision_id":null,"purpose":null,"policy":"tiny-1@1",'
         '"detail":"{\\"sha256\\":\\"379cb64bf4e4e5a74d2f14ecdc91869e4cc87fc9034267b59d537c6f0938d384\\"}",'
         '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
         '"hash":"598063f3794589227641df9be86ed124dd4a46fff81539ea9377b8028baf164c"}')
"""The first line as the export wrote it before it streamed (the tiny city's policy, applied at NOW; pinned
again when that policy's text changes, as its hash is in the line)."""


def export(db: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CREDO, "--db", str(db), "audit", "export", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "CREDO_NOW": NOW})


def test_export_writes_the_lines_it_wrote_before(city: City, tmp_path: Path) -> None:
    credo = Credo.open(city.db)
    # a decision: resident, non-ASCII
    credo.check(parse_resident_id(rid("A")), "rail.high_speed.book", purpose="购票 booking")
    credo.close()
    proc = export(city.db)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    lines = stdout.decode().splitlines()
    assert lines[0] == FIRST
    entries = [orjson.loads(line) for line in lines]
    assert all(list(e) == FIELDS for e in entries)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    [decision] = [e for e in entries if e["event"] == "decision"]
    assert (decision["resident"], decision["purpose"]) == (rid("A"), "购票 booking")  # the 18-character ID
    con = duckdb.connect(str(city.db), read_only=True)
    rows = con.execute(f"SELECT {', '.join(FIELDS)} FROM audit ORDER BY seq").fetchall()
    con.close()
    assert stdout == b"".join(orjson.dumps(named_by_id(dict(zip(FIELDS, r, strict=True))), default=str) + b"\n"
                              for r in rows)
    to_file = export(city.db, "--out", str(tmp_path / "log.jsonl"))
    assert to_file.wait(120) == 0 and to_file.stdout and to_file.stdout.read() == b""
    assert (tmp_path / "log.jsonl").read_bytes() == stdout


@pytest.mark.parametrize("window", [1, 3, 1000])
def test_windows_cover_the_log_in_order(city: City, monkeypatch: pytest.MonkeyPatch, window: int) -> None:
    con = duckdb.connect(str(city.db))
    con.execute("DELETE FROM audit WHERE seq IN (2, 5)")  # gaps (a broken chain) are exported as they are
    expected = [dict(zip(FIELDS, r, strict=True)) for r in con.execute("SELECT * FROM audit ORDER BY seq").fetchall()]
    monkeypatch.setattr(audit, "EXPORT_WINDOW", window)
    assert list(audit.export(con)) == expected and len(expected) > 3
    con.execute("DELETE FROM audit")
    assert list(audit.export(con)) == []
    con.close()


def test_memory_does_not_grow_with_the_log(city: City, tmp_path: Path) -> None:
    """Peak RSS of the whole command: 300,000 entries (140 MB of JSON) cost less than 128 MB over a
    log of a dozen (DuckDB's cache, held at 64 MB while exporting, and a window of rows); holding
    them all, as the export did before, costs 700 MB more."""

    def peak(db: Path) -> int:
        out = tmp_path / "out.jsonl"
        return int(measure([CREDO, "--db", str(db), "audit", "export", "--out", str(out)], out)["rss"])

    small = peak(city.db)
    big = tmp_path / "big.duckdb"
    Credo.open(big).close()
    con = duckdb.connect(str(big))
    con.execute(FILL, [300_000])
    con.close()
    assert peak(big) - small < 128 * 2**20
    assert sum(1 for _ in (tmp_path / "out.jsonl").open("rb")) == 300_000
