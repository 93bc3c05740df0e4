"""The two clocks at the fronts (spec §4, §7): ``--known-at`` on ``credo standing``, ``explain`` and
``check`` (which gains ``--as-of``), ``as_of`` / ``known_at`` on the matching API endpoints, and
``credo audit replay``.

The tiny city (``tests.conftest``) is built at NOW; resident E's tax:x3 is then revoked at LATER,
so at K = NOW Credo did not know of the revocation yet, and from LATER on it counts at no T.
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

from credo.service import Credo
from tests.conftest import NOW, City, build_city, fixed_clock, rid, running

LATER = "2024-09-05T10:00:00+08:00"
RAIL = "rail.high_speed.book"
BOARDING = {"purpose": "boarding"}


@pytest.fixture(scope="module")
def corrected(tmp_path_factory: pytest.TempPathFactory) -> City:
    city = build_city(tmp_path_factory.mktemp("clocks"))
    with fixed_clock(LATER), closing(Credo.open(city.db)) as credo:
        credo.revoke("tax", "x3", "paid before judgment")
    return city


def credo_cli(city: City, *args: str, now: str = LATER) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **city.env(), "CREDO_NOW": now}
    return subprocess.run([str(Path(sys.executable).parent / "credo"), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def as_json(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode in (0, 1), done.stderr
    value: dict[str, object] = json.loads(done.stdout)
    return value


@pytest.mark.parametrize(("flags", "score", "lists"), [
    ([], 1000, []),
    (["--known-at", NOW], 950, ["tax_defaulter"]),
    (["--known-at", NOW, "--as-of", "2024-07-01T12:00"], 950, []),  # the list's grace had not ended yet
    (["--known-at", LATER, "--as-of", "2024-07-15"], 1000, []),
], ids=["now", "known before the revocation", "at a past T too", "known after it, at a past T"])
def test_standing_known_at(corrected: City, flags: list[str], score: int, lists: list[str]) -> None:
    s = as_json(credo_cli(corrected, "standing", rid("E"), "--json", *flags))
    assert (s["score"], s["lists"]) == (score, lists)
    assert ("known_at" in s) == ("--known-at" in flags)


def test_explain_and_check_known_at(corrected: City) -> None:
    x3 = [r for r in as_json(credo_cli(corrected, "explain", rid("E"), "--json", "--known-at", NOW))["records"]
          if r["record_id"] == "x3"]  # type: ignore[index]
    assert [(r["status"], r["counts"]) for r in x3] == [("counts", True)]
    x3 = [r for r in as_json(credo_cli(corrected, "explain", rid("E"), "--json"))["records"]  # type: ignore[index]
          if r["record_id"] == "x3"]
    assert x3[0]["why"] == "revoked on 2024-09-05 by cli: paid before judgment"
    then = as_json(credo_cli(corrected, "check", rid("E"), RAIL, "--json", "--known-at", NOW))
    now = as_json(credo_cli(corrected, "check", rid("E"), RAIL, "--json"))
    assert (then["decision"], now["decision"]) == ("deny", "allow")
    assert [r["code"] for r in then["reasons"]] == ["list:tax_defaulter"]  # type: ignore[attr-defined]


def test_a_bad_known_at_is_one_line_and_exit_2(corrected: City) -> None:
    done = credo_cli(corrected, "standing", rid("E"), "--known-at", "yesterday")
    assert done.returncode == 2 and done.stderr.strip().startswith("error: --known-at yesterday: not an ISO 8601")
    assert len(done.stderr.strip().splitlines()) == 1


def test_replay_on_the_cli(corrected: City) -> None:
    """Each decision replays the same, a hypothetical one too; an altered log entry replays differently."""
    made = [as_json(credo_cli(corrected, "check", rid(p), RAIL, "--json", *flags))
            for p, flags in [("A", []), ("E", []), ("E", ["--known-at", NOW]), ("D", ["--as-of", "2024-09-10"])]]
    assert [d["decision"] for d in made] == ["deny", "allow", "deny", "deny"]
    for d in made:
        done = credo_cli(corrected, "audit", "replay", str(d["decision_id"]))
        assert done.returncode == 0 and "replays the same" in done.stdout, done.stderr
        assert as_json(credo_cli(corrected, "audit", "replay", str(d["decision_id"]), "--json"))["same"] is True
    with closing(Credo.open(corrected.db)) as credo:  # someone rewrites what the log says was answered
        credo.con.execute("UPDATE audit SET decision = 'allow' WHERE decision_id = ?", [made[0]["decision_id"]])
    done = credo_cli(corrected, "audit", "replay", str(made[0]["decision_id"]))
    assert done.returncode == 1 and "decision: logged allow, replayed deny" in done.stderr
    r = as_json(credo_cli(corrected, "audit", "replay", str(made[0]["decision_id"]), "--json"))
    assert r["same"] is False and r["differences"] == [{"field": "decision", "logged": "allow", "replayed": "deny"}]
    missing = credo_cli(corrected, "audit", "replay", "d-nothing")
    assert missing.returncode != 0 and "no decision d-nothing" in missing.stderr


@pytest.fixture(scope="module")
def live(corrected: City) -> Iterator[object]:
    with running(corrected) as server:  # its clock stands at NOW: before the revocation was known
        yield server


def test_the_api_takes_as_of_and_known_at(live: object, corrected: City) -> None:
    from tests.conftest import Live

    assert isinstance(live, Live)
    later = {"known_at": LATER}
    with live.client("operator") as c:
        path = f"/v1/residents/{rid('E')}/standing"
        assert c.get(path, params=BOARDING).json()["score"] == 1000  # the stored standing
        assert c.get(path, params={**BOARDING, "known_at": NOW}).json()["score"] == 950
        assert c.get(path, params={**BOARDING, "as_of": "2024-07-15", **later}).json()["score"] == 1000
        explained = c.get(f"/v1/residents/{rid('E')}/explanation", params={**BOARDING, "known_at": NOW}).json()
        assert [r["counts"] for r in explained["records"] if r["record_id"] == "x3"] == [True]
        bad = c.get(path, params={**BOARDING, "known_at": "soon"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_time"
    with live.client("provider") as c:
        ask = {"resident_id": rid("E"), "action": RAIL, **BOARDING}
        assert c.get("/v1/check", params=ask).json()["decision"] == "allow"
        then = c.get("/v1/check", params={**ask, "known_at": NOW}).json()
        assert then["decision"] == "deny" and then["receipt"]["seq"] > 0
        assert [r["code"] for r in then["reasons"]] == ["list:tax_defaulter"]


def test_decisions_answered_by_the_server_replay_the_same(tmp_path: Path) -> None:
    """Single and batch checks answered from the server's decision index, a revocation through the
    API between them (the clock standing still), and a check at another K; once the server has
    stopped, each replays the same from the store."""
    city = build_city(tmp_path / "served")
    made: list[tuple[str, str]] = []
    manifest = {"action": RAIL, "resident_ids": [rid(p) for p in "ABCDE"], **BOARDING}
    with running(city) as live, live.client("provider") as c:
        for step in range(2):
            one = c.get("/v1/check", params={"resident_id": rid("E"), "action": RAIL, **BOARDING}).json()
            many = c.post("/v1/check/batch", json=manifest).json()["decisions"]
            made += [(one["decision_id"], one["decision"])] + [(d["decision_id"], d["decision"]) for d in many]
            if step == 0:
                with live.client("agency") as agency:
                    assert agency.post("/v1/records/x3/revoke", json={"reason": "paid"}).status_code == 200
        then = c.get("/v1/check", params={"resident_id": rid("E"), "action": RAIL, "known_at": NOW,
                                          "as_of": "2024-08-01", **BOARDING}).json()
        made.append((then["decision_id"], then["decision"]))
    assert [d for _, d in made[:6]] == ["deny", "deny", "allow", "allow", "allow", "deny"]
    assert [d for _, d in made[6:]] == ["allow", "deny", "allow", "allow", "allow", "allow", "allow"]
    with closing(Credo.open(city.db)) as credo:
        replayed = [credo.replay(decision_id) for decision_id, _ in made]
    assert [r["differences"] for r in replayed] == [[]] * len(made)
    assert [r["replayed"]["decision"] for r in replayed] == [d for _, d in made]
