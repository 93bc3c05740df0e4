"""The HTTP API end to end: a real ``credo serve`` on 127.0.0.1, real HTTP through httpx.

One server for the module, over the tiny city of ``conftest``; a test that changes
a resident's standing has that resident to itself, so the order of tests does not matter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Live, build_city, rid, running

RAIL = "rail.high_speed.book"
BOARDING = {"purpose": "boarding"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with running(build_city(tmp_path_factory.mktemp("e2e"))) as server:
        yield server


def check(live: Live, who: str, resident_id: str, action: str = RAIL) -> httpx.Response:
    with live.client(who) as c:
        return c.get("/v1/check", params={"resident_id": resident_id, "action": action, **BOARDING})


def audit_entries(live: Live, who: str = "auditor", **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    with live.client(who) as c:
        while True:
            page = c.get("/v1/audit", params={"after": after, "limit": 1000, **params}).json()
            out += page["entries"]
            if page["next_after"] is None:
                return out
            after = page["next_after"]


# -- decisions --------------------------------------------------------------------------------
def test_a_listed_resident_is_denied_with_reasons_records_and_ends(live: Live) -> None:
    d = check(live, "operator", rid("I")).json()
    assert d["decision"] == "deny" and d["benefits"] == [] and d["policy"] == "tiny-1@1"
    assert d["resident_id"] == rid("I") and d["decision_id"].startswith("d-")
    (reason,) = d["reasons"]
    assert reason["code"] == "list:tax_defaulter" and reason["effect"] == "deny"
    assert reason["records"] == [{"agency": "tax", "record_id": "x7", "type": "tax.arrears",
                                  "occurred_at": "2024-07-01T00:00:00+08:00"}]
    assert reason["ends"] == {"resolved_by": ["tax.settled"], "expires_at": "2027-07-01T00:00:00+08:00"}


def test_a_grade_measure_is_a_benefit(live: Live) -> None:
    d = check(live, "provider", rid("B"), "admin.approval").json()
    assert (d["decision"], d["benefits"], [r["code"] for r in d["reasons"]]) == ("allow", ["green_channel"],
                                                                                 ["grade:AA"])


def test_post_check_and_a_lowercase_x(live: Live) -> None:
    with live.client("provider") as c:
        d = c.post("/v1/check", json={"resident_id": rid("J").lower(), "action": RAIL, **BOARDING}).json()
    assert (d["resident_id"], d["decision"], d["reasons"]) == (rid("J"), "allow", [])


ERRORS = [
    ({"resident_id": rid("A"), "action": "space.launch"}, 404, "unknown_action"),
    ({"resident_id": rid("A")[:-1] + "0", "action": RAIL}, 422, "id_check"),
    ({"resident_id": "123", "action": RAIL}, 422, "id_length"),
    ({"resident_id": "110101199901010010", "action": RAIL}, 404, "unknown_resident"),
    ({"action": RAIL}, 422, "invalid_request"),
]


@pytest.mark.parametrize(("params", "status", "code"), ERRORS, ids=[e[2] for e in ERRORS])
def test_check_errors(live: Live, params: dict[str, str], status: int, code: str) -> None:
    with live.client("provider") as c:
        r = c.get("/v1/check", params={**params, **BOARDING})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"] and "details" in error


def test_a_manifest_keeps_its_order_and_answers_bad_ids_one_by_one(live: Live) -> None:
    manifest = [rid("I"), rid("J"), "bad", "110101199901010010", rid("J").lower(), rid("I")]
    with live.client("provider") as c:
        r = c.post("/v1/check/batch", content=orjson.dumps({"action": RAIL, "resident_ids": manifest,
                                                            "purpose": "flight CA1234"}))
    body = r.json()
    assert r.status_code == 200
    assert (body["count"], body["allowed"], body["denied"], body["errors"]) == (6, 2, 2, 2)
    items = body["decisions"]
    assert [i.get("decision") for i in items] == ["deny", "allow", None, None, "allow", "deny"]
    assert [i["resident_id"] for i in items] == [rid("I"), rid("J"), "bad", "110101199901010010", rid("J"),
                                                 rid("I")]
    assert items[2]["error"]["code"] == "id_length" and items[3]["error"]["code"] == "unknown_resident"
    assert set(items[0]["reasons"][0]) == {"code", "effect", "ends"}  # a provider sees no records
    assert len({i["decision_id"] for i in items if "decision_id" in i}) == 4


@pytest.mark.parametrize(("body", "code"), [
    (b"not json", "bad_json"),
    (b"[1, 2]", "invalid_request"),
    (orjson.dumps({"action": RAIL, "resident_ids": [rid("C")] * 10_001, **BOARDING}), "manifest_too_large"),
    (orjson.dumps({"action": RAIL, "resident_ids": [1, 2], **BOARDING}), "invalid_request"),
])
def test_a_bad_manifest_is_refused(live: Live, body: bytes, code: str) -> None:
    with live.client("provider") as c:
        r = c.post("/v1/check/batch", content=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == code


def test_a_full_manifest_of_ten_thousand(live: Live) -> None:
    with live.client("provider") as c:
        r = c.post("/v1/check/batch", json={"action": RAIL, "resident_ids": [rid("J"), rid("I")] * 5000,
                                            **BOARDING})
    assert r.status_code == 200
    assert (r.json()["allowed"], r.json()["denied"]) == (5000, 5000)


# -- writes reach decisions at once -----------------------------------------------------------
def test_records_by_json_array_and_ndjson_with_per_row_results(live: Live) -> None:
    rows = [{"record_id": "api1", "type": "tax.arrears", "subject": rid("C"), "occurred_at": "2024-08-01"},
            {"record_id": "x1", "type": "tax.arrears", "subject": rid("A"), "occurred_at": "2024-08-01",
             "attributes": {"amount": 12000}},
            {"record_id": "api2", "type": "tax.arrears", "subject": rid("C")[:-1] + "0",
             "occurred_at": "2024-08-01"},
            {"record_id": "api3", "type": "civic.donation", "subject": rid("C"), "occurred_at": "2024-08-01"}]
    with live.client("agency") as c:
        r = c.post("/v1/records", json=rows)
    out = r.json()
    assert r.status_code == 200, r.text
    assert (out["rows"], out["accepted"], out["duplicates"], out["rejected"]) == (4, 1, 1, 2)
    assert [x["status"] for x in out["results"]] == ["accepted", "duplicate", "rejected", "rejected"]
    assert out["results"][2]["reason"] == "id_check" and out["results"][2]["field"] == "subject"
    assert out["results"][3]["reason"] == "type_not_allowed"
    assert check(live, "provider", rid("C")).json()["decision"] == "deny"  # the moment the call returned

    ndjson = b'{"record_id": "api4", "type": "tax.arrears", "subject": "%s", "occurred_at": "2024-08-02"}\n' \
             b"{not json\n" % rid("D").encode()
    with live.client("agency") as c:
        out = c.post("/v1/records", content=ndjson, headers={"Content-Type": "application/x-ndjson"}).json()
        rejects = c.get("/v1/rejects").json()["rejects"]
    assert [x["status"] for x in out["results"]] == ["accepted", "rejected"]
    assert out["results"][1]["reason"] == "malformed_row"
    assert {r["reason"] for r in rejects} >= {"id_check", "type_not_allowed", "malformed_row"}
    assert all(r["agency"] == "tax" and r["source"].startswith("api request") for r in rejects)


def test_rejects_come_a_page_at_a_time_with_a_total(live: Live) -> None:
    rows = [{"record_id": f"pg{i}", "type": "tax.arrears", "subject": rid("C")[:-1], "occurred_at": "2024-08-01"}
            for i in range(3)]
    with live.client("agency") as c:
        assert c.post("/v1/records", json=rows).json()["rejected"] == 3
        assert c.post("/v1/records", json=[{**rows[1], "subject": rid("C")}]).json()["accepted"] == 1
        seen, after = [], None
        while True:
            page = c.get("/v1/rejects", params={"limit": 2, **({"after": after} if after else {})}).json()
            assert len(page["rejects"]) == (2 if page["next"] else page["total"] - len(seen))
            seen += page["rejects"]
            if not (after := page["next"]):
                break
        refused = c.get("/v1/rejects", params={"after": "1;DROP"})
    assert len(seen) == page["total"] >= 3
    mine = {r["record"]: r for r in seen if r["record"] in ("tax:pg0", "tax:pg1", "tax:pg2")}
    assert {k: r["accepted_later"] for k, r in mine.items()} == {"tax:pg0": False, "tax:pg1": True, "tax:pg2": False}
    assert all(r["received_at"].endswith("+08:00") for r in seen)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "bad_marker"


def test_revocation_turns_a_deny_into_an_allow_at_once(live: Live) -> None:
    assert check(live, "provider", rid("E")).json()["decision"] == "deny"
    with live.client("agency") as c:
        r = c.post("/v1/records/x3/revoke", json={"reason": "paid in full"})
        assert r.status_code == 200 and r.json()["resident_id"] == rid("E")
        again = c.post("/v1/records/x3/revoke", json={"reason": "twice"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_revoked"
    assert check(live, "provider", rid("E")).json()["decision"] == "allow"
    with live.client("operator") as c:
        records = c.get(f"/v1/residents/{rid('E')}/records", params=BOARDING).json()["records"]
    assert records[0]["revoke_reason"] == "paid in full"


def test_an_objection_suspends_then_its_rejection_restores(live: Live) -> None:
    with live.client("operator") as c:
        r = c.post("/v1/objections", json={"record": "tax:x4", "reason": "not mine", "resident_id": rid("F")})
    assert r.status_code == 201
    number = r.json()["id"]
    assert check(live, "provider", rid("F")).json()["decision"] == "allow"  # disputed: suspend
    with live.client("agency") as c:
        mine = c.get("/v1/objections").json()["objections"]
        assert any(o["id"] == number and o["status"] == "open" for o in mine)
        answer = c.post(f"/v1/objections/{number}/resolve", json={"uphold": False, "answer": "it is"})
        assert answer.status_code == 200
    assert check(live, "provider", rid("F")).json()["decision"] == "deny"


def test_an_upheld_objection_revokes(live: Live) -> None:
    with live.client("resident") as c:  # resident A, against their own record
        number = c.post("/v1/objections", json={"record": "tax:x1", "reason": "settled"}).json()["id"]
        listed = c.get("/v1/objections").json()["objections"]
    assert [o["id"] for o in listed] == [number]
    with live.client("agency") as c:
        c.post(f"/v1/objections/{number}/resolve", json={"uphold": True, "answer": "our error"})
    assert check(live, "provider", rid("A")).json()["decision"] == "allow"


# -- the file and the log ---------------------------------------------------------------------
def test_a_resident_reads_their_file(live: Live) -> None:
    with live.client("resident_c") as c:
        standing = c.get(f"/v1/residents/{rid('C')}/standing").json()
        explanation = c.get(f"/v1/residents/{rid('C')}/explanation").json()
        me = c.get("/v1/me").json()
    assert {"resident_id", "score", "grade", "lists", "pending", "changes_at", "policy"} <= set(standing)
    assert "records" in explanation
    assert me == {"principal": me["principal"], "role": "resident", "agency": None, "provider": None,
                  "resident_id": rid("C")}


def test_every_decision_is_in_the_log_with_who_why_and_policy(live: Live) -> None:
    made = [check(live, "provider", rid("G")).json()["decision_id"] for _ in range(3)]
    with live.client("provider") as c:
        batch = c.post("/v1/check/batch", json={"action": RAIL, "resident_ids": [rid("G"), rid("H")],
                                                "purpose": "manifest"}).json()
    made += [i["decision_id"] for i in batch["decisions"]]
    logged = {e["decision_id"]: e for e in audit_entries(live) if e["event"] == "decision"}
    for decision_id in made:
        entry = logged[decision_id]
        assert (entry["principal"], entry["role"]) == ("provider:air", "provider")
        assert entry["policy"] == "tiny-1@1"
        assert entry["purpose"] in ("boarding", "manifest") and entry["action"] == RAIL
    assert logged[made[-1]]["resident"] == rid("H") and logged[made[-1]]["decision"] == "deny"
    with live.client("auditor") as c:
        assert c.get("/v1/audit/verify").json()["ok"] is True


def test_a_resident_lists_who_accessed_their_file(live: Live) -> None:
    check(live, "provider", rid("C"))
    mine = audit_entries(live, "resident_c")
    assert mine and all(e["resident"] == rid("C") for e in mine)
    assert any(e["principal"] == "provider:air" and e["event"] == "decision" for e in mine)
    assert any(e["event"] == "read.standing" for e in audit_entries(live, "resident_c"))  # its own reads too


def test_concurrent_decisions_share_commits(live: Live) -> None:
    def hub_commits() -> float:
        with live.client("operator") as c:
            text = c.get("/metrics").text
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("credo_hub_audit_commits"))

    before = hub_commits()

    async def burst() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {live.city.tokens['provider']}"}
        async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as c:
            return await asyncio.gather(*[c.get("/v1/check", params={"resident_id": rid("C"), "action": RAIL,
                                                                     **BOARDING}) for _ in range(64)])

    answers = asyncio.run(burst())
    assert all(r.status_code == 200 for r in answers)
    assert hub_commits() - before < 64
    ids = {r.json()["decision_id"] for r in answers}
    assert len(ids) == 64 and ids <= {e["decision_id"] for e in audit_entries(live)}


def test_health_readiness_metrics_policy(live: Live) -> None:
    with live.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
    assert ready["status"] == "ready" and ready["residents"] == 10
    with live.client("auditor") as c:
        metrics = c.get("/metrics")
        policy = c.get("/v1/policy").json()
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'credo_decisions_total{' in metrics.text and "credo_hub_audit_entries" in metrics.text
    assert policy["policy"] == "tiny-1@1" and RAIL in policy["document"]["actions"]
