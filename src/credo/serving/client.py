"""Asking a running ``credo serve`` to do what the CLI cannot while the server holds the database.

DuckDB lets one process open the file for writing, so with the server up a CLI
command that needs the database finds it locked. For the operations that must
work while serving (``credo backup``, ``credo token list`` and ``revoke``), the CLI
asks the server instead, at ``CREDO_HOST``:``CREDO_PORT`` with the operator token in
``CREDO_TOKEN``. The standard library's HTTP client is enough, and keeps the CLI
free of the test suite's dependencies.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from credo import settings
from credo.errors import CredoError

WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
"""A server listening on every address is reached on loopback."""


def server_url() -> str:
    configured = settings.current()
    host = WILDCARDS.get(configured.host, configured.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{configured.port}"


def call(method: str, path: str, body: Any, *, timeout: float = 3600) -> Any:
    """One JSON request with the operator token; an API error comes back as a ``CredoError``."""
    token = settings.current().token
    url = server_url() + path
    if not token:
        raise CredoError(f"the database is held by a running server; set CREDO_TOKEN to an operator token to "
                         f"ask it ({url})", code="token_required")
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "http_error", "message": f"HTTP {exc.code}"}
        raise CredoError(f"the server at {url} refused: {error.get('message')}", code=str(error.get("code")),
                         details=error.get("details")) from None
    except OSError as exc:
        raise CredoError(f"the database is locked, and no server answers at {url}: {exc}",
                         code="server_unreachable") from None


def here_or_served(here: Callable[[], dict[str, Any]], method: str, path: str, body: Any = None) -> dict[str, Any]:
    """``here()`` on the database; when a running server holds it (``database_held``, met on opening),
    the same operation asked of the server, whose answer has the same shape."""
    try:
        return here()
    except CredoError as exc:
        if exc.code != "database_held":
            raise
    answer: dict[str, Any] = call(method, path, body)
    return answer
