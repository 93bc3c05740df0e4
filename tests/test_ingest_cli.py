"""`credo ingest`, `credo rejects` and `credo revoke` as a person runs them (spec §7): the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.ingest_city import LI, NOW, RECORD_HEADER, city, write_csv

CREDO = str(Path(sys.executable).parent / "credo")


@pytest.fixture()
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CREDO_NOW", NOW)
    city(tmp_path).close()
    return tmp_path / "city.duckdb"


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDO_NOW": NOW, "CREDO_DB": str(db)}
    proc = subprocess.run([CREDO, *args], capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in proc.stderr
    return proc


def test_exit_codes_rejects_and_resending_a_corrected_file(db: Path, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", [RECORD_HEADER, ("c1", "tax.arrears", LI, "2024-08-01", "", "")])
    proc = run(db, "ingest", "--agency", "tax", str(good))
    assert proc.returncode == 0, proc.stderr
    assert "1 rows, 1 accepted, 0 duplicates, 0 rejected" in proc.stdout
    assert run(db, "ingest", "--agency", "tax", str(good)).returncode == 0  # all duplicates: still 0

    bad = write_csv(
        tmp_path / "day2.csv",
        [
            RECORD_HEADER,
            ("c2", "tax.arrears", LI, "2024-08-02", "", ""),
            ("c3", "tax.arrears", LI[:17], "2024-08-03", "", ""),
        ],
    )
    proc = run(db, "ingest", "--agency", "tax", "--json", str(bad))
    assert proc.returncode == 1
    [summary] = json.loads(proc.stdout)
    assert (summary["accepted"], summary["rejected"], summary["reasons"]) == (1, 1, {"id_length": 1})

    listed = json.loads(run(db, "rejects", "--agency", "tax", "--json").stdout)["rejects"]
    assert [(r["source"], r["line"], r["reason"], r["field"]) for r in listed] == [
        (str(bad), 3, "id_length", "subject")
    ]
    assert "must be 18 characters, got 17" in listed[0]["message"]
    assert json.loads(listed[0]["row_text"])["subject"] == LI[:17]  # the row as received

    fixed = write_csv(
        tmp_path / "day2-fixed.csv",
        [
            RECORD_HEADER,
            ("c2", "tax.arrears", LI, "2024-08-02", "", ""),
            ("c3", "tax.arrears", LI, "2024-08-03", "", ""),
        ],
    )
    proc = run(db, "ingest", "--agency", "tax", "--json", str(fixed))
    assert proc.returncode == 0
    [summary] = json.loads(proc.stdout)
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (1, 1, 0)


def test_unreadable_file_exits_2_naming_it_and_the_others_still_load(db: Path, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", [RECORD_HEADER, ("c1", "tax.arrears", LI, "2024-08-01", "", "")])
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    proc = run(
        db,
        "ingest",
        "--agency",
        "tax",
        str(tmp_path / "missing.csv"),
        str(tmp_path / "broken.parquet"),
        str(good),
    )
    assert proc.returncode == 2
    assert f"{tmp_path / 'missing.csv'}: no such file" in proc.stderr
    assert f"{tmp_path / 'broken.parquet'}: not a readable Parquet file" in proc.stderr
    assert f"{good}: 1 rows, 1 accepted" in proc.stdout
    assert run(db, "ingest", "--agency", "nobody", str(good)).returncode == 2  # an agency without types


def test_revoke_from_the_command_line(db: Path, tmp_path: Path) -> None:
    run(
        db,
        "ingest",
        "--agency",
        "tax",
        str(write_csv(tmp_path / "a.csv", [RECORD_HEADER, ("c1", "tax.arrears", LI, "2024-08-01", "", "")])),
    )
    assert json.loads(run(db, "standing", LI, "--json").stdout)["score"] == 950
    proc = run(db, "revoke", "--agency", "tax", "c1", "--reason", "paid before the deadline")
    assert proc.returncode == 0 and "revoked tax:c1" in proc.stdout
    explained = json.loads(run(db, "explain", LI, "--json").stdout)
    [record] = explained["records"]
    assert record["counts"] is False and "revoked" in record["why"]
    assert explained["score"] == 1000
    again = run(db, "revoke", "--agency", "tax", "c1", "--reason", "again")
    assert again.returncode == 2 and "already revoked" in again.stderr
    other = run(db, "revoke", "--agency", "blood-centre", "c1", "--reason", "not ours")
    assert other.returncode == 2 and "no record blood-centre:c1" in other.stderr


def test_rejects_page_with_a_total_name_the_record_and_the_whole_source(db: Path, tmp_path: Path) -> None:
    """Seven rejects a page of three at a time: every page says how many there are and where the next
    starts; a human table names each record and its file whole; a row accepted later says so."""
    folder = tmp_path / ("a-folder-with-a-name-long-enough-to-be-cut-in-a-narrow-table-" * 2)
    folder.mkdir()
    rows = [(f"bad{i}", "tax.arrears", LI[:17], "2024-08-01", "", "") for i in range(7)]
    bad = write_csv(folder / "day3.csv", [RECORD_HEADER, *rows])
    assert run(db, "ingest", "--agency", "tax", str(bad)).returncode == 1
    fixed = write_csv(tmp_path / "fixed.csv", [RECORD_HEADER, ("bad4", "tax.arrears", LI, "2024-08-01", "", "")])
    assert run(db, "ingest", "--agency", "tax", str(fixed)).returncode == 0

    seen: list[dict[str, object]] = []
    after: list[str] = []
    while True:
        page = json.loads(run(db, "rejects", "--agency", "tax", "--json", "--limit", "3", *after).stdout)
        assert page["total"] == 7 and len(page["rejects"]) == (3 if page["next"] else 1)
        seen += page["rejects"]
        if not page["next"]:
            break
        after = ["--after", page["next"]]
    assert [(r["record"], r["line"], r["accepted_later"]) for r in seen] == [
        (f"tax:bad{i}", i + 2, i == 4) for i in range(7)]
    assert all(str(r["received_at"]).endswith("+08:00") for r in seen)

    human = run(db, "rejects", "--agency", "tax", "--limit", "5")
    assert human.returncode == 0
    assert f"tax: {bad}" in human.stdout  # the path whole, on one line
    assert "tax:bad0" in human.stdout and "accepted" in human.stdout
    assert f"5 of 7 rejected rows; the next page: credo rejects --agency tax --after {seen[4]['batch']}:6" \
        in human.stdout
    refused = run(db, "rejects", "--after", "six")
    assert refused.returncode == 2 and "after: 'six' is not the next marker" in refused.stderr
