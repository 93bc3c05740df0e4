"""Who may call what (spec §1), every cell asserted against a live server: role × endpoint.

``ENDPOINTS`` is the table: each row names the roles that get the answer (200,
or 201 for a creation) and builds a valid request for any role; every other role
gets 403, a request without a token or with an unknown one 401. The same table
must agree with the ``x-roles`` the OpenAPI schema documents, and must cover
every route the app has, so an endpoint cannot be added without its row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from credo.ids import parse_resident_id
from tests.conftest import POLICY, ROLES, Live, build_city, rid, running

Request = tuple[str, str, dict[str, Any]]
SPARE_TOKEN = 8
"""The number of a token made for the operator's revoke cell (after the seven of ``build_city``)."""
PURPOSE = {"purpose": "matrix"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route's template, as the OpenAPI schema names it
    allowed: tuple[str, ...]  # () = public, no token needed
    build: Callable[[str], Request]
    created: bool = False


def get(path: str, params: dict[str, str] | None = None) -> Callable[[str], Request]:
    return lambda role: ("GET", path, {"params": params or {}})


def own_file(part: str) -> Callable[[str], Request]:
    return get(f"/v1/residents/{rid('A')}/{part}", PURPOSE)


def new_record(role: str) -> Request:
    row = {"record_id": f"m-{role}", "type": "tax.arrears", "subject": rid("C"), "occurred_at": "2024-08-01"}
    return "POST", "/v1/records", {"json": [row]}


def revoke(role: str) -> Request:
    record = {"agency": "x3", "operator": "x4"}.get(role, "x3")
    params = {"agency": "tax"} if role == "operator" else {}
    return "POST", f"/v1/records/{record}/revoke", {"json": {"reason": "matrix"}, "params": params}


def open_objection(role: str) -> Request:
    if role == "resident":
        return "POST", "/v1/objections", {"json": {"record": "tax:x1", "reason": "matrix"}}
    body = {"record": "tax:x5", "reason": "matrix", "resident_id": rid("G")}
    return "POST", "/v1/objections", {"json": body}


def resolve(role: str) -> Request:
    number = {"agency": 1, "operator": 2}.get(role, 1)
    return "POST", f"/v1/objections/{number}/resolve", {"json": {"uphold": False, "answer": "matrix"}}


def judge(step: str) -> Callable[[str], Request]:
    """Items 1 and 3 (the agency's cells) and 2 and 4 (the operator's), seeded about resident J."""
    def build(role: str) -> Request:
        number = {"confirm": {"agency": 1, "operator": 2}, "decline": {"agency": 3, "operator": 4}}[step].get(role, 1)
        body = {"reason": "matrix", **({"resident_id": rid("J")} if step == "confirm" else {})}
        return "POST", f"/v1/review/{number}/{step}", {"json": body}
    return build


def token(role: str) -> Request:
    return "POST", "/v1/tokens", {"json": {"role": "provider", "provider": f"made-by-{role}"}}


def batch(role: str) -> Request:
    return "POST", "/v1/check/batch", {"json": {"action": "rail.high_speed.book", "purpose": "matrix",
                                                "resident_ids": [rid("A"), rid("C")]}}


def check_body(role: str) -> Request:
    return "POST", "/v1/check", {"json": {"resident_id": rid("A"), "action": "rail.high_speed.book",
                                          "purpose": "matrix"}}


ANY = ROLES
ENDPOINTS: dict[str, Endpoint] = {
    "check": Endpoint("GET", "/v1/check", ("provider", "operator", "resident"),
                      get("/v1/check", {"resident_id": rid("A"), "action": "rail.high_speed.book",
                                        **PURPOSE})),
    "check_post": Endpoint("POST", "/v1/check", ("provider", "operator", "resident"), check_body),
    "check_batch": Endpoint("POST", "/v1/check/batch", ("provider", "operator"), batch),
    "standing": Endpoint("GET", "/v1/residents/{resident_id}/standing", ("resident", "operator"),
                         own_file("standing")),
    "explanation": Endpoint("GET", "/v1/residents/{resident_id}/explanation", ("resident", "operator"),
                            own_file("explanation")),
    "records": Endpoint("GET", "/v1/residents/{resident_id}/records", ("resident", "agency", "operator"),
                        own_file("records")),
    "notices": Endpoint("GET", "/v1/residents/{resident_id}/notices", ("resident", "operator"),
                        own_file("notices")),
    "submit": Endpoint("POST", "/v1/records", ("agency",), new_record),
    "revoke": Endpoint("POST", "/v1/records/{record_id}/revoke", ("agency", "operator"), revoke),
    "rejects": Endpoint("GET", "/v1/rejects", ("agency", "operator"), get("/v1/rejects")),
    "objection_open": Endpoint("POST", "/v1/objections", ("resident", "operator"), open_objection,
                               created=True),
    "objections": Endpoint("GET", "/v1/objections", ("resident", "agency", "operator"),
                           get("/v1/objections")),
    "objection_resolve": Endpoint("POST", "/v1/objections/{number}/resolve", ("agency", "operator"), resolve),
    "redress": Endpoint("GET", "/v1/redress", ("operator", "provider", "resident"), get("/v1/redress")),
    "review_list": Endpoint("GET", "/v1/review", ("agency", "operator"), get("/v1/review")),
    "review_item": Endpoint("GET", "/v1/review/{number}", ("agency", "operator"), get("/v1/review/1")),
    "review_confirm": Endpoint("POST", "/v1/review/{number}/confirm", ("agency", "operator"), judge("confirm")),
    "review_decline": Endpoint("POST", "/v1/review/{number}/decline", ("agency", "operator"), judge("decline")),
    "audit": Endpoint("GET", "/v1/audit", ("resident", "auditor", "operator"), get("/v1/audit")),
    "audit_verify": Endpoint("GET", "/v1/audit/verify", ("auditor", "operator"), get("/v1/audit/verify")),
    "policy": Endpoint("GET", "/v1/policy", ANY, get("/v1/policy")),
    "policy_apply": Endpoint("PUT", "/v1/policy", ("operator",),
                             lambda role: ("PUT", "/v1/policy", {"content": POLICY.encode()})),
    "tokens": Endpoint("POST", "/v1/tokens", ("operator",), token, created=True),
    "token_list": Endpoint("GET", "/v1/tokens", ("operator",), get("/v1/tokens")),
    "token_revoke": Endpoint("DELETE", "/v1/tokens/{token_id}", ("operator",),
                             lambda role: ("DELETE", f"/v1/tokens/{SPARE_TOKEN}", {})),
    "backup": Endpoint("POST", "/v1/admin/backup", ("operator",),
                       lambda role: ("POST", "/v1/admin/backup", {"json": {"dir": f"matrix-{role}"}})),
    "me": Endpoint("GET", "/v1/me", ANY, get("/v1/me")),
    "metrics": Endpoint("GET", "/metrics", ("operator", "auditor"), get("/metrics")),
    "feed_snapshot": Endpoint("GET", "/v1/feed/snapshot", ("provider", "operator"), get("/v1/feed/snapshot")),
    "feed": Endpoint("GET", "/v1/feed", ("provider", "operator"), get("/v1/feed")),
    "feed_ack": Endpoint("POST", "/v1/feed/ack", ("provider",),
                         lambda role: ("POST", "/v1/feed/ack", {"json": {"seq": 1}})),
    "feed_status": Endpoint("GET", "/v1/feed/status", ("operator", "auditor"), get("/v1/feed/status")),
    "healthz": Endpoint("GET", "/healthz", (), get("/healthz")),
    "readyz": Endpoint("GET", "/readyz", (), get("/readyz")),
}
CALLERS = (*ROLES, "no token", "unknown token")


def expected(endpoint: Endpoint, caller: str) -> int:
    if not endpoint.allowed:
        return 200
    if caller in ("no token", "unknown token"):
        return 401
    if caller in endpoint.allowed:
        return 201 if endpoint.created else 200
    return 403


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    city = build_city(tmp_path_factory.mktemp("matrix"))
    _seed_objections(city.db)
    with running(city) as server:
        yield server


def _seed_objections(db: Path) -> None:
    """Objections 1 and 2 (against tax records of H), for the agency's and the operator's resolve cells;
    a spare token for the operator's revoke cell."""
    import os

    from credo.service import Credo
    from tests.conftest import NOW

    os.environ["CREDO_NOW"] = NOW
    credo = Credo.open(db)
    try:
        assert credo.create_token("provider", provider="spare")[1].id == SPARE_TOKEN
        credo.open_objection(parse_resident_id(rid("H")), "tax:x6", "seed one")
        credo.ingest_files("tax", [_csv(db.parent / "more.csv")])
        credo.open_objection(parse_resident_id(rid("H")), "tax:x8", "seed two")
        credo.ingest_files("tax", [_described(db.parent / "described.csv")])
        assert [i["id"] for i in credo.review_items()] == [1, 2, 3, 4]
    finally:
        credo.close()


def _described(path: Path) -> Path:
    """Four rows about resident J, by name, birth date and district: review items 1 to 4."""
    from credo import ids
    from tests.conftest import PEOPLE, RECORD_COLUMNS, write_csv

    about = ("Resident J", ids.birth_date(rid("J")).isoformat(), PEOPLE["J"][1])
    header = (*RECORD_COLUMNS, "subject_name", "subject_birth_date", "subject_district")
    return write_csv(path, [header, *[(f"rv{i}", "tax.arrears", "", "2024-07-03", "", "", *about) for i in range(4)]])


def _csv(path: Path) -> Path:
    from tests.conftest import RECORD_COLUMNS, write_csv

    return write_csv(path, [RECORD_COLUMNS, ("x8", "tax.arrears", rid("H"), "2024-07-02", "", "")])


CELLS = [(name, caller) for name in ENDPOINTS for caller in CALLERS]


@pytest.mark.parametrize(("name", "caller"), CELLS, ids=[f"{n}-{c.replace(' ', '_')}" for n, c in CELLS])
def test_cell(live: Live, name: str, caller: str) -> None:
    endpoint = ENDPOINTS[name]
    method, path, kwargs = endpoint.build(caller)
    token = {"no token": "", "unknown token": "credo_not-a-token"}.get(caller)
    with live.client(caller if token is None else None, token=token) as c:
        r = c.request(method, path, **kwargs)
    want = expected(endpoint, caller)
    assert r.status_code == want, f"{caller} {method} {path}: {r.status_code} {r.text[:300]}"
    if want >= 400:
        assert set(r.json()["error"]) == {"code", "message", "details"}
    if path.startswith("/v1/"):  # answers and refusals alike may name a resident: no cache keeps them
        assert r.headers.get("cache-control") == "no-store"
    if want == 401:
        assert r.headers["www-authenticate"] == "Bearer"


def test_openapi_documents_the_same_roles(live: Live) -> None:
    with live.client() as c:
        schema = c.get("/openapi.json").json()
    documented = {(m.upper(), p): op for p, ops in schema["paths"].items() for m, op in ops.items()}
    for name, endpoint in ENDPOINTS.items():
        op = documented[(endpoint.method, endpoint.path)]
        assert set(op.get("x-roles", ())) == set(endpoint.allowed), name
        if endpoint.allowed:
            assert "**Roles:**" in op["description"], name
            assert {"401", "403"} <= set(op["responses"]), name
    rows = {(e.method, e.path) for e in ENDPOINTS.values()}
    assert set(documented) == rows, "an endpoint has no matrix row"


# -- ownership: the right role, someone else's file --------------------------------------------
SOMEONE_ELSE: list[tuple[str, str, str, dict[str, Any]]] = [
    ("resident", "GET", f"/v1/residents/{rid('B')}/standing", {}),
    ("resident", "GET", f"/v1/residents/{rid('B')}/explanation", {}),
    ("resident", "GET", f"/v1/residents/{rid('B')}/records", {}),
    ("resident", "GET", f"/v1/residents/{rid('B')}/notices", {}),
    ("resident", "GET", "/v1/check", {"params": {"resident_id": rid("B"), "action": "admin.approval"}}),
    ("resident", "GET", "/v1/audit", {"params": {"resident_id": rid("B")}}),
    ("resident", "GET", "/v1/objections", {"params": {"resident_id": rid("B")}}),
    ("resident", "POST", "/v1/objections", {"json": {"record": "tax:x3", "reason": "not mine",
                                                     "resident_id": rid("E")}}),
    ("agency", "GET", "/v1/rejects", {"params": {"agency": "blood-centre"}}),
    ("agency", "POST", "/v1/records/d1/revoke", {"json": {"reason": "not ours"},
                                                 "params": {"agency": "blood-centre"}}),
]


@pytest.mark.parametrize(("who", "method", "path", "kwargs"), SOMEONE_ELSE,
                         ids=[f"{w}-{m}-{p.split('?')[0]}" for w, m, p, _ in SOMEONE_ELSE])
def test_someone_elses_file_is_forbidden(live: Live, who: str, method: str, path: str,
                                          kwargs: dict[str, Any]) -> None:
    with live.client(who) as c:
        r = c.request(method, path, **kwargs)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"


def test_agency_reads_only_its_own_records(live: Live) -> None:
    with live.client("agency_blood") as c:
        r = c.get(f"/v1/residents/{rid('A')}/records")
    assert r.status_code == 200
    assert r.json()["records"] == []  # A's only record is the tax agency's
    with live.client("agency") as c:
        records = c.get(f"/v1/residents/{rid('A')}/records").json()["records"]
    assert [x["record_id"] for x in records] == ["x1"]


@pytest.mark.parametrize("who", ["provider", "operator"])
def test_purpose_is_required_from_providers_and_operators(live: Live, who: str) -> None:
    with live.client(who) as c:
        r = c.get("/v1/check", params={"resident_id": rid("C"), "action": "admin.approval"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "purpose_required"
        r = c.post("/v1/check/batch", json={"action": "admin.approval", "resident_ids": [rid("C")]})
        assert r.status_code == 422 and r.json()["error"]["code"] == "purpose_required"
    if who == "operator":
        with live.client(who) as c:
            r = c.get(f"/v1/residents/{rid('C')}/standing")
            assert r.status_code == 422 and r.json()["error"]["code"] == "purpose_required"


def test_a_provider_never_sees_records_or_scores(live: Live) -> None:
    with live.client("provider") as c:
        d = c.get("/v1/check", params={"resident_id": rid("I"), "action": "rail.high_speed.book",
                                       **PURPOSE}).json()
        b = c.post("/v1/check/batch", json={"action": "rail.high_speed.book", "purpose": "matrix",
                                            "resident_ids": [rid("I")]}).json()
    for reasons in (d["reasons"], b["decisions"][0]["reasons"]):
        assert reasons and all(set(r) == {"code", "effect", "ends"} for r in reasons)
    assert "score" not in str(d) and "score" not in str(b)
