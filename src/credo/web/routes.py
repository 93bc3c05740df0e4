"""The pages' routes: sign in, the dashboard, a resident's file, objections, the what-if.

Every read goes through the same service call the API uses, through the same hub, so it is
audited the same way: an operator's dashboard as a read of aggregates with the purpose
``dashboard``, an operator opening a file with the purpose they typed, a resident reading
their own file as the resident. Pages are kept out of the OpenAPI schema (they are not the
API). A page without a session sends the browser to sign in; a library error becomes an
HTML page with the error's status, never a JSON body in a browser.

Each page names the operation it performs; its rule in ``credo.permissions`` admits the roles, then
decides ownership and purpose in the same order as for the API (role 403, rate limit 429, someone
else's file 403, no purpose 422), in this front's words.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from credo import permissions
from credo.errors import CredoError, Forbidden, Unauthorized
from credo.ids import IdError, ResidentId, parse_resident_id
from credo.permissions import Op, PurposeRequired
from credo.principals import Principal, a_role
from credo.serving.asgi import blocking, runtime
from credo.serving.runtime import Runtime
from credo.web import dashboard, layout, resident, whatif
from credo.web.html import Html, el
from credo.web.session import COOKIE, SIGNIN_COOKIE, SIGNIN_LIFETIME, Session, Sessions, process_key

router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ACCESSES_SHOWN = 100
MAX_POLICY = 1024 * 1024
HOMES = (("/dashboard", Op.DASHBOARD), ("/me", Op.MY_FILE))
"""Where a caller lands after signing in: the first of these pages their role may open."""
SAY_WHY = "Say why you open this file: the purpose is logged and the resident sees it."
_init = threading.Lock()


class Denied(Exception):
    """A page refused: its status and message, shown as an HTML page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sessions(request: Request) -> Sessions:
    """This process' session keeper, made once (under a lock: two keys would split the sessions)."""
    found: Sessions | None = getattr(request.app.state, "web_sessions", None)
    if found is None:
        with _init:
            found = getattr(request.app.state, "web_sessions", None)
            if found is None:
                found = Sessions(process_key())
                request.app.state.web_sessions = found
    return found


def html(body: Html, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                    headers={**SECURITY_HEADERS, **(headers or {})})


def redirect(to: str) -> Response:
    return RedirectResponse(to, status_code=303, headers=SECURITY_HEADERS)


def signed_in(request: Request) -> tuple[Principal, Session] | None:
    keeper = sessions(request)
    found = keeper.read(request.cookies.get(COOKIE))
    if found is None:
        return None
    rt = runtime(request)
    who = keeper.principal(found, rt.directory, rt.now)
    return None if who is None else (who, found)


def _local(target: str | None) -> str:
    """Only a path of this site is a place to go back to after signing in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


Handler = Callable[[Runtime, Principal, str], Response]


def home_of(role: str) -> str | None:
    return next((path for path, op in HOMES if permissions.allows(op, role)), None)


async def guarded(request: Request, op: Op, handler: Handler) -> Response:
    """Run ``handler(rt, who, form_token)`` in a worker thread for a signed-in caller who may do ``op``."""
    found = signed_in(request)
    if found is None:  # back to this page after signing in (a form's post cannot be replayed)
        if request.method != "GET":
            return redirect("/signin")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/signin?{urlencode({'next': path})}")
    who, session = found
    token = sessions(request).form_token(session)
    rt = runtime(request)
    try:
        if not permissions.allows(op, who.role):
            raise Denied(403, f"{a_role(who.role).capitalize()} cannot open this page.")
        if not rt.limiter.allow(who.name):
            wait = rt.limiter.retry_after(who.name)
            page = layout.error_page(429, "Too many requests: wait a moment and try again.", who=who, csrf=token)
            return html(page, 429, {"Retry-After": str(wait)})
        return await blocking(handler, rt, who, token)
    except Denied as exc:
        return html(layout.error_page(exc.status, exc.message, who=who, csrf=token), exc.status)
    except PurposeRequired:
        return html(layout.error_page(422, SAY_WHY, who=who, csrf=token), 422)
    except IdError as exc:
        return html(layout.error_page(422, str(exc), who=who, csrf=token), 422)
    except CredoError as exc:
        details = [str(d) for d in exc.details] if isinstance(exc.details, list) else None
        page = layout.error_page(exc.status, exc.message, who=who, csrf=token, details=details)
        return html(page, exc.status)


async def form_of(request: Request) -> dict[str, Any]:
    async with request.form(max_files=1, max_fields=20, max_part_size=MAX_POLICY) as data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out[key] = (await value.read(MAX_POLICY + 1)) if isinstance(value, UploadFile) else value
        return out


def _check_form(request: Request, given: Any) -> tuple[Principal, Session]:
    """The caller of a form post and their session: signed in, and the form is this session's (not
    another site's)."""
    found = signed_in(request)
    if found is None:
        raise Unauthorized("your session has ended: sign in again")
    who, session = found
    if not sessions(request).valid_form(session, given if isinstance(given, str) else None):
        raise Forbidden("this form is out of date or not from this site: reload the page and try again")
    return who, session


# -- signing in and out -------------------------------------------------------------------------
@router.get("/")
def home(request: Request) -> Response:
    found = signed_in(request)
    if found is None:
        return redirect("/signin")
    who = found[0]
    page = home_of(who.role)
    if page is not None:
        return redirect(page)
    token = sessions(request).form_token(found[1])
    return html(layout.error_page(403, f"There are no pages for {a_role(who.role)}: use the HTTP API (/docs).",
                                  who=who, csrf=token), 403)


def _signin_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    keeper = sessions(request)
    nonce = keeper.signin_nonce()
    target = _local(request.query_params.get("next"))
    body = [el("div", el("h1", "Sign in to Credo"),
               el("p", "Paste the access token you were given (", el("code", "credo token create"),
                  " or your operator). It is exchanged for a session that ends after eight hours or "
                  "when you sign out; the token itself is not kept in the browser.", class_="subtitle"),
               class_="page-head"),
            el("div", error, class_="alert error", role="alert", id="signin-error") if error else None,
            el("form", el("input", type_="hidden", name="signin", value=keeper.signin_token(nonce)),
               el("input", type_="hidden", name="next", value=target),
               el("div", el("label", "Access token", for_="token"),
                  el("input", type_="password", id="token", name="token", required=True, autocomplete="off",
                     spellcheck="false", autofocus=True, aria_describedby="token-hint",
                     aria_invalid="true" if error else None), class_="field"),
               el("p", "It starts with ", el("code", "credo_"), ".", id="token-hint", class_="hint"),
               el("button", "Sign in", type_="submit"),
               method="post", action="/signin", class_="card signin")]
    response = html(layout.page("Sign in", body), status)
    response.set_cookie(SIGNIN_COOKIE, nonce, max_age=SIGNIN_LIFETIME, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/signin")
    return response


@router.get("/signin")
def signin_form(request: Request) -> Response:
    return _signin_page(request)


@router.post("/signin")
async def signin(request: Request) -> Response:
    data = await form_of(request)
    keeper = sessions(request)
    if not keeper.valid_signin(request.cookies.get(SIGNIN_COOKIE), data.get("signin")):
        return _signin_page(request, "The sign-in form had expired or was not from this site. Try again.",
                            403)
    token = str(data.get("token") or "").strip()
    try:
        who = runtime(request).authenticate(token)
    except Unauthorized:
        return _signin_page(request, "That token is not known. Check it and try again.", 401)
    target = _local(str(data.get("next") or "/"))
    if target == "/":
        target = home_of(who.role) or "/"
    response = redirect(target)
    response.set_cookie(COOKIE, keeper.issue(token), max_age=keeper.lifetime, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    data = await form_of(request)
    try:
        session = _check_form(request, data.get("csrf"))[1]
    except CredoError as exc:
        return html(layout.error_page(exc.status, exc.message), exc.status)
    await blocking(runtime(request).hub.end_session, session.nonce, session.expires)
    response = redirect("/signin")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# -- the operator's pages -----------------------------------------------------------------------
@router.get("/dashboard")
async def dashboard_page(request: Request) -> Response:
    def show(rt: Runtime, who: Principal, token: str) -> Response:
        data = rt.hub.dashboard(who, "dashboard")
        return html(dashboard.render(data, who, token))

    return await guarded(request, Op.DASHBOARD, show)


@router.get("/whatif")
async def whatif_form(request: Request) -> Response:
    def show(rt: Runtime, who: Principal, token: str) -> Response:
        return html(whatif.render(who, token, text=rt.hub.policy().text))

    return await guarded(request, Op.WHATIF, show)


@router.post("/whatif")
async def whatif_run(request: Request) -> Response:
    data = await form_of(request)
    upload = data.get("policy")
    text = (upload.decode("utf-8", "replace") if isinstance(upload, bytes) and upload.strip()
            else str(data.get("text") or ""))

    def run(rt: Runtime, who: Principal, token: str) -> Response:
        _check_form(request, data.get("csrf"))
        if len(text.encode()) > MAX_POLICY:
            raise Denied(413, f"A policy file is at most {MAX_POLICY:,} bytes.")
        in_force = rt.hub.policy().text
        try:
            result = rt.hub.whatif(text, who=who, purpose="what-if page")
        except CredoError as exc:
            problems = [str(d) for d in exc.details] if isinstance(exc.details, list) else [exc.message]
            refused = whatif.render(who, token, text=text, problems=problems, message=exc.message)
            return html(refused, exc.status)
        return html(whatif.render(who, token, text=text, result=result, before_text=in_force))

    return await guarded(request, Op.WHATIF, run)


# -- a resident's file --------------------------------------------------------------------------
def _view(rt: Runtime, who: Principal, resident_id: ResidentId, purpose: str | None, **extra: Any) -> resident.View:
    hub = rt.hub
    file = hub.explain(resident_id, who=who, purpose=purpose)
    return resident.View(
        file=file, objections=hub.objections(resident_id=resident_id),
        accesses=hub.accesses(resident_id, who, limit=ACCESSES_SHOWN, purpose=purpose),
        notices=hub.notices(resident_id, who=who), redress=hub.redress(who=who, resident_id=resident_id),
        policy=rt.index.policy, purpose=purpose,
        own=who.role == "resident", **extra)


def _own_id(who: Principal) -> ResidentId:
    assert who.resident is not None
    return ResidentId.of_key(who.resident)


@router.get("/me")
async def my_file(request: Request) -> Response:
    flash = request.query_params.get("opened")
    contest = request.query_params.get("contest")

    def show(rt: Runtime, who: Principal, token: str) -> Response:
        message = None
        if flash and flash.isdigit():
            message = f"Objection #{int(flash)} is open. The agency must answer it."
        view = _view(rt, who, _own_id(who), None, flash=message, contest=contest)
        return html(resident.render(view, who, token))

    return await guarded(request, Op.MY_FILE, show)


@router.get("/residents")
async def lookup(request: Request) -> Response:
    """The dashboard's lookup form: on to the file's own address."""
    given = request.query_params.get("resident_id", "").strip()
    purpose = request.query_params.get("purpose", "").strip()

    def go(rt: Runtime, who: Principal, token: str) -> Response:
        permissions.require(Op.FIND_FILE, who, purpose=purpose)
        normalised = parse_resident_id(given).text
        return redirect(f"/residents/{normalised}?{urlencode({'purpose': purpose})}")

    return await guarded(request, Op.FIND_FILE, go)


@router.get("/residents/{resident_id}")
async def resident_file(request: Request, resident_id: str) -> Response:
    purpose = request.query_params.get("purpose", "").strip()
    contest = request.query_params.get("contest")

    def show(rt: Runtime, who: Principal, token: str) -> Response:
        permissions.require(Op.READ_EXPLANATION, who, resident_id=resident_id, purpose=purpose)
        if who.role == "resident":  # their own, as the rule just said: it has a page of its own
            return redirect("/me")
        view = _view(rt, who, parse_resident_id(resident_id), purpose, contest=contest)
        return html(resident.render(view, who, token))

    return await guarded(request, Op.READ_EXPLANATION, show)


@router.post("/objections")
async def open_objection(request: Request) -> Response:
    data = await form_of(request)
    record, reason = str(data.get("record") or ""), str(data.get("reason") or "")

    def submit(rt: Runtime, who: Principal, token: str) -> Response:
        _check_form(request, data.get("csrf"))
        given = data.get("resident_id")
        resident_id = parse_resident_id(permissions.own_file(Op.OPEN_OBJECTION, who, str(given) if given else None)
                                        or "")
        try:
            number = rt.hub.open_objection(resident_id, record, reason, who)
        except CredoError as exc:
            if exc.status >= 500 or isinstance(exc, Forbidden):
                raise
            purpose = "objection" if who.role == "operator" else None
            view = _view(rt, who, resident_id, purpose, error=exc.message, contest=record, reason=reason)
            return html(resident.render(view, who, token), exc.status)
        rt.sync()
        if who.role == "resident":
            return redirect(f"/me?opened={number}#objection-{number}")
        return redirect(f"/residents/{resident_id}?{urlencode({'purpose': f'objection {number}'})}"
                        f"#objection-{number}")

    return await guarded(request, Op.OPEN_OBJECTION, submit)


@router.get("/static/credo.css")
def stylesheet() -> Response:
    return Response(layout.stylesheet(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})
