"""Who may do what (credo.permissions): the table, the OpenAPI schema, the live server and the library agree.

For every operation and every role, the table's answer (admitted or not) must be what the schema's
``x-roles`` documents, what ``credo serve`` answers (403 or not: through the API, where the request
is one of tests/test_api_auth.py's, and through the web pages) and what the library does when called
directly (its second line). The precedence rule of the module's docstring is tested on its own, on
a rule that binds one role to its file and asks it for a purpose, so that every check can fail at once.
docs/api.md shows the table; ``python -m tests.test_permissions`` writes it there, a test checks it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from credo import ids
from credo.errors import CredoError, Forbidden, NotFound
from credo.ids import IdError, parse_resident_id
from credo.permissions import RULES, NotYours, Op, Owner, PurposeRequired, RoleRefused, Rule
from credo.principals import Principal
from credo.service import Credo
from tests import test_api_auth as matrix
from tests.conftest import NOW, POLICY, ROLES, Live, build_city, fixed_clock, rid, running

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
BEGIN = "<!-- the permission table: written by `python -m tests.test_permissions`, checked by its tests -->"
END = "<!-- end of the permission table -->"
NOBODY = "110101199901010010"
"""A valid resident ID that no resident of the tiny city holds."""

# -- where each operation is offered ------------------------------------------------------------------
API: dict[str, Op] = {
    "check": Op.CHECK, "check_post": Op.CHECK, "check_batch": Op.CHECK_BATCH,
    "standing": Op.READ_STANDING, "explanation": Op.READ_EXPLANATION, "records": Op.READ_RECORDS,
    "notices": Op.READ_NOTICES, "submit": Op.SUBMIT_RECORDS, "revoke": Op.REVOKE, "rejects": Op.READ_REJECTS,
    "objection_open": Op.OPEN_OBJECTION, "objections": Op.LIST_OBJECTIONS,
    "objection_resolve": Op.RESOLVE_OBJECTION, "redress": Op.LIST_REDRESS, "audit": Op.READ_AUDIT,
    "audit_verify": Op.VERIFY_AUDIT,
    "policy": Op.READ_POLICY, "policy_apply": Op.APPLY_POLICY, "tokens": Op.CREATE_TOKEN,
    "token_list": Op.LIST_TOKENS, "token_revoke": Op.REVOKE_TOKEN, "backup": Op.BACKUP, "me": Op.WHO_AM_I,
    "metrics": Op.METRICS, "feed_snapshot": Op.READ_FEED, "feed": Op.READ_FEED, "feed_ack": Op.ACK_FEED,
    "feed_status": Op.FEED_STATUS,
    "review_list": Op.LIST_REVIEW, "review_item": Op.LIST_REVIEW,
    "review_confirm": Op.JUDGE_REVIEW, "review_decline": Op.JUDGE_REVIEW,
}
"""tests/test_api_auth.py's endpoints (by its name for each) and the operation each performs."""

PAGES: list[tuple[Op, str, str, dict[str, str]]] = [
    (Op.DASHBOARD, "GET", "/dashboard", {}),
    (Op.WHATIF, "GET", "/whatif", {}),
    (Op.WHATIF, "POST", "/whatif", {"text": POLICY}),
    (Op.MY_FILE, "GET", "/me", {}),
    (Op.FIND_FILE, "GET", "/residents", {"resident_id": rid("A"), "purpose": "matrix"}),
    (Op.READ_EXPLANATION, "GET", "/residents/{resident_id}", {"purpose": "matrix"}),
    (Op.OPEN_OBJECTION, "POST", "/objections", {"record": "tax:x1", "reason": "matrix", "resident_id": rid("A")}),
    (Op.LIST_REVIEW, "GET", "/review", {}),
    (Op.JUDGE_REVIEW, "POST", "/review/{number}/decline", {"reason": "matrix"}),
]
"""The web pages, each with the operation it performs and a valid request's query (GET) or form (POST):
about resident A, whose token is the resident's."""

ELSEWHERE = {Op.READ_ACCESSES: "the file pages, beside the explanation", Op.FAIRNESS: "`credo fairness`"}
"""Operations with no endpoint or page of their own: where they are reached (the library checks them)."""


# -- the precedence rule ------------------------------------------------------------------------------
EVERY_CHECK = Rule("do the test thing", ("resident", "agency", "operator"), purpose=("resident", "operator"),
                   owners={"resident": Owner.FILE, "agency": Owner.AGENCY})
"""A rule under which one caller can fail every check at once: a resident bound to their file and asked why."""


def principal(role: str) -> Principal:
    """A caller of ``role``: resident A, the tax agency, the airline."""
    subject: dict[str, Any] = {"agency": {"agency": "tax"}, "provider": {"provider": "air"},
                               "resident": {"resident": ids.resident_key(rid("A"))}}.get(role, {})
    return Principal(f"{role}:matrix", role, **subject)


PRECEDENCE: list[tuple[str, str | None, str | None, str | None, type[Exception] | None]] = [
    # (role, resident_id named, agency named, purpose given, what is raised)
    ("provider", rid("B"), "court", None, RoleRefused),  # every check fails: the role decides
    ("auditor", rid("A"), None, "why", RoleRefused),
    ("resident", rid("B"), None, None, NotYours),  # someone else's file and no purpose: ownership decides
    ("resident", NOBODY, None, None, NotYours),  # a valid ID of nobody: the same, no lookup
    ("resident", rid("A").lower(), None, " ", PurposeRequired),  # their own (the x is the ID's), no purpose
    ("resident", None, None, "why", NotYours),  # a resident's call names a file
    ("resident", "1234", None, None, IdError),  # no ID at all names nobody: 422, not an ownership verdict
    ("resident", rid("A"), None, "why", None),
    ("agency", None, "court", None, NotYours),
    ("agency", rid("B"), "tax", None, None),  # an agency is bound to its agency, not to a file; no purpose asked
    ("operator", rid("B"), "court", "", PurposeRequired),
    ("operator", rid("B"), "court", "audit", None),
]


@pytest.mark.parametrize(("role", "resident_id", "agency", "purpose", "raised"), PRECEDENCE)
def test_the_first_failing_check_decides(role: str, resident_id: str | None, agency: str | None,
                                         purpose: str | None, raised: type[Exception] | None) -> None:
    who = principal(role)
    if raised is None:
        EVERY_CHECK.require(who, resident_id=resident_id, agency=agency, purpose=purpose)
        return
    with pytest.raises(raised) as caught:
        EVERY_CHECK.require(who, resident_id=resident_id, agency=agency, purpose=purpose)
    assert type(caught.value) is raised


def test_refusals_carry_their_status_and_code() -> None:
    statuses = {}
    for role, resident_id, purpose in [("provider", None, None), ("resident", rid("B"), None),
                                       ("resident", rid("A"), None)]:
        try:
            EVERY_CHECK.require(principal(role), resident_id=resident_id, purpose=purpose)
        except CredoError as exc:
            statuses[type(exc)] = (exc.status, exc.code, exc.details)
    assert statuses == {RoleRefused: (403, "forbidden", {"role": "provider", "allowed": list(EVERY_CHECK.roles)}),
                        NotYours: (403, "forbidden", None),
                        PurposeRequired: (422, "purpose_required", {"field": "purpose"})}


def test_refusals_survive_the_hubs_socket() -> None:
    """The library's refusals reach a worker process pickled, and must arrive whole."""
    import pickle

    for refusal in (RoleRefused.of("provider", EVERY_CHECK, "do it"), NotYours("not yours"),
                    PurposeRequired("why?", details={"field": "purpose"})):
        back = pickle.loads(pickle.dumps(refusal))
        assert (type(back), back.message, back.status, back.code, back.details) == (
            type(refusal), refusal.message, refusal.status, refusal.code, refusal.details)


def test_the_library_asks_no_purpose() -> None:
    """Left unasked (the library: the CLI's operator gives none), purposes are not checked; the rest is."""
    EVERY_CHECK.require(principal("operator"), resident_id=rid("B"))
    EVERY_CHECK.require(principal("resident"), resident_id=rid("A"))
    with pytest.raises(NotYours):
        EVERY_CHECK.require(principal("resident"), resident_id=rid("B"))
    with pytest.raises(RoleRefused):
        EVERY_CHECK.require(principal("auditor"))


def test_a_call_reaches_its_callers_own_subject() -> None:
    resident, agency, operator = principal("resident"), principal("agency"), principal("operator")
    assert EVERY_CHECK.own_file(resident, None) == rid("A")
    assert EVERY_CHECK.own_file(resident, rid("A").lower()) == rid("A").lower()
    assert EVERY_CHECK.own_file(operator, None) is None and EVERY_CHECK.own_file(agency, rid("B")) == rid("B")
    assert EVERY_CHECK.own_agency(agency, None) == "tax" == EVERY_CHECK.own_agency(agency, "tax")
    assert EVERY_CHECK.own_agency(operator, "court") == "court" and EVERY_CHECK.own_agency(operator, None) is None
    with pytest.raises(NotYours):
        EVERY_CHECK.own_file(resident, rid("B"))
    with pytest.raises(NotYours):
        EVERY_CHECK.own_agency(agency, "court")
    with pytest.raises(RoleRefused):
        EVERY_CHECK.own_agency(principal("provider"), None)


def test_a_provider_is_shown_less_of_each_reason() -> None:
    reasons = [{"code": "list:tax_defaulter", "effect": "deny", "ends": {"resolved_by": [], "expires_at": None},
                "records": [{"agency": "tax", "record_id": "x1"}]}]
    for op in (Op.CHECK, Op.CHECK_BATCH):
        rule = RULES[op]
        assert rule.reasons_for(principal("provider"), reasons) == [
            {k: v for k, v in reasons[0].items() if k != "records"}]
        assert rule.reasons_for(principal("operator"), reasons) is reasons
        assert rule.reasons_for(principal("provider"), []) == []


@pytest.mark.parametrize("bad", [
    lambda: Rule("x", ("operator", "mayor")),  # no such role
    lambda: Rule("x", ("operator",), purpose=("provider",)),  # a purpose from a role not admitted
    lambda: Rule("x", ("agency",), owners={"agency": Owner.FILE}),  # only a resident has a file
    lambda: Rule("x", ("resident",), owners={"resident": Owner.AGENCY}),
])
def test_a_rule_that_cannot_mean_anything_is_refused(bad: Callable[[], Rule]) -> None:
    with pytest.raises(AssertionError):
        bad()


def test_every_operation_has_a_rule_and_the_table_keeps_the_spec() -> None:
    """Spec §1 and §6: providers and auditors never read a file; a file read and a decision need a
    purpose from providers and operators; everyone else reaches only their own."""
    assert set(RULES) == set(Op)
    reads = (Op.READ_STANDING, Op.READ_EXPLANATION, Op.READ_RECORDS, Op.READ_NOTICES, Op.READ_ACCESSES)
    for op in (*reads, Op.CHECK, Op.CHECK_BATCH):
        rule = RULES[op]
        assert {"provider", "operator"} & set(rule.roles) <= set(rule.purpose), op
        assert set(rule.roles) - {"provider", "operator"} <= set(rule.owners), op
    assert all(not {"provider", "auditor"} & set(RULES[op].roles) for op in reads)


# -- the library, called directly: its second line reads the same table --------------------------------
LIBRARY: dict[Op, Callable[[Credo, Principal], object]] = {
    Op.READ_STANDING: lambda c, who: c.standing(parse_resident_id(rid("A")), who=who),
    Op.READ_EXPLANATION: lambda c, who: c.explain(parse_resident_id(rid("A")), who=who),
    Op.READ_RECORDS: lambda c, who: c.records(parse_resident_id(rid("A")), who),
    Op.READ_NOTICES: lambda c, who: c.notices(parse_resident_id(rid("A")), who),
    Op.READ_ACCESSES: lambda c, who: c.accesses(parse_resident_id(rid("A")), who),
    Op.OPEN_OBJECTION: lambda c, who: c.open_objection(parse_resident_id(rid("A")), "tax:x1", "matrix", who),
    Op.RESOLVE_OBJECTION: lambda c, who: c.resolve_objection(1, uphold=False, answer="matrix", who=who),
    Op.REVOKE: lambda c, who: c.revoke("tax", "x4", "matrix", who),
    Op.READ_AUDIT: lambda c, who: c.audit_page(who, resident_id=rid("A")),
    Op.WHATIF: lambda c, who: c.whatif(POLICY, who=who),
    Op.FAIRNESS: lambda c, who: c.fairness(who=who),
    Op.DASHBOARD: lambda c, who: c.dashboard(who),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Credo]:
    city = build_city(tmp_path_factory.mktemp("library"))
    with fixed_clock(NOW), closing(Credo.open(city.db)) as credo:
        credo.open_objection(parse_resident_id(rid("H")), "tax:x6", "the objection the resolve cells answer")
        yield credo


LIBRARY_CELLS = [(op, role) for op in LIBRARY for role in ROLES]


@pytest.mark.parametrize(("op", "role"), LIBRARY_CELLS, ids=[f"{op}-{role}" for op, role in LIBRARY_CELLS])
def test_the_library_refuses_as_the_table_says(library: Credo, op: Op, role: str) -> None:
    call = LIBRARY[op]
    if not RULES[op].allows(role):
        with pytest.raises(RoleRefused):
            call(library, principal(role))
        return
    try:
        call(library, principal(role))
    except Forbidden as exc:
        pytest.fail(f"{role} was refused {op}: {exc}")
    except CredoError:
        pass  # admitted, then refused by the state (already revoked, an objection already open)


def test_the_library_decides_ownership_before_any_lookup(library: Credo) -> None:
    resident = principal("resident")
    for someone in (rid("B"), NOBODY):  # a neighbour, and a valid ID of nobody: the same answer
        with pytest.raises(NotYours):
            library.standing(parse_resident_id(someone), who=resident)
    with pytest.raises(NotYours):
        library.revoke("blood-centre", "d1", "not ours", principal("agency"))
    number = library.open_objection(parse_resident_id(rid("B")), "blood-centre:d1", "not mine")
    with pytest.raises(NotFound):  # another agency's objection: answered as a missing one
        library.resolve_objection(number, uphold=True, answer="sure", who=principal("agency"))
    assert [r["agency"] for r in library.records(parse_resident_id(rid("B")), principal("agency"))] == []


# -- the live server: the schema and the answers -------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    city = build_city(tmp_path_factory.mktemp("permissions"))
    matrix._seed_objections(city.db)
    with running(city) as server:
        yield server


def test_every_guarded_endpoint_names_its_operation(live: Live) -> None:
    with live.client() as c:
        schema = c.get("/openapi.json").json()
    documented = {(m.upper(), p): op for p, ops in schema["paths"].items() for m, op in ops.items()}
    assert set(API) == {name for name, e in matrix.ENDPOINTS.items() if e.allowed}
    for name, op in API.items():
        endpoint = matrix.ENDPOINTS[name]
        entry = documented[(endpoint.method, endpoint.path)]
        rule = RULES[op]
        assert entry["x-operation"] == op.value, name
        assert entry["x-roles"] == list(rule.roles), name
        assert entry["x-purpose-required-for"] == list(rule.purpose), name
    assert {e.get("x-operation") for e in documented.values()} - {None} == {op.value for op in API.values()}


API_CELLS = [(name, role) for name in API for role in ROLES]


@pytest.mark.parametrize(("name", "role"), API_CELLS, ids=[f"{n}-{r}" for n, r in API_CELLS])
def test_the_api_answers_as_the_table_says(live: Live, name: str, role: str) -> None:
    op = API[name]
    method, path, kwargs = matrix.ENDPOINTS[name].build(role)
    with live.client(role) as c:
        r = c.request(method, path, **kwargs)
    if RULES[op].allows(role):
        assert r.status_code in (200, 201), f"{role} {method} {path}: {r.status_code} {r.text[:300]}"
    else:
        assert r.status_code == 403, f"{role} {method} {path}: {r.status_code} {r.text[:300]}"
        assert r.json()["error"]["details"] == {"role": role, "allowed": list(RULES[op].roles)}


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    assert found, f"no {name} field"
    return found.group(1)


@pytest.fixture(scope="module")
def browsers(live: Live) -> Iterator[dict[str, tuple[httpx.Client, str]]]:
    """A signed-in web session per role (through the sign-in form), with its form token."""
    out: dict[str, tuple[httpx.Client, str]] = {}
    try:
        for role in ROLES:
            c = httpx.Client(base_url=live.url, timeout=30)
            out[role] = (c, "")
            signin = _field(c.get("/signin").text, "signin")
            r = c.post("/signin", data={"token": live.city.tokens[role], "signin": signin, "next": "/"})
            assert r.status_code == 303, r.text
            out[role] = (c, _field(c.get("/dashboard").text, "csrf"))  # a page or its refusal: both carry it
        yield out
    finally:
        for c, _ in out.values():
            c.close()


PAGE_CELLS = [(i, role) for i in range(len(PAGES)) for role in ROLES]


@pytest.mark.parametrize(("page", "role"), PAGE_CELLS,
                         ids=[f"{PAGES[i][1]} {PAGES[i][2]}-{r}" for i, r in PAGE_CELLS])
def test_the_pages_answer_as_the_table_says(browsers: dict[str, tuple[httpx.Client, str]], page: int,
                                            role: str) -> None:
    op, method, path, given = PAGES[page]
    c, csrf = browsers[role]
    url = path.format(resident_id=rid("A"), number=9)
    r = (c.post(url, data={**given, "csrf": csrf}) if method == "POST" else c.get(url, params=given))
    if RULES[op].allows(role):
        assert r.status_code not in (401, 403) and r.status_code < 500, f"{role} {path}: {r.status_code}"
    else:
        assert r.status_code == 403 and "cannot open this page" in r.text, f"{role} {path}: {r.status_code}"


# -- the table in the docs ------------------------------------------------------------------------------
def table_markdown() -> str:
    """The table as docs/api.md shows it: one row per operation, a cell per role, where it is offered."""
    lines = [f"| operation | {' | '.join(ROLES)} | offered by |", f"|---|{'---|' * len(ROLES)}---|"]
    for op in Op:
        rule = RULES[op]
        where = [f"`{e.method} {e.path}`" for name, e in matrix.ENDPOINTS.items() if API.get(name) is op]
        where += [f"page `{m} {p}`" for o, m, p, _ in PAGES if o is op]
        cells = [_cell(rule, role) for role in ROLES]
        assert bool(where) != (op in ELSEWHERE), f"{op}: say where it is offered"
        lines.append(f"| {rule.does} (`{op.value}`) | {' | '.join(cells)} | {', '.join(where) or ELSEWHERE[op]} |")
    return "\n".join(lines)


def _cell(rule: Rule, role: str) -> str:
    if not rule.allows(role):
        return ""
    parts = [rule.owners[role].value if role in rule.owners else "✓"]
    if role in rule.purpose:
        parts.append("purpose")
    if role in rule.reasons:
        parts.append(f"reasons: {', '.join(rule.reasons[role])}")
    return " · ".join(parts)


def _documented(text: str) -> str:
    assert BEGIN in text and END in text, f"docs/api.md has no block {BEGIN}"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_the_docs_show_the_table() -> None:
    assert _documented(API_DOC.read_text(encoding="utf-8")) == table_markdown(), \
        "docs/api.md's permission table is out of date: run python -m tests.test_permissions"


if __name__ == "__main__":
    text = API_DOC.read_text(encoding="utf-8")
    before, rest = text.split(BEGIN, 1)
    API_DOC.write_text(f"{before}{BEGIN}\n{table_markdown()}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")
