"""Residents are named by their 18-character ID in output (spec §7), never by the 17-digit key that
the store uses: the audit export and audit pages, and resident principals (tokens, sessions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from credo import ids, principals
from credo.principals import Directory
from credo.times import DEFAULT_TZ, parse_when
from tests.fixtures.ingest_city import LI, NOW, city

CREDO = str(Path(sys.executable).parent / "credo")
KEY = int(LI[:17])

# (output row as stored, as shown)
ROWS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"resident": KEY, "principal": "cli"}, {"resident": LI, "principal": "cli"}),
    ({"resident": None, "principal": f"resident:{KEY}"}, {"resident": None, "principal": f"resident:{LI}"}),
    ({"resident": KEY, "principal": f"resident:{LI}"}, {"resident": LI, "principal": f"resident:{LI}"}),
    ({"principal": "agency:tax", "detail": "{}"}, {"principal": "agency:tax", "detail": "{}"}),
    ({"principal": f"provider:{KEY}"}, {"principal": f"provider:{KEY}"}),  # only residents are renamed
]


@pytest.mark.parametrize(("stored", "shown"), ROWS)
def test_rows_name_residents_by_id(stored: dict[str, Any], shown: dict[str, Any]) -> None:
    assert ids.named_by_id(stored) == shown


def test_a_resident_token_made_under_the_old_naming_is_named_by_id(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDO_NOW", NOW)
    credo = city(tmp_path)
    try:
        now = parse_when(NOW)
        token, _ = principals.create(credo.con, "resident", resident=KEY, now=now)
        credo.con.execute("UPDATE principals SET label = ? WHERE role = 'resident'", [f"resident:{KEY}"])
        assert Directory.load(credo.con).authenticate(token, lambda: now).name == f"resident:{LI}"
        assert principals.authenticate(credo.con, token, lambda: now).name == f"resident:{LI}"
        listed = [t["principal"] for t in principals.listing(credo.con, now, DEFAULT_TZ) if t["role"] == "resident"]
        assert listed == [f"resident:{LI}"]
    finally:
        credo.close()


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDO_NOW": NOW, "CREDO_DB": str(db)}
    proc = subprocess.run([CREDO, *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_cli_token_and_audit_export_name_the_resident_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDO_NOW", NOW)
    city(tmp_path).close()
    db = tmp_path / "city.duckdb"
    made = run(db, "token", "create", "--role", "resident", "--resident", LI.lower())
    assert f"for resident:{LI} (role resident)" in made.stderr
    run(db, "standing", LI)
    listed = json.loads(run(db, "token", "list", "--json").stdout)
    assert [t["principal"] for t in listed if t["role"] == "resident"] == [f"resident:{LI}"]
    exported = [json.loads(line) for line in run(db, "audit", "export").stdout.splitlines()]
    about = [e for e in exported if e["resident"] is not None]
    assert about and {e["resident"] for e in about} == {LI}
    [created] = [e for e in exported if e["event"] == "token.created"]
    assert json.loads(created["detail"])["principal"] == f"resident:{LI}"
    assert str(KEY) not in "".join(json.dumps(e) for e in exported).replace(LI, "")
