"""What both fronts need of the serving layer inside a request: the ASGI types, this process's
``Runtime``, blocking work off the event loop, and the middleware that keeps tokens current.

The API (``credo.api``) and the pages (``credo.web``) each import this, never each other; the
composition root (``credo.app``) mounts both on one application whose ``state.runtime`` is set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

if TYPE_CHECKING:  # the runtime's metrics use the ASGI types of this module
    from credo.serving.runtime import Runtime

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def runtime(request: Request) -> Runtime:
    """This process's serving state, set by the composition root."""
    rt: Runtime = request.app.state.runtime
    return rt


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run something that may wait for the database in a worker thread."""
    return await run_in_threadpool(fn, *args, **kwargs)


class CurrentTokens:
    """ASGI middleware: each request is admitted by the tokens as they are now. When the hub has
    announced writes since this process read its directory, the directory is caught up first (off
    the event loop), so a token revoked or a session signed out in any worker process is refused
    by every other from its next request on."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.runtime.tokens_behind():
            await blocking(self.runtime.catch_up_tokens)
        await self.app(scope, receive, send)
