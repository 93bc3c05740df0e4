"""A backup proves its content: every file's digest in a signed manifest, and ``credo restore`` refuses
a backup whose files or manifest were changed, leaving no database behind.

One signed backup of the tiny city is taken per module; each case tampers with a copy of it the way
someone holding the backup volume (but not the signing key) could, then restores it with the real CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from credo import backup, signing
from credo.errors import CredoError
from credo.ids import parse_resident_id
from credo.service import Credo
from tests.cityfactory import LI, tiny_city

NOW = "2024-09-01T10:00:00+08:00"


@dataclass(frozen=True)
class Taken:
    folder: Path
    """The pristine signed backup (copy it before changing anything)."""
    key: Path
    public: str
    other: signing.Signer
    """A key that is not the city's: what a forger holds."""


@pytest.fixture(scope="module")
def taken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Taken]:
    tmp = tmp_path_factory.mktemp("proof")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CREDO_AUDIT_KEY", raising=False)
        city = tiny_city(tmp, mp)
        key = signing.key_path(tmp / "city.duckdb")
        public = signing.make_key(key)
        manifest = city.backup(tmp / "bk")
        city.close()
    assert manifest["signed_by"] == public
    signing.make_key(tmp / "other-key")
    other = signing.Signer.load(tmp / "other-key")
    assert other is not None
    yield Taken(tmp / "bk", key, public, other)


def change_a_ledger_row(folder: Path, _: Taken) -> None:
    """Li's tax arrears become settled: same row count, same audit chain, a different standing."""
    file = folder / "ledger.parquet"
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?)", [str(file)])
    [(changed,)] = con.execute("UPDATE t SET type = 'tax.settled' WHERE type = 'tax.arrears'").fetchall()
    assert changed == 1
    file.unlink()
    con.table("t").write_parquet(str(file))
    con.close()


def manifest_of(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / backup.MANIFEST).read_text())
    return loaded


def digest(file: Path) -> dict[str, Any]:
    """A file's entry in the manifest, computed as anyone could."""
    data = file.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def rewrite_manifest(folder: Path, **changes: object) -> bytes:
    """The manifest with ``changes`` and every digest recomputed from the files as they now are."""
    manifest = {**manifest_of(folder), **changes}
    manifest["files"] = {n: digest(folder / n) for n in manifest["files"]}
    text = json.dumps(manifest, indent=2).encode()
    (folder / backup.MANIFEST).write_bytes(text)
    return text


def sign_as(folder: Path, text: bytes, claimed: str, by: signing.Signer) -> None:
    (folder / backup.SIGNATURE).write_text(json.dumps(
        {"algorithm": "ed25519", "public_key": claimed, "signature": by.sign(backup.CONTEXT + text)}))


def row_and_digests(folder: Path, t: Taken) -> None:
    change_a_ledger_row(folder, t)
    rewrite_manifest(folder)


def resigned_by_another_key(folder: Path, t: Taken) -> None:
    change_a_ledger_row(folder, t)
    sign_as(folder, rewrite_manifest(folder), t.other.public, t.other)


def forged_under_our_key(folder: Path, t: Taken) -> None:
    change_a_ledger_row(folder, t)
    sign_as(folder, rewrite_manifest(folder), t.public, t.other)


def signature_removed(folder: Path, t: Taken) -> None:
    change_a_ledger_row(folder, t)
    rewrite_manifest(folder)
    (folder / backup.SIGNATURE).unlink()


def counts_edited_unsigned(folder: Path, _: Taken) -> None:
    counts = manifest_of(folder)["counts"]
    counts["ledger"] += 1
    rewrite_manifest(folder, counts=counts)
    (folder / backup.SIGNATURE).unlink()


@dataclass(frozen=True)
class Case:
    name: str
    tamper: Callable[[Path, Taken], object]
    refusal: str
    flags: tuple[str, ...] = ()


CASES = [
    Case("a changed row in ledger.parquet", change_a_ledger_row, "ledger.parquet in .* does not match its digest"),
    Case("ledger.parquet removed", lambda f, _: (f / "ledger.parquet").unlink(), "lacks ledger.parquet"),
    Case("a file added", lambda f, _: shutil.copy(f / "ledger.parquet", f / "extra.parquet"),
         "holds extra.parquet, not in its manifest"),
    Case("digests recomputed, not re-signed", row_and_digests, "does not match its signature"),
    Case("re-signed by another key", resigned_by_another_key, "signed by another key"),
    Case("another key's signature claiming ours", forged_under_our_key, "does not match its signature"),
    Case("signature removed", signature_removed, "is not signed"),
    Case("the signature file garbled", lambda f, _: (f / backup.SIGNATURE).write_text("{"),
         "is not a manifest signature"),
    Case("counts edited, restored --unsigned", counts_edited_unsigned, "row counts differ", ("--unsigned",)),
    Case("a changed row, restored --unsigned", change_a_ledger_row, "does not match its digest", ("--unsigned",)),
]


def restore_cli(folder: Path, target: Path, *flags: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    run_env = {k: v for k, v in os.environ.items() if k != "CREDO_AUDIT_KEY"} | {"CREDO_NOW": NOW} | (env or {})
    return subprocess.run([sys.executable, "-m", "credo.cli", "--db", str(target), "restore", str(folder), *flags],
                          env=run_env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_tampered_backup_is_refused_and_nothing_is_restored(case: Case, taken: Taken, tmp_path: Path) -> None:
    folder = tmp_path / "bk"
    shutil.copytree(taken.folder, folder)
    case.tamper(folder, taken)
    target = tmp_path / "out" / "restored.duckdb"
    target.parent.mkdir()
    done = restore_cli(folder, target, "--public-key", str(signing.public_path(taken.key)), *case.flags)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: "), done.stderr
    assert re.search(case.refusal, " ".join(done.stderr.split())), done.stderr
    assert list(target.parent.iterdir()) == [], "a refused restore left a file behind"


def test_an_intact_signed_backup_restores_with_the_key_found_through_credo_audit_key(
        taken: Taken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDO_NOW", NOW)
    target = tmp_path / "restored.duckdb"
    done = restore_cli(taken.folder, target, env={"CREDO_AUDIT_KEY": str(taken.key)})
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert f"signed by {taken.public}" in said and "every file matches its digest" in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["restored.duckdb"]
    again = Credo.open(target)
    try:
        assert again.verify_audit().ok
        assert again.standing(parse_resident_id(LI)).in_force() == ["tax_defaulter"]
    finally:
        again.close()


def test_the_public_key_beside_the_target_is_trusted_and_no_key_at_all_needs_unsigned(
        taken: Taken, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDO_AUDIT_KEY", raising=False)
    monkeypatch.setenv("CREDO_NOW", NOW)
    target = tmp_path / "city.duckdb"
    with pytest.raises(CredoError, match="no public key to check") as refused:
        backup.restore(taken.folder, target)
    assert refused.value.code == "backup_unsigned" and not target.exists()
    unchecked = backup.restore(taken.folder, target, unsigned=True)
    assert unchecked["signed_by"] is None
    target.unlink()
    shutil.copy(signing.public_path(taken.key), signing.public_path(signing.key_path(target)))
    assert backup.restore(taken.folder, target)["signed_by"] == taken.public


def test_an_unsigned_backup_holds_digests_and_restores_only_when_asked(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDO_AUDIT_KEY", raising=False)
    city = tiny_city(tmp_path, monkeypatch)
    manifest = city.backup(tmp_path / "bk")
    city.close()
    assert manifest["signed_by"] is None and not (tmp_path / "bk" / backup.SIGNATURE).exists()
    assert set(manifest["files"]) == {f"{t}.parquet" for t in manifest["tables"]}
    assert manifest["files"]["ledger.parquet"] == digest(tmp_path / "bk" / "ledger.parquet")
    with pytest.raises(CredoError, match="is not signed"):
        backup.restore(tmp_path / "bk", tmp_path / "r.duckdb")
    assert not (tmp_path / "r.duckdb").exists()
    assert backup.restore(tmp_path / "bk", tmp_path / "r.duckdb", unsigned=True)["audit_entries"] > 0


def test_a_format_2_backup_restores_only_with_unsigned(taken: Taken, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What the previous Credo wrote: no digests, no signature; its counts and audit chain still checked."""
    monkeypatch.setenv("CREDO_NOW", NOW)
    folder = tmp_path / "bk"
    shutil.copytree(taken.folder, folder)
    old = {k: v for k, v in manifest_of(folder).items() if k != "files"} | {"format": 2}
    (folder / backup.MANIFEST).write_text(json.dumps(old))
    (folder / backup.SIGNATURE).unlink()
    with pytest.raises(CredoError, match="format 2, which carries no digests"):
        backup.restore(folder, tmp_path / "r.duckdb", public_key=taken.public)
    done = backup.restore(folder, tmp_path / "r.duckdb", unsigned=True)
    assert done["format"] == 2 and done["signed_by"] is None
