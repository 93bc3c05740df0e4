"""The what-if page: upload or paste a proposed policy, see what it changes in its text and,
computed on the real ledger by ``credo.governance.whatif``, in grades, lists and denials.
Nothing is applied; applying stays a separate, deliberate step (``credo policy apply``).
"""

from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import urlencode

from credo.principals import Principal
from credo.web import charts
from credo.web.charts import Segment
from credo.web.html import Child, Html, el, number, table
from credo.web.layout import csrf_field, page

Row = dict[str, Any]


def form(csrf: str, text: str) -> Html:
    return el("form", csrf_field(csrf),
              el("div", el("label", "Policy file (YAML)", for_="whatif-file"),
                 el("input", type_="file", id="whatif-file", name="policy", accept=".yaml,.yml,text/yaml"),
                 class_="field"),
              el("div", el("label", "…or edit the policy text", for_="whatif-text"),
                 el("textarea", text, id="whatif-text", name="text", rows="14", spellcheck="false",
                    class_="code", aria_describedby="whatif-hint"), class_="field"),
              el("p", "A file, when chosen, is used instead of the text. Nothing is applied.",
                 id="whatif-hint", class_="hint"),
              el("button", "Simulate", type_="submit"),
              method="post", action="/whatif", enctype="multipart/form-data", class_="card whatif-form")


def diff(before: str, after: str, label: str) -> Html:
    """The proposed policy's text against the one in force, line by line."""
    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), f"in force ({label})",
                                      "proposed", n=2, lineterm=""))
    if not lines:
        return el("p", "The texts are the same.", class_="empty")
    out: list[Child] = []
    for line in lines:
        cls = ("head" if line.startswith(("---", "+++")) else "add" if line.startswith("+")
               else "del" if line.startswith("-") else "hunk" if line.startswith("@@") else None)
        out.append(el("span", line, class_=cls))
        out.append("\n")
    return el("pre", el("code", out), class_="diff", id="policy-diff", tabindex="0")


def _link(resident_id: str) -> Html:
    return el("a", resident_id, href=f"/residents/{resident_id}?{urlencode({'purpose': 'what-if review'})}",
              class_="mono")


def benefits(given: dict[str, Row]) -> str:
    return ", ".join(f"{e} {number(b['before'])} → {number(b['after'])}" for e, b in given.items()) or "–"


def report(r: Row, before_text: str, after_text: str) -> list[Html]:
    grades_before, grades_after = r["grades"]["before"], r["grades"]["after"]
    order = list(dict.fromkeys([*grades_before, *grades_after]))
    cls = {g: charts.grade_class(i, len(order)) for i, g in enumerate(order)}
    grade_rows = [[g, number(grades_before.get(g, 0)), number(grades_after.get(g, 0)),
                   f"{grades_after.get(g, 0) - grades_before.get(g, 0):+,d}"] for g in order]
    bars = charts.bars("whatif-grades", [
        ("in force", [Segment(grades_before.get(g, 0), cls[g], g) for g in order]),
        ("proposed", [Segment(grades_after.get(g, 0), cls[g], g) for g in order])],
        title="Residents by grade, in force and proposed", percent=True)
    after_cols = list(grades_after)
    matrix = [[g, *[number(r["matrix"].get(g, {}).get(a, 0)) for a in after_cols]] for g in grades_before]
    lists = [[name, x["kind"], number(x["before"]), number(x["after"]), number(x["joined"]),
              number(x["left"]), [_link(i) for i in x["sample_joined"]] or "–"]
             for name, x in r["lists"].items()]
    measures = [[el("code", action), number(m["denied_before"]), number(m["denied_after"]),
                 f"{m['delta']:+,d}", number(m["newly_denied"]), number(m["no_longer_denied"]),
                 benefits(m["benefits"])] for action, m in r["measures"].items()]
    districts = [[d, number(x["residents"]), number(x["changed_grade"]), number(x["score_up"]),
                  number(x["score_down"])] for d, x in r["by_district"].items()]
    warnings: Child = None
    if r["proposed"]["warnings"]:
        warnings = el("div", el("p", "The policy check warns:"),
                      el("ul", [el("li", w) for w in r["proposed"]["warnings"]]), class_="alert warn")
    return [
        el("section", el("h2", "Impact", id="impact-h"),
           el("p", el("strong", number(r["residents_changed_grade"]), data_k="changed-grade"), " of ",
              el("span", number(r["residents"]), data_k="residents"), " residents would change grade under ",
              el("strong", r["proposed"]["policy"]), f" (as of {r['as_of'][:16].replace('T', ' ')}).",
              class_="lead"), warnings,
           el("div", el("div", el("h3", "Grades"), bars, charts.legend([(cls[g], g) for g in order]),
                        table("Residents by grade", ["Grade", "In force", "Proposed", "Change"], grade_rows,
                              numeric=[1, 2, 3], id_="whatif-grades-table", stack=False)),
              el("div", el("h3", "Moves between grades"),
                 table("From the grade in force (rows) to the proposed grade (columns)",
                       ["In force", *after_cols], matrix, numeric=range(1, len(after_cols) + 1),
                       id_="whatif-matrix", stack=False)), class_="split"),
           aria_labelledby="impact-h", class_="card", id="impact"),
        el("section", el("h2", "Lists and measures", id="lm-h"),
           table("Residents on each list (in force)",
                 ["List", "Kind", "In force", "Proposed", "Join", "Leave", "Some who join"], lists,
                 numeric=[2, 3, 4, 5], id_="whatif-lists", empty="Neither policy has lists."),
           table("Residents denied each action",
                 ["Action", "Denied now", "Proposed", "Change", "Newly denied", "No longer denied",
                  "Benefits"], measures, numeric=[1, 2, 3, 4, 5], id_="whatif-measures",
                 empty="Neither policy has measures."),
           aria_labelledby="lm-h", class_="card", id="lists-measures"),
        el("section", el("h2", "By district", id="district-h"),
           table("Changes by district", ["District", "Residents", "Change grade", "Score up", "Score down"],
                 districts, numeric=[1, 2, 3, 4], id_="whatif-districts", stack=False),
           aria_labelledby="district-h", class_="card", id="districts"),
        el("section", el("h2", "What the text changes", id="diff-h"),
           diff(before_text, after_text, r["policy"]), aria_labelledby="diff-h", class_="card", id="diff"),
    ]


def render(who: Principal, csrf: str, *, text: str, result: Row | None = None, before_text: str = "",
           problems: list[str] | None = None, message: str | None = None) -> Html:
    body: list[Child] = [el("div", el("h1", "What if the policy changed?"),
                            el("p", "Simulate a proposed policy on today's ledger: the same scoring, "
                                    "nothing stored.", class_="subtitle"), class_="page-head")]
    if problems is not None:
        said = message or "The policy was refused."
        body.append(el("div", el("p", said[:1].upper() + said[1:]),
                       el("ul", [el("li", p) for p in problems]), class_="alert error", role="alert",
                       id="whatif-problems"))
    if result is not None:
        body.extend(report(result, before_text, text))
    body.append(form(csrf, text))
    return page("What-if", body, who=who, csrf=csrf, active="/whatif")
