"""Tokens and web sessions (spec §7): listed without secrets, revoked, expiring, signed out.

The CLI runs as a subprocess on the tiny city of ``conftest``; revocation and sign-out are
checked against ``credo serve --workers 2`` holding one keep-alive connection to each worker
(told apart by the pid ``/readyz`` answers), so a change made through one worker must hold in
the other at its very next request. Expiry is checked in one process whose clock
(``CREDO_NOW``) the test moves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from credo.app import create_app
from credo.serving.core import Core
from tests.conftest import SESSION, City, Live, build_city, page, rid, running, sign_in

LISTED = {"id", "principal", "role", "agency", "provider", "resident_id", "actions", "created_at", "expires_at",
          "status", "revoked_at", "revoked_by"}


def cli(city: City, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from credo.cli import main; main()", *args],
                          env={**os.environ, **city.env(), **env}, capture_output=True, text=True, timeout=120)


def principals_count(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM principals").fetchall()[0][0])


# -- the CLI ----------------------------------------------------------------------------------------
def test_token_list_names_every_token_without_its_secret(city: City) -> None:
    made = cli(city, "token", "create", "--role", "provider", "--provider", "rail", "--expires", "30d")
    assert made.returncode == 0, made.stderr
    secrets = [*city.tokens.values(), made.stdout.strip()]
    listed = cli(city, "token", "list", "--json")
    table = cli(city, "token", "list", COLUMNS="200")
    assert listed.returncode == table.returncode == 0, listed.stderr + table.stderr
    for secret in secrets:
        for shown in (secret, hashlib.sha256(secret.encode()).hexdigest()):
            assert shown not in listed.stdout + listed.stderr + table.stdout + table.stderr
    rows = json.loads(listed.stdout)
    assert [set(r) for r in rows] == [LISTED] * (len(city.tokens) + 1)
    assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["status"] for r in rows} == {"active"}
    last = rows[-1]
    assert (last["principal"], last["role"], last["provider"]) == ("provider:rail", "provider", "rail")
    assert last["created_at"] == "2024-09-01T10:00:00+08:00" and last["expires_at"] == "2024-10-01T10:00:00+08:00"
    assert any(r["resident_id"] == rid("A") for r in rows)
    assert "provider:rail" in table.stdout and "2024-10-01T10:00:00+08:00" in table.stdout


REFUSED = [
    (["--role", "agency", "--agency", "nosuch"], "agency 'nosuch' has no record types"),
    (["--role", "provider", "--provider", ""], "--provider is empty"),
    (["--role", "provider", "--provider", "   "], "--provider is empty"),
    (["--role", "provider", "--provider", "air\nline"], "--provider holds a control character"),
    (["--role", "agency", "--agency", "tax\x1b[2J"], "--agency holds a control character"),
    (["--role", "operator", "--agency", "court"], "an operator token takes no --agency"),
    (["--role", "resident", "--resident", rid("A"), "--provider", "air"], "a resident token takes no --provider"),
    (["--role", "agency"], "an agency token needs --agency"),
    (["--role", "provider", "--provider", "air", "--expires", "2024-08-01"], "is not in the future"),
    (["--role", "provider", "--provider", "air", "--expires", "soon"], "--expires is not a duration"),
]


@pytest.mark.parametrize(("args", "says"), REFUSED, ids=[" ".join(a).encode("unicode_escape").decode()
                                                         for a, _ in REFUSED])
def test_token_creation_refuses_what_does_not_belong(city: City, args: list[str], says: str) -> None:
    before = principals_count(city.db)
    done = cli(city, "token", "create", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and says in " ".join(done.stderr.split())
    assert principals_count(city.db) == before


def test_revoke_from_the_cli_is_listed_and_audited(city: City) -> None:
    listed = json.loads(cli(city, "token", "list", "--json").stdout)
    number = next(r["id"] for r in listed if r["principal"] == "provider:air")
    done = cli(city, "token", "revoke", str(number))
    assert done.returncode == 0 and done.stdout.strip() == f"token {number} (provider:air) revoked", done.stderr
    again = cli(city, "token", "revoke", str(number))
    assert again.returncode == 2 and "already revoked" in again.stderr
    assert cli(city, "token", "revoke", "999").returncode == 2
    row = next(r for r in json.loads(cli(city, "token", "list", "--json").stdout)
               if r["id"] == number)
    assert (row["status"], row["revoked_by"], row["revoked_at"]) == ("revoked", "cli", "2024-09-01T10:00:00+08:00")
    [logged] = [e for e in map(json.loads, cli(city, "audit", "export").stdout.splitlines())
                if e["event"] == "token.revoked"]
    assert (logged["principal"], json.loads(logged["detail"])) == ("cli", {"id": number, "principal": "provider:air"})


# -- expiry, by the one clock -----------------------------------------------------------------------
def test_an_expired_token_and_its_session_stop_the_moment_it_expires(city: City,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(Core(city.db))) as c:
        operator = {"Authorization": f"Bearer {city.tokens['operator']}"}
        r = c.post("/v1/tokens", json={"role": "operator", "expires": "2h"}, headers=operator)
        assert r.status_code == 201 and r.json()["expires_at"] == "2024-09-01T12:00:00+08:00", r.text
        brief = r.json()["token"]
        cookie = sign_in(c, brief)
        monkeypatch.setenv("CREDO_NOW", "2024-09-01T11:59:59+08:00")
        assert c.get("/v1/me", headers={"Authorization": f"Bearer {brief}"}).status_code == 200
        assert page(c, "/dashboard", cookie).status_code == 200
        monkeypatch.setenv("CREDO_NOW", "2024-09-01T12:00:00+08:00")
        refused = c.get("/v1/me", headers={"Authorization": f"Bearer {brief}"})
        assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]
        assert page(c, "/dashboard", cookie).headers["location"].startswith("/signin")
        states = {t["id"]: t["status"] for t in c.get("/v1/tokens", headers=operator).json()["tokens"]}
        assert states[r.json()["id"]] == "expired" and list(states.values()).count("active") == len(city.tokens)
        bad = c.post("/v1/tokens", json={"role": "operator", "agency": "tax"}, headers=operator)
        assert bad.status_code == 422 and bad.json()["error"]["details"] == {"field": "agency"}


# -- two workers: a revocation or a sign-out holds in both at once ------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with running(build_city(tmp_path_factory.mktemp("tokens")), workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def workers(live: Live) -> Iterator[list[httpx.Client]]:
    """One keep-alive connection (no token of its own) to each of the two workers."""
    found: dict[int, httpx.Client] = {}
    deadline = time.monotonic() + 60  # the second worker may still be loading its index
    while len(found) < 2 and time.monotonic() < deadline:
        client = httpx.Client(base_url=live.url, timeout=30)
        r = client.get("/readyz")
        pid = int(r.json()["pid"]) if r.status_code == 200 else 0
        if pid and pid not in found:
            found[pid] = client
        else:
            client.close()
            time.sleep(0.1)
    assert len(found) == 2, "one worker took every connection"
    yield list(found.values())
    for client in found.values():
        client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(via: httpx.Client, live: Live, **body: str) -> tuple[int, str]:
    r = via.post("/v1/tokens", json=body, headers=bearer(live.city.tokens["operator"]))
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), str(r.json()["token"])


def me(client: httpx.Client, token: str) -> int:
    return client.get("/v1/me", headers=bearer(token)).status_code


def test_a_token_made_in_one_worker_works_in_the_other_at_once(live: Live, workers: list[httpx.Client]) -> None:
    for maker, other in (workers, workers[::-1]):
        _, token = make_token(maker, live, role="provider", provider="bus")
        assert me(other, token) == 200


def test_a_revoked_token_is_refused_by_every_worker_at_its_next_request(live: Live,
                                                                        workers: list[httpx.Client]) -> None:
    number, token = make_token(workers[0], live, role="provider", provider="ferry")
    assert [me(w, token) for w in workers] == [200, 200]
    gone = workers[0].delete(f"/v1/tokens/{number}", headers=bearer(live.city.tokens["operator"]))
    assert gone.status_code == 200 and gone.json() == {"id": number, "principal": "provider:ferry",
                                                       "status": "revoked"}
    assert [me(w, token) for w in workers] == [401, 401]
    check = {"resident_id": rid("A"), "action": "rail.high_speed.book", "purpose": "boarding"}
    assert [w.get("/v1/check", params=check, headers=bearer(token)).status_code for w in workers] == [401, 401]
    again = workers[1].delete(f"/v1/tokens/{number}", headers=bearer(live.city.tokens["operator"]))
    assert again.status_code == 409


def test_the_cli_revokes_through_the_running_server(live: Live, workers: list[httpx.Client]) -> None:
    number, token = make_token(workers[1], live, role="auditor")
    assert [me(w, token) for w in workers] == [200, 200]
    port = live.url.rsplit(":", 1)[1]
    done = cli(live.city, "token", "revoke", str(number), CREDO_HOST="127.0.0.1", CREDO_PORT=port,
               CREDO_TOKEN=live.city.tokens["operator"])
    assert done.returncode == 0 and f"token {number} (auditor:" in done.stdout, done.stderr
    assert [me(w, token) for w in workers] == [401, 401]


def test_signing_out_ends_the_session_in_every_worker(live: Live, workers: list[httpx.Client]) -> None:
    cookie = sign_in(workers[0], live.city.tokens["operator"])
    opened = [page(w, "/dashboard", cookie) for w in workers]
    assert [r.status_code for r in opened] == [200, 200]
    csrf = re.search(r'name="csrf" value="([^"]+)"', opened[1].text)
    assert csrf is not None
    out = workers[1].post("/signout", data={"csrf": csrf.group(1)}, headers={"Cookie": f"{SESSION}={cookie}"},
                          follow_redirects=False)
    assert out.status_code == 303
    workers[1].cookies.clear()
    for w in workers:  # the old cookie, replayed after signing out
        r = page(w, "/dashboard", cookie)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin")
    assert me(workers[0], live.city.tokens["operator"]) == 200  # the token itself goes on working
    fresh = sign_in(workers[1], live.city.tokens["operator"])
    assert [page(w, "/dashboard", fresh).status_code for w in workers] == [200, 200]


def test_a_session_opened_with_a_revoked_token_stops(live: Live, workers: list[httpx.Client]) -> None:
    number, token = make_token(workers[0], live, role="resident", resident_id=rid("C"))
    cookie = sign_in(workers[1], token)
    assert [page(w, "/me", cookie).status_code for w in workers] == [200, 200]
    gone = workers[1].delete(f"/v1/tokens/{number}", headers=bearer(live.city.tokens["operator"]))
    assert gone.status_code == 200
    for w in workers:
        r = page(w, "/me", cookie)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin")


# -- tokens made before they had numbers ----------------------------------------------------------
def test_tokens_of_the_previous_schema_get_numbers_in_order_and_keep_working(tmp_path: Path) -> None:
    from datetime import datetime

    from credo import principals, store

    path = tmp_path / "v3.duckdb"
    con = duckdb.connect(str(path))
    store.migrate(con, upto=3)
    made = {"second": datetime(2024, 5, 2), "first": datetime(2024, 5, 1)}
    for secret, at in made.items():
        con.execute("INSERT INTO principals VALUES (?, 'auditor', NULL, NULL, NULL, ?, ?)",
                    [hashlib.sha256(secret.encode()).hexdigest(), f"auditor:{secret}", at])
    con.close()
    con = store.connect(path)
    rows = principals.listing(con, datetime(2024, 9, 1), "Asia/Shanghai")
    assert [(r["id"], r["principal"], r["status"]) for r in rows] == [(1, "auditor:first", "active"),
                                                                       (2, "auditor:second", "active")]
    assert principals.Directory.load(con).authenticate("second", datetime.now).name == "auditor:second"
    made_now = principals.create(con, "operator", now=datetime(2024, 9, 1))[1]
    assert made_now.id == 3
