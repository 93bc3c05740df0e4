"""GET /v1/check without the framework in between: the one request a boarding gate waits on.

Why: on this kind of machine a bare FastAPI endpoint costs about 290 µs of CPU a request
(routing, the middleware stack, dependency solving), more than the decision and its audit
entry together, so the framework, not the decision, set the ceiling on single checks.

What stays the same: this is the route's own code (``checks.judge`` and ``checks.answer``)
behind the route's own admission (``DECIDE``: the rule of ``Op.CHECK`` in ``credo.permissions``,
refusals in its order), only reached without the routing. Every
refusal (no token, a wrong role, a missing parameter, an invalid or unknown ID, an unknown
action, the rate limit) is raised before anything is logged, and such a request is handed
to the framework unchanged, which answers it exactly as it answers any refused request: the
errors, their statuses and the OpenAPI schema have one source. An error after the decision
was made (the audit writer failing) goes to the same 500 handler as anywhere else.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi.routing import APIRoute

from credo.api.errors import NO_STORE
from credo.api.http import dumps
from credo.api.routes import checks
from credo.errors import CredoError
from credo.ids import IdError
from credo.principals import Principal
from credo.serving.asgi import ASGIApp, Receive, Scope, Send
from credo.serving.runtime import Runtime

PATH = "/v1/check"
REFUSED = (CredoError, IdError)
HEADERS = [(b"content-type", b"application/json"), *((k.lower().encode(), v.encode()) for k, v in NO_STORE.items())]
"""The headers of every answer, as ``http.json`` sets them, plus its length."""


class FastCheck:
    """ASGI middleware answering GET /v1/check itself; every other request passes through."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.route = next(r for r in checks.router.routes
                          if isinstance(r, APIRoute) and r.path == PATH and "GET" in (r.methods or ()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        rt = self.runtime
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        if "as_of" in params or "known_at" in params:  # another time: from the store, by the route
            await self.app(scope, receive, send)
            return
        purpose = params.get("purpose")
        try:
            who = checks.DECIDE.principal(rt, bearer(scope))
            judged = await checks.judge(rt, who, params["resident_id"], params["action"], purpose)
        except (*REFUSED, KeyError):
            await self.app(scope, receive, send)
            return
        if not rt.limiter.allow(who.name):  # last, so that a request handed on is counted once
            await self.app(scope, receive, send)
            return
        await self._answer(scope, send, rt, who, purpose, judged)

    async def _answer(self, scope: Scope, send: Send, rt: Runtime, who: Principal, purpose: str | None,
                      judged: checks.Judged) -> None:
        body = dumps(await checks.answer(rt, who, purpose, judged))
        scope["route"] = self.route  # the metrics label it as the framework would
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def bearer(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, as FastAPI's HTTPBearer reads it."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None
