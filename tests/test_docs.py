"""Everything an operator can set, type or call is in the docs: a test fails when it is not.

Settings are the ``CREDO_*`` names of ``credo.settings.DEFAULTS`` (each in docs/operations.md); CLI
commands are every command of the ``credo`` app, as ``credo GROUP COMMAND`` somewhere in README.md or
docs/; HTTP endpoints are every route of the API routers, as ``METHOD /path`` in docs/api.md (path
parameters may be named differently: ``{id}`` and ``{resident_id}`` are the same place).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.routing import APIRoute

from credo import settings
from credo.api.routes import auditlog, checks, feed, objections, records, residents, review, system, tokens
from credo.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
API = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
OPERATIONS = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def _commands(group: Any, prefix: str = "credo") -> list[str]:
    out = []
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):  # a group (typer ships its own click: no isinstance)
            out += _commands(command, f"{prefix} {name}")
        else:
            out.append(f"{prefix} {name}")
    return out


COMMANDS = _commands(typer.main.get_group(app))
ROUTERS = (checks, residents, records, objections, review, auditlog, system, tokens, feed)
ENDPOINTS = sorted({f"{method} {route.path}" for module in ROUTERS
                    for route in module.router.routes if isinstance(route, APIRoute)
                    for method in route.methods - {"HEAD"}})


def _plain(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.mark.parametrize("name", sorted(settings.DEFAULTS))
def test_every_setting_is_documented(name: str) -> None:
    if f"`{name}`" not in OPERATIONS:
        pytest.fail(f"{name} is not in docs/operations.md")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_documented(command: str) -> None:
    if command not in DOCS:
        pytest.fail(f"`{command}` is in no doc")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_is_documented(endpoint: str) -> None:
    if _plain(endpoint) not in _plain(API):
        pytest.fail(f"`{endpoint}` is not in docs/api.md")


def test_the_lists_are_not_empty() -> None:
    """The test would pass vacuously if the app or routers were not found."""
    assert len(COMMANDS) > 20 and len(ENDPOINTS) > 15 and "credo audit verify" in COMMANDS
