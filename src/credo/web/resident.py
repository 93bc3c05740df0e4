"""A resident's file as a page: standing, every record and how it counts and ends, lists with
their grace dates, objections (opened from here), who read the file and why, and notices.

The same page serves the resident (their own file) and an operator (any file, for a stated
purpose that is logged and shown on the page). Numbers a test compares with the API sit in
elements with ``data-k`` names; records and objections carry their reference and number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from credo.policy import Policy
from credo.principals import Principal
from credo.web.html import Child, Html, due, el, number, table, when
from credo.web.layout import csrf_field, page

Row = dict[str, Any]

EVENTS = {
    "read.standing": "read the standing",
    "read.explanation": "read the records and their explanation",
    "read.records": "read the records",
    "read.accesses": "listed the accesses to the file",
    "audit.read": "read the audit log about this file",
    "decision": "asked for a decision",
    "record.revoked": "revoked a record",
    "objection.opened": "opened an objection",
    "objection.resolved": "resolved an objection",
}


@dataclass
class View:
    """What the page shows, gathered by the route from the service."""

    file: Row
    objections: list[Row]
    accesses: Row
    notices: list[Row]
    policy: Policy
    redress: list[Row] = field(default_factory=list)
    purpose: str | None = None
    flash: str | None = None
    error: str | None = None
    contest: str | None = None
    reason: str = ""
    own: bool = True
    extra: list[Html] = field(default_factory=list)


def list_title(policy: Policy, name: str) -> str:
    found = policy.doc.lists.get(name)
    return found.title if found else name


def render(v: View, who: Principal, csrf: str) -> Html:
    f = v.file
    heading = "Your credit file" if v.own else "Resident file"
    banner = []
    if not v.own:
        banner.append(el("div", "You are reading this file for: ", el("strong", v.purpose or "–"),
                         ". The access is logged and the resident sees it.", class_="alert info",
                         role="note"))
    if v.flash:
        banner.append(el("div", v.flash, class_="alert ok", role="status"))
    body = [el("div", el("h1", heading),
               el("p", "Resident ID ", el("span", f["resident_id"], class_="mono", data_k="resident-id"),
                  " · policy ", el("span", f["policy"], data_k="policy"), " · as of ", when(f["as_of"]),
                  class_="subtitle"), class_="page-head"),
            *banner, _standing(v), _ways_out(v), _records(v), _objections(v, csrf), _redress(v), _accesses(v),
            _notices(v)]
    return page(heading, body, who=who, csrf=csrf, active="/me" if v.own else None)


def _standing(v: View) -> Html:
    f, p = v.file, v.policy
    lists = [el("li", el("span", list_title(p, name), class_=f"chip list-{_kind(p, name)}", data_list=name))
             for name in f["lists"]]
    pending = [el("li", el("span", list_title(p, x["list"]), class_="chip pending", data_list=x["list"]),
                  " from ", el("span", when(x["takes_effect"]), data_k=f"pending-{x['list']}"),
                  " unless the record is resolved before then") for x in f["pending"]]
    effects = consequences(p, f["lists"], f["grade"], {x["list"]: x["takes_effect"] for x in f["pending"]})
    changes = (["Your standing next changes by itself on ", when(f["changes_at"]), "."] if f["changes_at"]
               else ["Nothing on file changes your standing by itself."])
    return el("section", el("h2", "Standing", id="standing-h"),
              el("div", el("div", el("span", "Score", class_="label"),
                           el("span", number(f["score"]), class_="score", data_k="score"), class_="big"),
                 el("div", el("span", "Grade", class_="label"),
                    el("span", f["grade"], class_="grade", data_k="grade"), class_="big"),
                 el("div", el("h3", "Lists in force"),
                    el("ul", lists, class_="chips", id="lists-in-force") if lists
                    else el("p", "None.", class_="empty"),
                    el("h3", "Pending lists"),
                    el("ul", pending, id="lists-pending") if pending else el("p", "None.", class_="empty"),
                    el("h3", "What the policy's measures mean"),
                    el("ul", [el("li", e) for e in effects], class_="measures", id="consequences") if effects
                    else el("p", "No measure of the policy applies.", class_="empty")),
                 class_="standing"),
              el("p", *changes, class_="lead"),
              aria_labelledby="standing-h", class_="card", id="standing")


EFFECTS = {"deny": "denied", "green_channel": "green channel", "deposit_waiver": "no deposit",
           "discount": "discount", "fast_track": "fast track"}


def consequences(policy: Policy, lists: list[str], grade: str,
                 pending: dict[str, str] | None = None) -> list[Child]:
    """The policy's measures for the lists in force, the grade and (from their date) the pending
    lists, one line per cause and effect.

    This names the rules only; each decision is still made (and logged) by the API.
    """
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for m in policy.doc.measures:
        when_ = ""
        if m.list in lists:
            cause = f"the list “{list_title(policy, m.list)}”"
        elif m.list and m.list in (pending or {}):
            cause, when_ = f"the list “{list_title(policy, m.list)}”", (pending or {})[m.list][:10]
        elif m.grades and grade in m.grades:
            cause = f"grade {grade}"
        else:
            continue
        grouped.setdefault((when_, cause, m.effect), []).append(policy.doc.actions.get(m.action, m.action))
    return [[f"From {when_}: " if when_ else "", el("strong", EFFECTS.get(effect, effect).capitalize()),
             f" because of {cause}: ", ", ".join(actions), "."]
            for (when_, cause, effect), actions in grouped.items()]


def _kind(policy: Policy, name: str) -> str:
    found = policy.doc.lists.get(name)
    return found.kind if found else "black"


def _points(value: Any) -> Html:
    n = int(value)
    return el("span", f"{n:+d}" if n else "0", class_="pos" if n > 0 else "neg" if n < 0 else None)


def _ends(r: Row) -> list[Child]:
    out: list[Child] = []
    if r["ends"]["expires_at"]:
        out.append(el("span", "expires ", when(r["ends"]["expires_at"], time=False)))
    if r["ends"]["resolved_by"]:
        if out:
            out.append(Html("; "))
        out.append(el("span", "ends early with ", [el("code", t) for t in r["ends"]["resolved_by"]]))
    return out or ["never expires"]


def _ways_out(v: View) -> Html:
    rows = []
    for w in v.file["ways_out"]:
        lists = [list_title(v.policy, x["list"]) for x in w["lists"]]
        rows.append([el("code", w["record"]), w["type"], _points(w["points"]), ", ".join(lists) or "–",
                     when(w["expires_at"], time=False) if w["expires_at"] else "never",
                     [el("code", t) for t in w["resolved_by"]] or "–",
                     number(w["score_after_expiry"]) if w["score_after_expiry"] is not None else "–"])
    return el("section", el("h2", "How each penalty ends", id="ways-h"),
              el("p", "A penalty ends by itself when it expires, or earlier when the agency records one of "
                      "the resolving records (for example a debt settled). Contest a record you think is "
                      "wrong below.", class_="lead"),
              table("Ways out of each counting penalty", ["Record", "Type", "Points", "Lists", "Expires",
                                                          "Resolved by", "Score after expiry"], rows,
                    numeric=[2, 6], id_="ways-out", empty="No penalty counts against this file."),
              aria_labelledby="ways-h", class_="card", id="ways")


def _records(v: View) -> Html:
    open_refs = {o["record"] for o in v.objections if o["status"] in ("open", "overdue")}
    rows = []
    for r in v.file["records"]:
        ref = f"{r['agency']}:{r['record_id']}"
        lists = [el("div", list_title(v.policy, x["list"]), " from ", when(x["takes_effect"], time=False))
                 for x in r["lists"]]
        contest: Child = "–"
        if ref in open_refs:
            contest = el("span", "objection open", class_="badge open")
        elif r["status"] != "revoked":
            query = {"contest": ref} if v.own else {"purpose": v.purpose or "", "contest": ref}
            contest = el("a", "Contest", href=f"?{urlencode(query)}#contest",
                         aria_label=f"Contest record {ref}")
        mark = r.get("matched_by_review")
        named: Child = el("code", ref)
        if mark:  # spec §10: the resident sees which records a person matched to them, and who
            named = el("span", named, el("div", f"matched by review {mark['item']}, confirmed by "
                                                f"{mark['confirmed_by']} on ", when(mark["confirmed_at"], time=False),
                                         class_="hint", data_review=mark["item"]))
        rows.append([named, when(r["occurred_at"], time=False), r["type"], _points(r["points"]),
                     el("span", r["why"], class_="why " + ("counts" if r["counts"] else "inert"),
                        data_status=r["status"]), lists or "–", _ends(r), contest])
    return el("section", el("h2", "Records", id="records-h"),
              el("p", "Every record an agency submitted about you, the points it adds now, or why it adds "
                      "none.", class_="lead"),
              table("Records and how they count", ["Record", "Occurred", "Type", "Points", "Counts?", "Lists",
                                                   "How it ends", ""], rows, numeric=[3], id_="records",
                    empty="No records on file."),
              aria_labelledby="records-h", class_="card", id="records-card")


def _contest_form(v: View, csrf: str) -> Html:
    open_refs = {o["record"] for o in v.objections if o["status"] in ("open", "overdue")}
    choices = [f"{r['agency']}:{r['record_id']}" for r in v.file["records"]
               if r["status"] != "revoked" and f"{r['agency']}:{r['record_id']}" not in open_refs]
    if not choices:
        return el("p", "No record can be contested now (each is revoked or already under objection).",
                  class_="empty")
    options = [el("option", ref, value=ref, selected=ref == v.contest) for ref in choices]
    return el("form", el("h3", "Open an objection", id="contest"),
              csrf_field(csrf), el("input", type_="hidden", name="resident_id", value=v.file["resident_id"]),
              el("div", el("label", "Record", for_="contest-record"),
                 el("select", options, id="contest-record", name="record", required=True), class_="field"),
              el("div", el("label", "Why is it wrong?", for_="contest-reason"),
                 el("textarea", v.reason, id="contest-reason", name="reason", required=True, rows="3",
                    maxlength="2000", aria_describedby="contest-hint"), class_="field"),
              el("p", "The record's agency must answer. While the objection is open the record does not count"
                      if v.policy.doc.disputed == "suspend" else "The record's agency must answer",
                 f" (deadline: {v.policy.doc.objection_deadline}).", id="contest-hint", class_="hint"),
              el("button", "Open objection", type_="submit"),
              method="post", action="/objections", class_="contest", aria_describedby="contest-hint")


def _objections(v: View, csrf: str) -> Html:
    rows = []
    for o in v.objections:
        outcome: Child = "–"
        if o["resolved_at"]:
            outcome = [when(o["resolved_at"]), ": ", o["answer"] or ""]
        rows.append([el("span", f"#{o['id']}", id=f"objection-{o['id']}", data_objection=o["id"]),
                     el("code", o["record"]), el("span", o["status"], class_=f"badge {o['status']}",
                                                 data_status=o["status"]),
                     o["reason"], when(o["opened_at"]), due(o, time=False), outcome])
    return el("section", el("h2", "Objections", id="objections-h"),
              table("Objections and every step", ["#", "Record", "Status", "Reason", "Opened", "Answer due",
                                                   "Answer"], rows, id_="objections", empty="No objections."),
              el("div", v.error, class_="alert error", role="alert", id="contest-error") if v.error else None,
              _contest_form(v, csrf),
              aria_labelledby="objections-h", class_="card", id="objections-card")


def _accesses(v: View) -> Html:
    a = v.accesses
    rows = []
    for e in a["entries"]:
        what: list[Child] = [EVENTS.get(e["event"], e["event"])]
        if e["action"]:
            what += [": ", el("code", e["action"])]
        if e["decision"]:
            what += [" → ", el("span", e["decision"], class_=f"badge {e['decision']}")]
        rows.append([el("span", number(e["seq"]), data_seq=e["seq"]), when(e["logged_at"]),
                     el("span", e["principal"], class_="mono"), e["role"], what, e["purpose"] or "–"])
    shown = len(a["entries"])
    return el("section", el("h2", "Who read this file and why", id="accesses-h"),
              el("p", el("span", number(a["total"]), data_k="accesses-total"),
                 " entries about this file in the audit log",
                 f"; the latest {shown} below, newest first." if shown < a["total"] else ", newest first.",
                 class_="lead"),
              table("Accesses to this file", ["Entry", "When", "Who", "Role", "What", "Purpose"], rows,
                    numeric=[0], id_="accesses", empty="Nobody has read this file yet."),
              aria_labelledby="accesses-h", class_="card", id="accesses-card")


def notice_text(n: Row, policy: Policy) -> Child:
    d, kind = n["detail"], n["kind"]
    title = list_title(policy, str(d.get("list", "")))
    if kind == "record.added":
        return ["Record ", el("code", d.get("record")),
                f" ({d.get('type')}) of {str(d.get('occurred_at'))[:10]} was added to the file."]
    if kind == "list.pending":
        return [f"On the list “{title}” from {str(d.get('takes_effect'))[:10]} unless the record is "
                "resolved before then."]
    if kind == "list.in_force":
        return [f"On the list “{title}” since {str(d.get('takes_effect'))[:10]}."]
    if kind == "list.left":
        return [f"Left the list “{title}”."]
    if kind == "grade.changed":
        return [f"Grade changed from {d.get('from') or 'none'} to {d.get('to')}."]
    if kind == "objection.opened":
        return [f"Objection #{d.get('objection')} against ", el("code", d.get("record")), " was opened."]
    if kind == "redress":
        return [f"A decision on {d.get('action')} given to {d.get('told')} ({d.get('was')}) rested on a record "
                f"since withdrawn; it would now be {d.get('now')}."]
    if kind == "objection.resolved":
        return [f"Objection #{d.get('objection')} was "
                + ("upheld: the record is revoked." if d.get("upheld") else "rejected: the record stands.")]
    return [kind]


def _redress(v: View) -> Html:
    """Decisions a withdrawn record made worse (spec §8): who was told what, and why it no longer holds."""
    items = []
    for r in v.redress:
        records: list[Child] = []
        for i, w in enumerate(r["withdrawn"]):
            records += [", " if i else "", el("code", w["record"]), " (withdrawn on ",
                        when(w["withdrawn_at"], time=False), ": ", w["reason"], ")"]
        items.append(el("li", "On ", when(r["decided_at"]), ", ", el("strong", r["provider"] or r["principal"]),
                        f" was told {_verdict(r['said'])} for {r['action']} because of ", records,
                        f". Now it would be {_verdict(r['holds'])}.", data_decision=r["decision_id"]))
    return el("section", el("h2", "Redress", id="redress-h"),
              el("p", "Decisions given about you that rested on a record later withdrawn. Each provider "
                 "that was told is told again.", class_="hint"),
              el("ol", items, id="redress") if items else el("p", "None.", class_="empty"),
              aria_labelledby="redress-h", class_="card", id="redress-card")


def _verdict(d: Row) -> str:
    return str(d["decision"]) + (f" ({', '.join(d['benefits'])})" if d["benefits"] else "")


def _notices(v: View) -> Html:
    items = [el("li", when(n["at"]), " ", el("span", notice_text(n, v.policy), data_kind=n["kind"]))
             for n in v.notices]
    return el("section", el("h2", "Notices", id="notices-h"),
              el("ol", items, class_="notices", id="notices") if items
              else el("p", "No notices.", class_="empty"),
              aria_labelledby="notices-h", class_="card", id="notices-card")
