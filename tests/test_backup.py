"""Backup and restore: the restored database verifies its audit chain and gives identical standings."""

from __future__ import annotations

from pathlib import Path

import pytest

from credo import backup, signing
from credo.errors import CredoError
from credo.ids import parse_resident_id
from credo.service import Credo
from tests.cityfactory import LI, WANG, tiny_city


def test_restore_gives_identical_standings_and_a_verified_chain(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDO_AUDIT_KEY", raising=False)
    city = tiny_city(tmp_path, monkeypatch)
    public = signing.make_key(signing.key_path(tmp_path / "city.duckdb"))
    city.check(parse_resident_id(LI), "rail.high_speed.book")
    before = {r: city.standing(parse_resident_id(r)).to_json(city.policy.tz) for r in (LI, WANG)}
    manifest = city.backup(tmp_path / "bk")
    assert manifest["counts"]["ledger"] == 2
    city.close()
    done = backup.restore(tmp_path / "bk", tmp_path / "restored.duckdb", public_key=public)
    assert done["signed_by"] == public
    assert done["audit_entries"] == manifest["counts"]["audit"]
    again = Credo.open(tmp_path / "restored.duckdb")
    assert again.verify_audit().ok
    after = {r: again.standing(parse_resident_id(r)).to_json(again.policy.tz) for r in (LI, WANG)}
    assert after == before


def test_restore_refuses_to_overwrite_and_backup_refuses_a_used_folder(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    city = tiny_city(tmp_path, monkeypatch)
    city.backup(tmp_path / "bk")
    with pytest.raises(CredoError, match="not empty"):
        city.backup(tmp_path / "bk")
    with pytest.raises(CredoError, match="exists"):
        backup.restore(tmp_path / "bk", tmp_path / "city.duckdb")
    with pytest.raises(CredoError, match="no Credo backup"):
        backup.restore(tmp_path, tmp_path / "new.duckdb")
