"""Signed checkpoints and receipts (spec §6): what the chain alone lets through is caught.

An intruder who can write the database cuts the tail and moves the stored head back, or edits an
entry and re-hashes everything after it: the chain is consistent again, and only a checkpoint signed
with the key kept outside the database (or a receipt a provider kept) shows it. Tampering is done
with SQL on the DuckDB file and edits of the checkpoint file, and ``credo audit verify`` must name
the first bad entry.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import orjson
import pytest

from credo import audit, checkpoints, signing
from credo.audit import Receipts
from credo.ids import parse_resident_id
from credo.principals import Principal
from credo.service import Credo
from credo.serving.commit import GroupCommit
from credo.store import connect
from tests.conftest import City, rid, running

PROVIDER = Principal("provider:air", "provider", provider="air")
RAIL = "rail.high_speed.book"


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from credo.cli import main; main()", *args]
    return subprocess.run(command, env={**os.environ, "CREDO_DB": str(db)}, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def signed(city: City) -> tuple[Path, int]:
    """The tiny city with a signing key, then six decisions in three commands of two: checkpoints of
    entries n+2, n+4 and n+6, where n is the log's length before. Returns the database and n."""
    signing.make_key(signing.key_path(city.db))
    with duckdb.connect(str(city.db)) as con:
        n = int(con.execute("SELECT max(seq) FROM audit").fetchall()[0][0])
    for pair in ("AB", "CD", "EF"):
        credo = Credo.open(city.db)
        for letter in pair:
            credo.check(parse_resident_id(rid(letter)), RAIL, PROVIDER, "boarding")
        credo.close()
    assert [p.seq for p in checkpoints.filed(checkpoints.checkpoint_path(city.db))[0]] == [n + 2, n + 4, n + 6]
    return city.db, n


def rehash_from(con: duckdb.DuckDBPyConnection, seq: int) -> None:
    """Re-link and re-hash every entry from ``seq`` on and move the stored head: the chain verifies."""
    prev = con.execute("SELECT hash FROM audit WHERE seq = ?", [seq - 1]).fetchall()[0][0]
    rows = con.execute(f"SELECT {audit.COLUMN_LIST} FROM audit WHERE seq >= ? ORDER BY seq", [seq]).fetchall()
    for row in rows:
        new = audit.entry_hash(prev, row[1:-2])
        con.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, new, row[0]])
        prev = new
    con.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", [f"{rows[-1][0]}:{prev}"])


def edit_and_rehash(con: duckdb.DuckDBPyConnection, seq: int) -> None:
    con.execute("UPDATE audit SET decision = CASE decision WHEN 'allow' THEN 'deny' ELSE 'allow' END "
                "WHERE seq = ?", [seq])
    rehash_from(con, seq)


def cut_tail(con: duckdb.DuckDBPyConnection, last: int) -> None:
    con.execute("DELETE FROM audit WHERE seq > ?", [last])
    h = con.execute("SELECT hash FROM audit WHERE seq = ?", [last]).fetchall()[0][0]
    con.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", [f"{last}:{h}"])


def drop_filed(db: Path, seqs: set[int]) -> None:
    path = checkpoints.checkpoint_path(db)
    kept = [line for line in path.read_bytes().splitlines() if orjson.loads(line)["seq"] not in seqs]
    path.write_bytes(b"".join(line + b"\n" for line in kept))


def forge(db: Path, con: duckdb.DuckDBPyConnection, seq: int) -> None:
    """Replace the checkpoint of ``seq``, in the table and the file, by one of the entry as it now is,
    signed with a key of the intruder's own."""
    other = signing.key_path(db).with_name("intruder-key")
    signing.make_key(other)
    signer = signing.Signer.load(other)
    assert signer is not None
    h = con.execute("SELECT hash FROM audit WHERE seq = ?", [seq]).fetchall()[0][0]
    at = "2024-09-01T10:00:00+08:00"
    fake = checkpoints.Checkpoint(seq, h, at, signer.public, signer.sign(checkpoints.payload(seq, h, at)))
    con.execute("DELETE FROM audit_checkpoints WHERE seq = ?", [seq])
    con.execute("INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?)", list(fake))
    drop_filed(db, {seq})
    with checkpoints.checkpoint_path(db).open("ab") as f:
        f.write(orjson.dumps(fake._asdict()) + b"\n")


def drop_stored(con: duckdb.DuckDBPyConnection, where: str, seq: int) -> None:
    con.execute(f"DELETE FROM audit_checkpoints WHERE seq {where} ?", [seq])


def hide_in_table(db: Path, con: duckdb.DuckDBPyConnection, n: int) -> None:
    drop_stored(con, ">", n + 4)
    edit_and_rehash(con, n + 5)


def hide_in_file(db: Path, con: duckdb.DuckDBPyConnection, n: int) -> None:
    drop_filed(db, {n + 6})
    edit_and_rehash(con, n + 5)


def forge_over_rewrite(db: Path, con: duckdb.DuckDBPyConnection, n: int) -> None:
    edit_and_rehash(con, n + 5)
    forge(db, con, n + 6)


Tamper = Callable[[Path, duckdb.DuckDBPyConnection, int], None]
# (name, how to tamper given the database and n, the entry named relative to n, words of the problem)
CASES: list[tuple[str, Tamper, int, str]] = [
    ("cut the tail, head updated", lambda db, con, n: cut_tail(con, n + 3), 4, "missing"),
    ("cut below every checkpoint", lambda db, con, n: cut_tail(con, n), 1, "the log was cut"),
    ("edit re-hashed to the end", lambda db, con, n: edit_and_rehash(con, n + 3), 3, "rewritten"),
    ("edit just under a checkpoint", lambda db, con, n: edit_and_rehash(con, n + 4), 3, "entries"),
    ("checkpoint deleted from the table", lambda db, con, n: drop_stored(con, "=", n + 4), 4, "not in the database"),
    ("checkpoint deleted from the file", lambda db, con, n: drop_filed(db, {n + 4}), 4, "not in the file"),
    ("rewrite hidden by deleting the table's checkpoints", hide_in_table, 5, "rewritten"),
    ("rewrite hidden by deleting the file's checkpoints", hide_in_file, 5, "rewritten"),
    ("forged checkpoint over a rewrite", forge_over_rewrite, 5, "not signed by the auditor's key"),
]


@pytest.mark.parametrize(("name", "tamper", "after", "words"), CASES, ids=[c[0] for c in CASES])
def test_tampering_the_chain_passes_is_caught_and_named(signed: tuple[Path, int], name: str, tamper: Tamper,
                                                        after: int, words: str) -> None:
    db, n = signed
    with duckdb.connect(str(db)) as con:
        tamper(db, con, n)
        con.execute("CHECKPOINT")
    with duckdb.connect(str(db)) as con:
        assert audit.verify(con).ok  # each passes the chain alone
    expected = n + after
    con = connect(db)
    try:
        verdict = checkpoints.verify(con, db)
    finally:
        con.close()
    assert not verdict.ok
    assert verdict.first_bad == expected, verdict
    assert words in (verdict.problem or ""), verdict
    run = cli(db, "audit", "verify")
    assert run.returncode == 1, run.stdout
    assert f"BROKEN at entry {expected}:" in " ".join(run.stderr.split())
    shown = cli(db, "audit", "verify", "--json")
    assert shown.returncode == 1
    body = orjson.loads(shown.stdout)
    assert body["first_bad"] == expected and body["signing"] == "signed" and body["findings"]


def test_the_chain_alone_lets_these_through(signed: tuple[Path, int]) -> None:
    """Why checkpoints: a cut with the head moved back, and an edit re-hashed to the end, verify as a chain."""
    db, n = signed
    with duckdb.connect(str(db)) as con:
        edit_and_rehash(con, n + 2)
        cut_tail(con, n + 5)
        assert audit.verify(con).ok


def test_an_intact_signed_log_verifies_and_names_its_last_checkpoint(signed: tuple[Path, int]) -> None:
    db, n = signed
    run = cli(db, "audit", "verify", "--json")
    assert run.returncode == 0, run.stdout
    body = orjson.loads(run.stdout)
    assert body["ok"] and body["signing"] == "signed" and body["checkpoints"] == 3
    assert body["last_checkpoint"]["seq"] == n + 6 and body["unsigned_entries"] == 0
    assert body["entries"] == n + 6 and body["findings"] == []


def test_the_wrong_public_key_fails_every_checkpoint(signed: tuple[Path, int], tmp_path: Path) -> None:
    db, _ = signed
    other = signing.make_key(tmp_path / "other-key")
    run = cli(db, "audit", "verify", "--public-key", other)
    assert run.returncode == 1
    assert "BROKEN at entry 1:" in run.stderr and "not signed by the auditor's key" in " ".join(run.stderr.split())


def test_without_a_key_nothing_is_signed_and_verify_says_so(city: City) -> None:
    made = cli(city.db, "check", rid("A"), RAIL, "--json")
    assert made.returncode == 0, made.stderr
    assert not checkpoints.checkpoint_path(city.db).exists()
    run = cli(city.db, "audit", "verify")
    assert run.returncode == 0, run.stderr
    assert "unsigned" in run.stdout


def test_a_cli_check_gives_a_receipt_signs_it_and_verify_checks_it(city: City) -> None:
    public = signing.make_key(signing.key_path(city.db))
    made = cli(city.db, "check", rid("A"), RAIL, "--json")
    assert made.returncode == 0, made.stderr
    answer = orjson.loads(made.stdout)
    receipt = answer["receipt"]
    with duckdb.connect(str(city.db)) as con:
        entry = con.execute("SELECT decision_id, hash FROM audit WHERE seq = ?", [receipt["seq"]]).fetchall()
    assert entry == [(answer["decision_id"], receipt["hash"])]
    assert checkpoints.filed(checkpoints.checkpoint_path(city.db))[0][-1].seq == receipt["seq"]
    good = cli(city.db, "audit", "verify", "--public-key", public, "--receipt", f"{receipt['seq']}:{receipt['hash']}")
    assert good.returncode == 0, good.stderr
    assert "holds" in good.stdout
    changed = receipt["hash"][:-1] + ("0" if receipt["hash"][-1] != "0" else "1")
    bad = cli(city.db, "audit", "verify", "--json", "--receipt", f"{receipt['seq']}:{changed}")
    assert bad.returncode == 1
    body = orjson.loads(bad.stdout)
    assert body["receipts"] == [{"seq": receipt["seq"], "hash": changed, "ok": False}]
    beyond = cli(city.db, "audit", "verify", "--receipt", f"{receipt['seq'] + 5}:{receipt['hash']}")
    assert beyond.returncode == 1 and f"entry {receipt['seq'] + 1}" in beyond.stderr
    malformed = cli(city.db, "audit", "verify", "--receipt", "twelve")
    assert malformed.returncode == 2 and "a receipt must be SEQ:HASH" in malformed.stderr
    assert "Traceback" not in malformed.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_server_decisions_carry_receipts_and_the_server_signs_them(city: City, workers: int) -> None:
    signing.make_key(signing.key_path(city.db))
    with running(city, workers=workers) as live, live.client("provider") as c:
        single = c.get("/v1/check", params={"resident_id": rid("A"), "action": RAIL, "purpose": "boarding"}).json()
        posted = c.post("/v1/check", json={"resident_id": rid("B"), "action": RAIL, "purpose": "boarding"}).json()
        batch = c.post("/v1/check/batch", json={"action": RAIL, "purpose": "boarding",
                                                "resident_ids": [rid("C"), "not an id", rid("D"), rid("E")]}).json()
        answers = [single, posted, *[i for i in batch["decisions"] if "decision" in i]]
        assert "receipt" not in batch["decisions"][1]
        seqs = [a["receipt"]["seq"] for a in answers]
        assert len(set(seqs)) == 5 and seqs[2:] == list(range(seqs[2], seqs[2] + 3))
        deadline = time.monotonic() + 15  # signed within a few seconds while serving, off the request path
        while time.monotonic() < deadline:
            filed = checkpoints.filed(checkpoints.checkpoint_path(city.db))[0]
            if filed and filed[-1].seq >= max(seqs):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the server did not sign its head within 15 s")
        auditor = {"Authorization": f"Bearer {city.tokens['auditor']}"}
        mine = f"{single['receipt']['seq']}:{single['receipt']['hash']}"
        verified = c.get("/v1/audit/verify", headers=auditor, params={"receipt": mine})
        assert verified.status_code == 200, verified.text
        assert verified.json()["signing"] == "signed" and verified.json()["receipts"][0]["ok"], verified.text
        wrong = c.get("/v1/audit/verify", headers=auditor, params={"receipt": mine[:-1] + "x"})
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "bad_receipt"
    with duckdb.connect(str(city.db)) as con:
        logged = dict(con.execute("SELECT seq, decision_id || ' ' || hash FROM audit").fetchall())
    for a in answers:
        assert logged[a["receipt"]["seq"]] == f"{a['decision_id']} {a['receipt']['hash']}"
    credo = Credo.open(city.db)
    try:
        held = credo.verify_audit(receipts=[(a["receipt"]["seq"], a["receipt"]["hash"]) for a in answers])
        assert held.ok and all(r["ok"] for r in held.receipts), held
        first = answers[0]["receipt"]
        changed = credo.verify_audit(receipts=[(first["seq"], "f" * 64)])
        assert not changed.ok and changed.receipts[0]["ok"] is False
        assert changed.first_bad is not None and changed.first_bad <= first["seq"]
    finally:
        credo.close()


def test_group_commit_hands_each_submitter_its_own_receipts() -> None:
    def flush(items: list[int]) -> Receipts:  # each hash says where in its group the item was
        return Receipts(100, [f"{n}:{item}" for n, item in enumerate(items)])

    commit: GroupCommit[int] = GroupCommit(flush)

    async def main() -> list[Receipts | None]:
        return list(await asyncio.gather(*[commit.submit(list(range(i * 10, i * 10 + i))) for i in range(1, 30)]))

    try:
        got = asyncio.run(main())
    finally:
        commit.close()
    for i, r in enumerate(got, 1):
        assert r is not None
        assert [h.partition(":")[2] for h in r.hashes] == [str(k) for k in range(i * 10, i * 10 + i)]
        assert [int(h.partition(":")[0]) + 100 for h in r.hashes] == list(range(r.first, r.first + i))


def test_a_server_without_a_key_answers_receipts_and_signs_nothing(city: City) -> None:
    with running(city) as live, live.client("provider") as c:
        r = c.get("/v1/check", params={"resident_id": rid("A"), "action": RAIL, "purpose": "boarding"})
        assert r.status_code == 200 and len(r.json()["receipt"]["hash"]) == 64
        time.sleep(2.5)
    assert not checkpoints.checkpoint_path(city.db).exists()
    credo = Credo.open(city.db)
    try:
        v = credo.verify_audit()
    finally:
        credo.close()
    assert v.ok and v.signing == "unsigned"


def test_a_line_of_the_file_that_is_not_a_checkpoint_fails_the_verdict(signed: tuple[Path, int]) -> None:
    db, _ = signed
    with checkpoints.checkpoint_path(db).open("ab") as f:
        f.write(b'{"seq": "7", "hash": "h", "signed_at": "t", "key": "k", "signature": "s"}\n')
    con = connect(db)
    try:
        verdict = checkpoints.verify(con, db)
    finally:
        con.close()
    problem = verdict.problem or ""
    assert not verdict.ok and "line 4 of" in problem and "is not a checkpoint" in problem


def test_a_restored_log_is_checked_against_the_checkpoints_of_its_backup(signed: tuple[Path, int],
                                                                       tmp_path: Path) -> None:
    """A backup carries the signed checkpoints up to its own audit head (not one the server signed
    while it was being written), and a restore puts them beside the new database."""
    from credo import backup

    db, n = signed
    path = checkpoints.checkpoint_path(db)
    with path.open("ab") as f:  # signed after the snapshot's head: not the backup's to carry
        f.write(orjson.dumps({"seq": n + 99, "hash": "0" * 64, "signed_at": "x", "key": "k", "signature": "s"}) + b"\n")
    credo = Credo.open(db)
    try:
        head = backup.backup(credo.con, tmp_path / "snap")["audit_head"][0]
    finally:
        credo.close()
    public = signing.load_public(str(signing.public_path(signing.key_path(db))))
    restored = tmp_path / "restored.duckdb"
    backup.restore(tmp_path / "snap", restored, public_key=public)
    assert [p.seq for p in checkpoints.filed(checkpoints.checkpoint_path(restored))[0]] == [n + 2, n + 4, n + 6]
    run = cli(restored, "audit", "verify", "--json", "--public-key", public)
    body = orjson.loads(run.stdout)
    assert run.returncode == 0 and body["ok"] and body["checkpoints"] == 3 and body["findings"] == [], run.stdout
    assert head >= n + 6
