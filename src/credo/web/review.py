"""The identity review page (spec §10): held rows with their ranked candidates and the comparisons
behind each, and the forms that confirm one candidate or decline, with a reason.

The page reads and judges through the same service calls as ``/v1/review`` (``review_items``,
``confirm_review``, ``decline_review``), audited the same way; the operator sees every item, an
agency its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from credo.ids import parse_resident_id
from credo.permissions import Op
from credo.principals import Principal
from credo.serving.runtime import Runtime
from credo.web.dashboard import section, status_badge
from credo.web.html import Html, el, table, when
from credo.web.layout import csrf_field, page
from credo.web.routes import Denied, _check_form, form_of, guarded, html, redirect

router = APIRouter(include_in_schema=False)
Row = dict[str, Any]


def _candidates(item: Row) -> Html:
    rows = [[el("span", f"{c['rank']}", data_rank=c["rank"]),
             el("code", c["resident_id"], data_candidate=c["resident_id"]),
             f"{c['probability']:.4f}",
             *[el("span", f"{v['level']} ({v['given']} / {v['registry']})", data_level=name)
               for name, v in c["comparisons"].items()]] for c in item["candidates"]]
    return table(f"Candidates of item {item['id']}", ["#", "Resident", "Probability", "Name", "Birth date",
                                                      "District"], rows, numeric=[2], id_=f"candidates-{item['id']}",
                 empty="No resident of the registry is in this row's blocks.")


def _forms(item: Row, csrf: str) -> Html:
    n = item["id"]
    choices = [el("option", c["resident_id"], value=c["resident_id"]) for c in item["candidates"]]
    confirm = el("form", csrf_field(csrf),
                 el("label", "Candidate", for_=f"resident-{n}"),
                 el("select", choices, id=f"resident-{n}", name="resident_id"),
                 el("label", "Why", for_=f"confirm-reason-{n}"),
                 el("input", type_="text", id=f"confirm-reason-{n}", name="reason", required=True),
                 el("button", "Confirm", type_="submit"),
                 method="post", action=f"/review/{n}/confirm", class_="inline", id=f"confirm-{n}") if choices else None
    decline = el("form", csrf_field(csrf),
                 el("label", "Why none is the person", for_=f"decline-reason-{n}"),
                 el("input", type_="text", id=f"decline-reason-{n}", name="reason", required=True),
                 el("button", "Decline", type_="submit"),
                 method="post", action=f"/review/{n}/decline", class_="inline", id=f"decline-{n}")
    return el("div", confirm, decline, class_="review-forms")


def _item(item: Row, csrf: str) -> Html:
    s, j = item["subject"], item["judgement"]
    judged = (el("p", status_badge(j["step"]), f" by {j['by']} ({j['role']}), ", when(j["at"]), ": ",
                 el("q", j["reason"]), class_="judgement") if j else None)
    return section(f"item-{item['id']}", f"Item {item['id']}: {item['record']}",
                   el("p", status_badge(item["status"]), " ", el("strong", s["name"]), f", born {s['birth_date']}, "
                      f"district {s['district']} · line {item['line']} of ", el("code", item["source"]),
                      " · waiting until ", when(item["deadline"]), class_="lead"),
                   _candidates(item), judged or _forms(item, csrf))


def render(items: list[Row], who: Principal, csrf: str) -> Html:
    waiting = sum(i["status"] in ("pending", "overdue") for i in items)
    body = [el("div", el("h1", "Identity review"),
               el("p", el("span", str(waiting), data_k="review-waiting"), " waiting. A row that named its person "
                  "only by a description counts nowhere until someone confirms who it is about.",
                  class_="subtitle"), class_="page-head"),
            *[_item(i, csrf) for i in items]]
    if not items:
        body.append(el("p", "No item is waiting for review.", class_="empty", id="review-empty"))
    return page("Identity review", body, who=who, csrf=csrf, active="/review",
                footer=["Every judgement is kept with who made it, when and why."])


@router.get("/review")
async def review_page(request: Request) -> Response:
    def show(rt: Runtime, who: Principal, token: str) -> Response:
        return html(render(rt.hub.review_items(who, purpose="review page"), who, token))

    return await guarded(request, Op.LIST_REVIEW, show)


def _judged(request: Request, data: dict[str, Any], number: int, reason: str) -> None:
    """The form is this session's; the reason is given."""
    _check_form(request, data.get("csrf"))
    if not reason.strip():
        raise Denied(422, "Say why: the reason is kept with the judgement.")


@router.post("/review/{number}/confirm")
async def confirm(request: Request, number: int) -> Response:
    data = await form_of(request)
    reason = str(data.get("reason") or "")

    def run(rt: Runtime, who: Principal, token: str) -> Response:
        _judged(request, data, number, reason)
        rt.hub.confirm_review(number, parse_resident_id(str(data.get("resident_id") or "")), reason, who)
        rt.sync()
        return redirect(f"/review#item-{number}")

    return await guarded(request, Op.JUDGE_REVIEW, run)


@router.post("/review/{number}/decline")
async def decline(request: Request, number: int) -> Response:
    data = await form_of(request)
    reason = str(data.get("reason") or "")

    def run(rt: Runtime, who: Principal, token: str) -> Response:
        _judged(request, data, number, reason)
        rt.hub.decline_review(number, reason, who)
        rt.sync()
        return redirect(f"/review#item-{number}")

    return await guarded(request, Op.JUDGE_REVIEW, run)
