"""The operator's dashboard, rendered from ``Credo.dashboard`` (see ``credo.dashboard``).

Each number a test or a person may check sits in an element with a ``data-k`` name, and
every chart has its numbers in a table beside it. An auditor sees the same aggregates
without resident IDs and without the resident lookup: only a role that may look a file up
(``Op.FIND_FILE`` in ``credo.permissions``) is shown either.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from credo import permissions
from credo.permissions import Op
from credo.principals import Principal
from credo.web import charts
from credo.web.charts import Bin, Day, Segment
from credo.web.html import Html, due, el, number, plural, table, when
from credo.web.layout import page

Row = dict[str, Any]


def kpi(label: str, value: int | str | None, key: str, note: Html | str | None = None) -> Html:
    shown = number(value) if isinstance(value, int) or value is None else value
    return el("div", el("dt", label), el("dd", el("span", shown, data_k=key, class_="kpi-value"),
                                         el("span", note, class_="kpi-note") if note else None), class_="kpi")


def section(key: str, title: str, *body: Html | None, lead: str | None = None) -> Html:
    return el("section", el("h2", title, id=f"{key}-h"), el("p", lead, class_="lead") if lead else None,
              *body, aria_labelledby=f"{key}-h", class_="card", id=key)


def numbers(*content: Html) -> Html:
    return el("details", el("summary", "Show the numbers"), *content, class_="numbers")


def resident_link(resident_id: str, purpose: str) -> Html:
    href = f"/residents/{resident_id}?{urlencode({'purpose': purpose})}"
    return el("a", resident_id, href=href, class_="mono")


def status_badge(status: str) -> Html:
    return el("span", status, class_=f"badge {status}", data_status=status)


def render(d: Row, who: Principal, csrf: str) -> Html:
    finds = permissions.allows(Op.FIND_FILE, who.role)
    body = [el("div", el("h1", "City dashboard"),
               el("p", "Policy ", el("strong", d["policy"]["label"], data_k="policy-label"), " · as of ",
                  when(d["as_of"]), class_="subtitle"), class_="page-head"),
            _kpis(d), lookup() if finds else None, _scores(d), _grades(d), _lists(d), _decisions(d),
            _objections(d, finds), _redress(d), _rejects(d), _policy(d)]
    return page("Dashboard", body, who=who, csrf=csrf, active="/dashboard",
                footer=["Every read of this page is logged with the purpose ", el("q", "dashboard"), "."])


def _kpis(d: Row) -> Html:
    s, o, dec = d["scores"], d["objections"], d["decisions"]
    decided = sum(a["decisions"] for a in dec["actions"])
    denied = sum(a["denied"] for a in dec["actions"])
    return el("dl", kpi("Residents scored", s["residents"], "residents"),
              kpi("Median score", s["median"], "median", f"mean {number(s['mean'])}"),
              kpi("Open objections", o["open"], "objections-open",
                  el("span", el("span", number(o["overdue"]), data_k="objections-overdue"), " overdue")),
              kpi(f"Decisions, {dec['days']} days", decided, "decisions",
                  el("span", el("span", number(denied), data_k="denied"), " denied")),
              kpi("Rejected rows", d["rejects"]["total"], "rejects"),
              kpi("Identity review", d["review"]["pending"], "review-pending",
                  el("span", el("span", number(d["review"]["overdue"]), data_k="review-overdue"),
                     f" past {d['review']['deadline']}")),
              class_="kpis")


def lookup() -> Html:
    """Open one resident's file: the purpose is required and goes into the audit log."""
    return el("form", el("h2", "Open a resident's file", id="lookup-h"),
              el("div", el("label", "Resident ID", for_="lookup-id"),
                 el("input", id="lookup-id", name="resident_id", required=True, inputmode="text",
                    autocomplete="off", pattern="[0-9]{17}[0-9Xx]|[0-9]{15}", maxlength="18", spellcheck="false",
                    aria_describedby="lookup-hint"), class_="field"),
              el("div", el("label", "Purpose", for_="lookup-purpose"),
                 el("input", id="lookup-purpose", name="purpose", required=True, maxlength="200",
                    placeholder="e.g. objection 12 review"), class_="field"),
              el("button", "Open file", type_="submit"),
              el("p", "18 characters. Your purpose is logged with the access, and the resident sees it.",
                 id="lookup-hint", class_="hint"),
              method="get", action="/residents", class_="card lookup", aria_labelledby="lookup-h")


def _scores(d: Row) -> Html:
    s = d["scores"]
    bands = [(b["grade"], b["min"]) for b in s["bands"]]
    bins = [Bin(b["lo"], b["hi"], b["residents"]) for b in s["bins"]]
    chart = charts.histogram("hist", bins, bands, title="Score distribution",
                             desc=f"Residents per {s['width']}-point score bin, coloured by grade; "
                                  f"{number(s['residents'])} residents from {s['lo']} to {s['hi']}.")
    rows = [(f"{b.lo}–{b.hi}" if b.lo != b.hi else str(b.lo), number(b.count)) for b in bins if b.count]
    return section("scores", "Score distribution", chart,
                   charts.legend([(charts.grade_class(i, len(bands)), f"{g} (from {m})")
                                  for i, (g, m) in enumerate(bands)]),
                   numbers(table("Residents per score bin", ["Score", "Residents"], rows, numeric=[1],
                                 id_="score-bins")),
                   lead=f"Lowest {number(s['lo'])}, highest {number(s['hi'])}; "
                        f"bins of {s['width']} point{'s' if s['width'] != 1 else ''}.")


def _grades(d: Row) -> Html:
    g = d["grades"]
    order = g["order"]
    cls = {grade: charts.grade_class(i, len(order)) for i, grade in enumerate(order)}
    overall = charts.bars("grades-overall", [(grade, [Segment(g["overall"][grade], cls[grade], grade)])
                                             for grade in order], title="Residents by grade")
    districts = charts.bars("grades-district", [
        (r["district"] or "unknown", [Segment(r["grades"][grade], cls[grade], grade) for grade in order])
        for r in g["by_district"]], title="Grades by district, as shares of each district", percent=True)
    rows = [[r["district"] or "unknown", *[number(r["grades"][grade]) for grade in order],
             number(r["residents"])] for r in g["by_district"]]
    return section("grades", "Grades",
                   el("div", el("div", el("h3", "All residents"), overall),
                      el("div", el("h3", "By district"), districts,
                         charts.legend([(cls[grade], grade) for grade in order])), class_="split"),
                   numbers(table("Residents by district and grade", ["District", *order, "All"], rows,
                                 numeric=range(1, len(order) + 2), id_="grades-by-district",
                                 stack=False)))


def _lists(d: Row) -> Html:
    rows = d["lists"]
    chart = charts.bars("list-bars", [
        (r["title"], [Segment(r["in_force"], f"list-{r['kind']}", "in force"),
                      Segment(r["pending"], "pending", "pending")]) for r in rows],
        title="Residents per list: in force and pending")
    cells = [[el("span", r["title"], data_list=r["list"]), r["kind"], r["grace"] or "none",
              el("span", number(r["in_force"]), data_k=f"list-{r['list']}-in-force"),
              el("span", number(r["pending"]), data_k=f"list-{r['list']}-pending")] for r in rows]
    return section("lists", "Lists", chart,
                   charts.legend([("list-black", "in force, black list"), ("list-red", "in force, red list"),
                                  ("pending", "pending: notified, grace period running")]),
                   table("Residents per list", ["List", "Kind", "Grace", "In force", "Pending"], cells,
                         numeric=[3, 4], id_="list-sizes", empty="The policy has no lists."),
                   lead="Pending: the resident has been notified and the list's measures start when "
                        "the grace period ends, unless the record is resolved first.")


def _decisions(d: Row) -> Html:
    dec = d["decisions"]
    blocks = []
    for a in dec["actions"]:
        days = [Day(x["day"], x["allow"], x["deny"]) for x in a["days"]]
        blocks.append(el("div", el("h3", a["title"], " ", el("code", a["action"])),
                         el("p", el("span", number(a["decisions"]), data_k=f"decisions-{a['action']}"),
                            " decision" if a["decisions"] == 1 else " decisions", ", ",
                            el("span", number(a["denied"]), data_k=f"denied-{a['action']}"), " denied",
                            class_="lead"),
                         charts.daily(f"daily-{a['action'].replace('.', '-')}", days,
                                      title=f"{a['title']}: per day",
                                      desc=f"Decisions per day from {dec['from']} to {dec['to']}; "
                                           "denied ones stacked on top."), class_="action"))
    rows = [[el("time", x["day"], datetime=x["day"]), el("code", a["action"]), number(x["allow"] + x["deny"]),
             number(x["deny"])]
            for a in dec["actions"] for x in a["days"] if x["allow"] or x["deny"]]
    return section("decisions", "Decisions and denials per day",
                   *(blocks or [el("p", "No decisions in this period.", class_="empty")]),
                   charts.legend([("allow", "allowed"), ("deny", "denied")]) if blocks else None,
                   numbers(table("Decisions by day and action", ["Day", "Action", "Decisions", "Denied"],
                                 rows, numeric=[2, 3], id_="decisions-by-day", stack=False))
                   if rows else None,
                   lead=f"From the audit log: {dec['from']} to {dec['to']}, city time.")


def _redress(d: Row) -> Html:
    r = d["redress"]
    rows = [[x["told"], number(x["open"]), when(x["oldest"]), number(x["oldest_days"]), number(x["old"])]
            for x in r["by_provider"]]
    by = table("Open redress by provider", ["Told", "Open", "Oldest", "Days", f"Older than {r['old_days']} days"],
               rows, numeric=[1, 3, 4], id_="redress-by-provider", empty="No decision needs redress.")
    return section("redress", "Redress",
                   el("p", el("strong", number(r["open"]), data_k="redress-open"),
                      " decisions rested on a record since withdrawn, ",
                      el("strong", number(r["old"]), data_k="redress-old", class_="overdue" if r["old"] else None),
                      f" of them found more than {r['old_days']} days ago.", class_="lead"), by)


def _objections(d: Row, finds: bool) -> Html:
    o = d["objections"]
    by_agency = table("Unresolved objections by agency", ["Agency", "Open", "Overdue"],
                      [[r["agency"], number(r["open"]), number(r["overdue"])] for r in o["by_agency"]],
                      numeric=[1, 2], id_="objections-by-agency", empty="No unresolved objections.")
    rows = []
    for x in o["unresolved"]:
        resident = resident_link(x["resident_id"], f"objection {x['id']}") if finds else "–"
        rows.append([el("span", f"#{x['id']}", data_objection=x["id"]), status_badge(x["status"]),
                     el("code", x["record"]), resident, when(x["opened_at"]), due(x),
                     x["reason"]])
    listing = table("Unresolved objections, overdue first", ["#", "Status", "Record", "Resident", "Opened",
                                                            "Deadline", "Reason"], rows, id_="objection-list",
                    empty="")
    return section("objections", "Objections",
                   el("p", el("strong", number(o["open"])), " unresolved, ",
                      el("strong", number(o["overdue"]), class_="overdue" if o["overdue"] else None),
                      f" past the {o['deadline']} deadline, {number(o['resolved'])} resolved.",
                      class_="lead"),
                   by_agency, listing if rows else None)


def _rejects(d: Row) -> Html:
    r = d["rejects"]
    chart = charts.bars("reject-bars", [(f"{x['agency']} · {x['reason']}",
                                         [Segment(x["n"], "reject", "rows")]) for x in r["by_reason"][:12]],
                        title="Rejected rows by agency and reason")
    cells = [[x["agency"], el("code", x["reason"]), number(x["n"])] for x in r["by_reason"]]
    return section("rejects", "Rejected rows", chart if r["by_reason"] else None,
                   table("Rejected rows by agency and reason", ["Agency", "Reason", "Rows"], cells,
                         numeric=[2], id_="rejects-by-reason", empty="No rejected rows."),
                   lead="Kept with their source and the row as received, for correction and re-sending "
                        "(credo rejects, GET /v1/rejects).")


def _policy(d: Row) -> Html:
    p = d["policy"]
    facts = [("Version", el("span", p["label"], data_k="policy-version")), ("Applied", when(p["applied_at"])),
             ("Applied by", p["applied_by"] or "–"), ("Time zone", p["timezone"]),
             ("Under objection",
              "records stop counting" if p["disputed"] == "suspend" else "records still count"),
             ("Contents", ", ".join([plural(p["record_types"], "record type"), plural(p["lists"], "list"),
                                     plural(p["actions"], "action"), plural(p["measures"], "measure")])),
             ("SHA-256", el("code", p["sha256"], class_="hash"))]
    warnings = el("div", el("p", "The policy check warns:"), el("ul", [el("li", w) for w in p["warnings"]]),
                  class_="alert warn") if p["warnings"] else None
    return section("policy", "Policy in force",
                   el("dl", [el("div", el("dt", k), el("dd", v)) for k, v in facts], class_="facts"),
                   warnings,
                   el("details", el("summary", "Show the policy document"), el("pre", el("code", p["text"]))))
