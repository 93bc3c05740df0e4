"""The composition root: the one place that builds the served application.

It takes a hub (the store, in this process or reached over the socket from a worker of
``credo serve --workers N``), makes this process's ``Runtime``, lets the API build the
application, mounts the web pages beside it and wraps both in the serving layer's middleware.
``credo.api`` and ``credo.web`` never import each other; only this module knows both.

``create_app`` is uvicorn's factory: in a worker process it finds the hub through ``CREDO_HUB``;
otherwise it opens the database itself (one process serving alone, tests, embedding).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from credo import settings
from credo.api import app as api
from credo.serving.asgi import CurrentTokens
from credo.serving.core import Core
from credo.serving.hub import Hub
from credo.serving.metrics import MetricsMiddleware
from credo.serving.remote import ENV, RemoteHub
from credo.serving.runtime import Runtime
from credo.web.review import router as review_pages
from credo.web.routes import router as web_router


def hub_from_env() -> Hub:
    if os.environ.get(ENV):
        return RemoteHub.from_env()
    return Core(settings.db_path())


def create_app(hub: Hub | None = None, *, owns_hub: bool = True) -> FastAPI:
    runtime = Runtime(hub if hub is not None else hub_from_env(), owns_hub=owns_hub)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        runtime.close()

    app = api.build(runtime, lifespan)
    app.include_router(web_router)  # the web pages, kept out of the OpenAPI schema
    app.include_router(review_pages)
    app.add_middleware(CurrentTokens, runtime=runtime)  # around every path, the fast check's too
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)  # outermost: it sees both paths
    return app
