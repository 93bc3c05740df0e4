"""Identity review through the fronts (spec §7, §10): the real CLI, and the API over a real server.

A described row is held; `credo review list/confirm/decline` and `/v1/review` judge it; the agency
reaches its own rows only; the resident's explanation says who confirmed the match.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from credo import ids
from credo.service import Credo
from tests.conftest import NOW, PEOPLE, RECORD_COLUMNS, City, Live, build_city, fixed_clock, rid, running, write_csv

CREDO = str(Path(sys.executable).parent / "credo")
HEADER = (*RECORD_COLUMNS, "subject_name", "subject_birth_date", "subject_district")


def about(letter: str, name: str | None = None) -> tuple[str, str, str]:
    return (name or f"Resident {letter}", ids.birth_date(rid(letter)).isoformat(), PEOPLE[letter][1])


def described(path: Path, rows: list[tuple[str, str, str | None]]) -> Path:
    """Rows (record_id, resident letter, name as written) naming their subject by description only."""
    return write_csv(path, [HEADER, *[(r, "tax.arrears", "", "2024-07-03", "", "", *about(p, n)) for r, p, n in rows]])


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDO_NOW": NOW, "CREDO_DB": str(db)}
    proc = subprocess.run([CREDO, *args], capture_output=True, text=True, env=env, timeout=180)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_the_cli_lists_confirms_and_declines(city: City, tmp_path: Path) -> None:
    feed = described(tmp_path / "d.csv", [("rv1", "J", None), ("rv2", "C", "Resident Cc")])
    proc = run(city.db, "ingest", "--agency", "tax", str(feed))
    assert proc.returncode == 0, proc.stderr
    assert "2 rows, 0 accepted, 2 held for review, 0 duplicates, 0 rejected" in proc.stdout
    listed = run(city.db, "review", "list", "--json")
    items = json.loads(listed.stdout)
    assert [(i["id"], i["status"], i["candidates"][0]["resident_id"]) for i in items] == [
        (1, "pending", rid("J")), (2, "pending", rid("C"))]
    assert items[1]["candidates"][0]["comparisons"]["name"]["level"] == "pinyin one edit apart"
    table = run(city.db, "review", "list")
    assert "tax:rv1" in table.stdout and "pending" in table.stdout
    before = json.loads(run(city.db, "standing", rid("J"), "--json").stdout)["score"]

    proc = run(city.db, "review", "confirm", "1", rid("J"), "--reason", "same person in the tax file")
    assert proc.returncode == 0 and "tax:rv1 is about " + rid("J") in proc.stdout
    assert json.loads(run(city.db, "standing", rid("J"), "--json").stdout)["score"] == before - 50
    explained = json.loads(run(city.db, "explain", rid("J"), "--json").stdout)
    [mark] = [r["matched_by_review"] for r in explained["records"] if r["record_id"] == "rv1"]
    assert (mark["item"], mark["confirmed_by"]) == (1, "cli")

    proc = run(city.db, "review", "decline", "2", "--reason", "a namesake")
    assert proc.returncode == 0 and "identity_declined" in proc.stdout
    rejects = json.loads(run(city.db, "rejects", "--agency", "tax", "--json").stdout)["rejects"]
    assert [(r["record"], r["reason"]) for r in rejects] == [("tax:rv2", "identity_declined")]

    again = run(city.db, "review", "decline", "1", "--reason", "second thoughts")
    assert again.returncode != 0 and "already confirmed" in again.stderr
    missing = run(city.db, "review", "confirm", "1", rid("J")[:17], "--reason", "x")
    assert missing.returncode == 2 and "18 characters" in missing.stderr


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    made = build_city(tmp_path_factory.mktemp("review"))
    with fixed_clock(NOW), closing(Credo.open(made.db)) as credo:
        credo.ingest_files("tax", [described(made.folder / "d.csv", [("rv1", "J", None), ("rv2", "D", None),
                                                                      ("rv3", "E", None)])])
    with running(made) as server:
        yield server


def test_the_api_judges_and_an_agency_reaches_its_own(live: Live) -> None:
    with live.client("agency") as tax, live.client("agency_blood") as blood, live.client("operator") as op:
        items = tax.get("/v1/review").json()["items"]
        assert [i["record"] for i in items] == ["tax:rv1", "tax:rv2", "tax:rv3"]
        assert blood.get("/v1/review").json() == {"items": []}
        assert blood.get("/v1/review/1").status_code == 404
        refused = blood.post("/v1/review/1/confirm", json={"resident_id": rid("J"), "reason": "mine"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (404, "unknown_review_item")

        r = tax.post("/v1/review/1/confirm", json={"resident_id": rid("J"), "reason": "checked the file"})
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["judgement"]["by"]) == ("confirmed", "agency:tax")
        wrong = op.post("/v1/review/2/confirm", json={"resident_id": rid("E"), "reason": "looks alike"})
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (409, "not_a_candidate")
        r = op.post("/v1/review/2/decline", json={"reason": "the file names someone else"})
        assert r.status_code == 200 and r.json()["status"] == "declined"
        twice = tax.post("/v1/review/2/confirm", json={"resident_id": rid("D"), "reason": "after all"})
        assert (twice.status_code, twice.json()["error"]["code"]) == (409, "review_judged")
        blank = tax.post("/v1/review/3/decline", json={"reason": ""})
        assert blank.status_code == 422
        assert [i["status"] for i in op.get("/v1/review").json()["items"]] == ["pending", "confirmed", "declined"]

        explained = op.get(f"/v1/residents/{rid('J')}/explanation", params={"purpose": "review test"}).json()
        [mark] = [r["matched_by_review"] for r in explained["records"] if r["record_id"] == "rv1"]
        assert (mark["item"], mark["confirmed_by"]) == (1, "agency:tax")
        rejects = tax.get("/v1/rejects").json()["rejects"]
        assert [(r["record"], r["reason"]) for r in rejects] == [("tax:rv2", "identity_declined")]
        trail = op.get("/v1/audit", params={"limit": 1000}).json()
    events = [e["event"] for e in trail["entries"]]
    assert events.count("review.confirmed") == 1 and events.count("review.declined") == 1


def test_a_legacy_id_is_taken_at_every_edge_of_the_api(live: Live) -> None:
    """A first-generation 15-digit ID names the resident of the 18-digit ID it became (spec §10)."""
    old = rid("J")[:6] + rid("J")[8:17]
    with live.client("provider") as air, live.client("operator") as op:
        fast = air.get("/v1/check", params={"resident_id": old, "action": "rail.high_speed.book", "purpose": "p"})
        assert fast.status_code == 200 and fast.json()["resident_id"] == rid("J")
        batch = air.post("/v1/check/batch", json={"action": "rail.high_speed.book", "purpose": "p",
                                                  "resident_ids": [old, old[:14] + "X"]}).json()
        assert batch["decisions"][0]["resident_id"] == rid("J")
        assert batch["decisions"][1]["error"]["code"] == ids.BAD_FORMAT
        a = op.get(f"/v1/residents/{old}/standing", params={"purpose": "p"})
        b = op.get(f"/v1/residents/{rid('J')}/standing", params={"purpose": "p"})
        assert a.status_code == 200 and a.json() == b.json()


def test_review_through_a_worker_process(tmp_path: Path) -> None:
    """With two workers each request reaches the store through the hub's socket: the same answers."""
    made = build_city(tmp_path / "city")
    with fixed_clock(NOW), closing(Credo.open(made.db)) as credo:
        credo.ingest_files("tax", [described(made.folder / "d.csv", [("rv1", "J", None)])])
    with running(made, workers=2) as server, server.client("agency") as tax:
        for _ in range(4):  # requests land on both workers
            assert [i["id"] for i in tax.get("/v1/review").json()["items"]] == [1]
        r = tax.post("/v1/review/1/confirm", json={"resident_id": rid("J"), "reason": "checked"})
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
        assert tax.get("/v1/review/1").json()["judgement"]["by"] == "agency:tax"
