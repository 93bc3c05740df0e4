"""The frame every page shares: document head, header with navigation and sign-out, footer."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from credo import permissions
from credo.permissions import Op
from credo.principals import Principal
from credo.web.html import Child, Html, el

NAV = (("/dashboard", "Dashboard", Op.DASHBOARD), ("/review", "Review", Op.LIST_REVIEW),
       ("/whatif", "What-if", Op.WHATIF), ("/me", "My file", Op.MY_FILE))
"""The pages in the header, each shown to the roles its operation admits."""


@cache
def stylesheet() -> bytes:
    return (resources.files("credo.web") / "static" / "credo.css").read_bytes()


@cache
def stylesheet_url() -> str:
    """The stylesheet's address, versioned by its content so a browser never keeps an old one."""
    return f"/static/credo.css?v={hashlib.sha256(stylesheet()).hexdigest()[:12]}"


def csrf_field(token: str) -> Html:
    return el("input", type_="hidden", name="csrf", value=token)


def page(title: str, body: Child, *, who: Principal | None = None, csrf: str | None = None,
         active: str | None = None, footer: Child = None) -> Html:
    """A whole document: ``lang``, viewport, the bundled stylesheet, a skip link, landmarks."""
    links = [(href, label) for href, label, op in NAV if who and permissions.allows(op, who.role)]
    items = [el("li", el("a", label, href=href, aria_current="page" if href == active else None))
             for href, label in links]
    nav = el("nav", el("ul", items), aria_label="Main") if links else None
    account = None
    if who is not None and csrf is not None:
        account = el("div", el("span", who.name, class_="principal"), el("span", who.role, class_="role"),
                     el("form", csrf_field(csrf), el("button", "Sign out", type_="submit", class_="link"),
                        method="post", action="/signout"), class_="account")
    header = el("header", el("a", el("span", "C", class_="logo", aria_hidden="true"), "Credo", href="/",
                             class_="brand"), nav, account, class_="top")
    head = el("head", el("meta", charset="utf-8"),
              el("meta", name="viewport", content="width=device-width, initial-scale=1"),
              el("meta", name="referrer", content="no-referrer"),
              el("title", f"{title} · Credo"), el("link", rel="stylesheet", href=stylesheet_url()))
    foot = el("footer", footer or "Credo: explainable, contestable, time-limited, audited.", class_="foot")
    doc = el("html", head, el("body", el("a", "Skip to content", href="#main", class_="skip"), header,
                              el("main", body, id="main", tabindex="-1"), foot), lang="en")
    return Html("<!doctype html>\n" + doc)


def error_page(status: int, message: str, *, who: Principal | None = None, csrf: str | None = None,
               details: list[str] | None = None) -> Html:
    body = [el("h1", "Something is not right" if status < 500 else "Something went wrong"),
            el("div", el("p", message), el("ul", [el("li", d) for d in details]) if details else None,
               class_="alert error", role="alert"),
            el("p", el("a", "Back to the start", href="/"))]
    return page(f"Error {status}", body, who=who, csrf=csrf)
