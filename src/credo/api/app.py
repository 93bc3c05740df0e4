"""The API's half of the application: routes, the error mapping, roles in the OpenAPI schema.

``/docs`` (Swagger UI) loads its script and styles from the server itself (the files ship in the
``fastapi-offline`` package), so it works on a machine with no network. There is no ``/redoc``: ReDoc
would still fetch its logo from its makers' site.

``build`` makes the application with the API on it; the composition root (``credo.app``) mounts
the web pages beside it and wraps both in the serving layer's middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

import credo
from credo.api import errors, openapi
from credo.api.fastcheck import FastCheck
from credo.api.routes import auditlog, checks, feed, objections, records, residents, review, system, tokens
from credo.serving.runtime import Runtime

DESCRIPTION = """Credo's HTTP API (spec §7). Every caller sends `Authorization: Bearer TOKEN`; a token is
bound to one role (operator, agency, provider, resident, auditor) and, for the last three
but one, to one agency, provider or resident. Each operation lists the roles it admits
(`x-roles`) and names its row of the permission table (`x-operation`). Errors are always
`{"error": {"code", "message", "details"}}`."""


DOCS_ASSETS = "/docs-assets"
"""Where /docs finds Swagger UI's files."""


def build(runtime: Runtime, lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]]) -> FastAPI:
    """The application with the API's routes, errors, schema and fast check (innermost middleware)."""
    app = FastAPIOffline(title="Credo", version=credo.__version__, description=DESCRIPTION, lifespan=lifespan,
                         static_url=DOCS_ASSETS, redoc_url=None)
    app.state.runtime = runtime
    errors.install(app)
    routers = [module.router for module in (checks, residents, records, objections, review, auditlog, tokens,
                                            feed, system)]
    routers.insert(4, objections.redress_router)
    openapi.install(app, routers)
    for router in routers:
        app.include_router(router)
    app.add_middleware(FastCheck, runtime=runtime)
    return app
