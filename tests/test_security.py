"""Security properties of tokens, limits and files (spec §1, §6; issue 8).

* Tokens are stored only as their SHA-256: no raw token in the database file, its WAL, or any text
  column of any table (audit log included); and they are never logged: the server's output during a
  run that used every token, an unknown one and a token-creating call holds none of them.
* Tokens are compared in constant time: ``hmac.compare_digest`` is on the path every request takes
  (asserted by reading the code, and by watching a real request go through it), and nothing compares a
  token or its digest with ``==``.
* Request size (413) and per-token rate (429) limits, beyond tests/test_api_limits.py: a chunked body
  with no Content-Length, every body-reading endpoint, one token limited while another is not, the
  limit recovering after a second.
* The database file and its write-ahead log are created with mode 0600 (owner only).

The role × endpoint matrix, objections and audit included, is tests/test_api_auth.py; SQL built only
with bound parameters is tests/test_security_sql.py.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import inspect
import os
import stat
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from credo import principals
from credo.api import auth, fastcheck
from credo.app import create_app
from credo.serving import runtime
from credo.serving.core import Core
from tests.conftest import POLICY, City, Live, rid, running

# -- tokens: hashed at rest, never logged -------------------------------------------------------


def _every_text_column(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [(str(t), str(c)) for t, c in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' AND data_type = 'VARCHAR'").fetchall()]


def _holding(db: Path, needle: str) -> list[str]:
    """Every (table, column) of the database with a value containing ``needle``."""
    found = []
    with duckdb.connect(str(db), read_only=True) as con:
        for table, column in _every_text_column(db):
            if con.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{column}", ?)',
                           [needle]).fetchall()[0][0]:
                found.append(f"{table}.{column}")
    return found


def test_tokens_are_stored_hashed_and_never_logged(city: City) -> None:
    tokens = dict(city.tokens)
    with running(city) as live:
        for role, token in city.tokens.items():
            with live.client(token=token) as c:
                assert c.get("/v1/me").status_code == 200, role
        with live.client(token="credo_an-unknown-token-that-must-not-be-logged") as c:
            assert c.get("/v1/me").status_code == 401
        with live.client("operator") as c:
            made = c.post("/v1/tokens", json={"role": "provider", "provider": "rail"})
            assert made.status_code == 201
            tokens["made"] = made.json()["token"]
            with live.client(token=tokens["made"]) as mc:
                assert mc.get("/v1/me").json()["role"] == "provider"
        wal = Path(f"{city.db}.wal")
        while_serving = [city.db.read_bytes(), wal.read_bytes() if wal.exists() else b""]
        log = live.city.folder
    output = b"".join(p.read_bytes() for p in log.glob("serve-*.log"))
    after = city.db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    for name, token in [*tokens.items(), ("unknown", "credo_an-unknown-token-that-must-not-be-logged")]:
        raw = token.encode()
        assert raw not in output, f"the {name} token is in the server's output"
        assert all(raw not in blob for blob in [*while_serving, after]), f"the {name} token is in the file"
        assert raw.removeprefix(b"credo_")[:16] not in after
    for name, token in tokens.items():
        assert not _holding(city.db, token), f"the {name} token is stored as given"
        assert _holding(city.db, hashlib.sha256(token.encode()).hexdigest()) == ["principals.token_hash"], name


# -- tokens: compared in constant time ----------------------------------------------------------


def _source_tree(fn: Any) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(fn)))


def _calls(tree: ast.AST) -> set[str]:
    return {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}


def test_tokens_are_compared_in_constant_time_on_every_path() -> None:
    # the request paths: Allow (and the check fast path) -> Allow.principal -> Runtime.authenticate
    # -> Directory.authenticate -> hmac.compare_digest
    assert "self.principal" in _calls(_source_tree(auth.Allow.__call__))
    assert "checks.DECIDE.principal" in _calls(_source_tree(fastcheck.FastCheck.__call__))
    assert "rt.authenticate" in _calls(_source_tree(auth.Allow.principal))
    assert "self.directory.authenticate" in _calls(_source_tree(runtime.Runtime.authenticate))
    for fn in (principals.Directory.authenticate, principals.authenticate):
        tree = _source_tree(fn)
        assert "hmac.compare_digest" in _calls(tree), fn.__qualname__
        equalities = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Compare)
                      and any(isinstance(op, ast.Eq | ast.NotEq) for op in n.ops)]
        assert not equalities, f"{fn.__qualname__} compares with ==: {equalities}"


def test_a_request_goes_through_compare_digest(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def watching(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(principals.hmac, "compare_digest", watching)
    with TestClient(create_app(Core(city.db))) as c:
        token = city.tokens["provider"]
        assert c.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        digest = hashlib.sha256(token.encode()).hexdigest()
        assert (digest, digest) in seen
        assert c.get("/v1/me", headers={"Authorization": "Bearer credo_wrong"}).status_code == 401


# -- size and rate limits -----------------------------------------------------------------------


@pytest.fixture
def limited(city: City, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CREDO_MAX_BODY", "2000")
    monkeypatch.setenv("CREDO_RATE_LIMIT", "5")
    with TestClient(create_app(Core(city.db))) as c:
        yield c


def _as(city: City, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {city.tokens[who]}"}


BIG = b"x" * 2001


@pytest.mark.parametrize(("who", "method", "path", "content_type"), [
    ("agency", "POST", "/v1/records", "application/json"),
    ("agency", "POST", "/v1/records", "application/x-ndjson"),
    ("provider", "POST", "/v1/check/batch", "application/json"),
    ("operator", "PUT", "/v1/policy", "application/yaml"),
])
def test_every_body_past_the_limit_is_refused(limited: TestClient, city: City, who: str, method: str, path: str,
                                              content_type: str) -> None:
    headers = {**_as(city, who), "Content-Type": content_type}
    declared = limited.request(method, path, content=BIG, headers=headers)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted while reading
        yield from (BIG[i:i + 500] for i in range(0, len(BIG), 500))

    streamed = limited.request(method, path, content=chunks(), headers=headers)
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"


def test_a_body_at_the_limit_is_read(limited: TestClient, city: City) -> None:
    row = b'[{"record_id": "s1", "type": "tax.arrears", "subject": "%s", "occurred_at": "2024-08-01"}]' % \
        rid("C").encode()
    r = limited.post("/v1/records", content=row.ljust(2000), headers={**_as(city, "agency"),
                                                                       "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_the_rate_limit_is_per_token_and_recovers(limited: TestClient, city: City) -> None:
    me = [limited.get("/v1/me", headers=_as(city, "auditor")).status_code for _ in range(8)]
    assert me[:5] == [200] * 5 and me[-1] == 429
    refused = limited.get("/v1/me", headers=_as(city, "auditor"))
    assert refused.json()["error"]["code"] == "rate_limited"
    assert limited.get("/v1/me", headers=_as(city, "operator")).status_code == 200  # another token: not limited
    writes = [limited.post("/v1/records", json=[], headers=_as(city, "agency")).status_code for _ in range(8)]
    assert 429 in writes  # writes are limited too (an empty batch is otherwise a 422)
    time.sleep(1.1)
    assert limited.get("/v1/me", headers=_as(city, "auditor")).status_code == 200


def test_the_rate_limit_holds_on_a_live_server(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(City, "env", lambda self: {"CREDO_DB": str(self.db), "CREDO_NOW": "2024-09-01T10:00:00+08:00",
                                                  "CREDO_RATE_LIMIT": "20"})
    with running(city) as live, live.client("provider") as c:
        params = {"resident_id": rid("C"), "action": "admin.approval", "purpose": "p"}
        codes = [c.get("/v1/check", params=params).status_code for _ in range(60)]
    assert codes[:20] == [200] * 20 and 429 in codes and set(codes) <= {200, 429}


# -- files: owner only --------------------------------------------------------------------------


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_the_database_and_its_wal_are_created_owner_only(server: Live, tmp_path: Path) -> None:
    old = os.umask(0o022)  # a permissive umask, as a shell's usual: the store must not rely on the caller's
    try:
        from credo.store import connect

        con = connect(tmp_path / "new.duckdb")
        con.execute("CREATE TABLE t (x INTEGER)")
        con.execute("INSERT INTO t VALUES (1)")
        assert Path(f"{tmp_path / 'new.duckdb'}.wal").exists()
        assert _private(tmp_path / "new.duckdb") and _private(Path(f"{tmp_path / 'new.duckdb'}.wal"))
        con.close()
    finally:
        os.umask(old)
    with server.client("operator") as c:  # the server writes: its WAL appears, owner only
        assert c.put("/v1/policy", content=POLICY.replace("tiny-1", "tiny-2").encode()).status_code == 200
    wal = Path(f"{server.city.db}.wal")
    assert wal.exists() and _private(wal) and _private(server.city.db)
