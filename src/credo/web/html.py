"""HTML built in Python: every text is escaped unless it is already ``Html``.

Why not a template engine: the pages are small, a dependency would be one more
thing to ship, and building markup with ``el(...)`` makes escaping the default
rather than a filter someone can forget. ``Html`` marks a string as markup that
is safe to include as is; anything else joined into a page is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

VOID = frozenset({"area", "base", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"})
RENAMED = {"class_": "class", "for_": "for", "type_": "type", "viewbox": "viewBox"}


class Html(str):
    """Markup that is safe to include as is."""

    __slots__ = ()


Child = Html | str | int | float | None | Iterable["Child"]
Attr = str | int | float | bool | None


def esc(value: Child) -> Html:
    """``value`` as markup: Html kept, text escaped, iterables joined, None and False dropped."""
    if value is None or value is False:
        return Html("")
    if isinstance(value, Html):
        return value
    if isinstance(value, str):
        return Html(escape(value, quote=True))
    if isinstance(value, int | float):
        return Html(escape(str(value)))
    return Html("".join(esc(v) for v in value))


def attrs(**given: Attr) -> Html:
    """Attributes: ``class_`` is ``class``, other underscores are hyphens (``aria_label``); True is a
    bare attribute, None and False leave it out."""
    out = []
    for key, value in given.items():
        if value is None or value is False:
            continue
        name = RENAMED.get(key, key.rstrip("_").replace("_", "-"))
        out.append(f" {name}" if value is True else f' {name}="{escape(str(value), quote=True)}"')
    return Html("".join(out))


def el(tag: str, *children: Child, **given: Attr) -> Html:
    """One element with its attributes and children."""
    if tag in VOID:
        return Html(f"<{tag}{attrs(**given)}>")
    return Html(f"<{tag}{attrs(**given)}>{esc(children)}</{tag}>")


def number(value: int | float | None) -> str:
    """A count as people read it: thousands separated."""
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 decision``, ``2 decisions``: a count with its noun."""
    return f"{number(count)} {word if count == 1 else words or word + 's'}"


def when(iso: str | None, *, time: bool = True) -> Html:
    """An ISO 8601 time in a ``<time>`` element: the date and minute shown, the full value kept."""
    if not iso:
        return Html("–")
    shown = iso[:10] if not time or iso[11:19] == "00:00:00" else f"{iso[:10]} {iso[11:16]}"
    return el("time", shown, datetime=iso)


def due(row: dict[str, object], *, time: bool = True) -> Html:
    """A deadline's cell: the time, marked when it was counted past the official calendar's years."""
    shown = when(str(row["deadline"]) if row.get("deadline") else None, time=time)
    if not row.get("deadline_estimated"):
        return shown
    return el("span", shown, " ", el("span", "estimated", class_="badge", title="counted Monday to Friday: past the "
                                        "years of the official holiday calendar"), data_estimated="true")


def table(caption: str, head: list[str], rows: Iterable[Iterable[Child]], *, numeric: Iterable[int] = (),
          row_header: bool = True, id_: str | None = None, empty: str = "None.",
          stack: bool | None = None) -> Html:
    """A data table: a caption, column headers, the first cell of each row a row header.

    Wrapped in a focusable scrolling region, so a wide table scrolls sideways (also by
    keyboard) rather than widening the page. A table of four columns or more is ``stack``ed
    on a phone: each row becomes a small card whose cells carry their column's name.
    """
    right = set(numeric)
    body = []
    for cells in rows:
        tds = []
        for i, cell in enumerate(cells):
            cls = "num" if i in right else None
            label = head[i] if i < len(head) else None
            content = el("span", cell, class_="cell")
            if i == 0 and row_header:
                tds.append(el("th", content, scope="row", class_=cls, data_label=label))
            else:
                tds.append(el("td", content, class_=cls, data_label=label))
        body.append(el("tr", tds))
    if not body:
        return el("p", empty, class_="empty")
    thead = el("thead", el("tr", [el("th", h, scope="col", class_="num" if i in right else None)
                                  for i, h in enumerate(head)]))
    stacked = len(head) >= 4 if stack is None else stack
    return el("div", el("table", el("caption", caption), thead, el("tbody", body), id=id_,
                        class_="stack" if stacked else None),
              class_="scroll", tabindex="0", role="region", aria_label=caption)
