"""The FastAPI application: routes, the error mapping, roles in the OpenAPI schema, metrics.

``/docs`` (Swagger UI) loads its script and styles from the server itself (the files ship in the
``fastapi-offline`` package), so it works on a machine with no network. There is no ``/redoc``: ReDoc
would still fetch its logo from its makers' site.

``create_app`` is also uvicorn's factory: in a worker process of
``credo serve --workers N`` it finds the hub through ``CREDO_HUB``; otherwise it
opens the database itself (one process serving alone).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

import credo
from credo import settings
from credo.api import errors, openapi
from credo.api.auth import CurrentTokens
from credo.api.fastcheck import FastCheck
from credo.api.hub import Core, Hub
from credo.api.metrics import MetricsMiddleware
from credo.api.remote import ENV, RemoteHub
from credo.api.routes import auditlog, checks, objections, records, residents, system, tokens
from credo.api.runtime import Runtime
from credo.web.routes import router as web_router

DESCRIPTION = """Credo's HTTP API (spec §7). Every caller sends `Authorization: Bearer TOKEN`; a token is
bound to one role (operator, agency, provider, resident, auditor) and, for the last three
but one, to one agency, provider or resident. Each operation lists the roles it admits
(`x-roles`). Errors are always `{"error": {"code", "message", "details"}}`."""


DOCS_ASSETS = "/docs-assets"
"""Where /docs finds Swagger UI's files."""


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

    app = FastAPIOffline(title="Credo", version=credo.__version__, description=DESCRIPTION, lifespan=lifespan,
                         static_url=DOCS_ASSETS, redoc_url=None)
    app.state.runtime = runtime
    errors.install(app)
    routers = [module.router for module in (checks, residents, records, objections, auditlog, tokens, system)]
    openapi.install(app, routers)
    for router in routers:
        app.include_router(router)
    app.include_router(web_router)  # the web pages (credo.web), kept out of the OpenAPI schema
    app.add_middleware(FastCheck, runtime=runtime)
    app.add_middleware(CurrentTokens, runtime=runtime)  # around every path, the fast check's too
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)  # outermost: it sees both paths
    return app
