"""What every command of the ``credo`` CLI shares: the consoles, the options, the database of
``--db`` (closed when the command ends), and reading the files and times given on the command line."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from credo.errors import CredoError
from credo.service import Credo

out = Console(width=None if sys.stdout.isatty() else 10_000)
"""Piped to a file or another program, nothing is wrapped or cut to a terminal's width."""
err = Console(stderr=True, width=None if sys.stderr.isatty() else 10_000)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Engine = Annotated[str, typer.Option(help="duckdb, or spark (CREDO_SPARK_MASTER, CREDO_SPARK_LAKE)")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="ISO 8601 time; a bare date is local midnight")]
KnownAt = Annotated[str | None, typer.Option(
    "--known-at", help="count only what Credo held at this time (ISO 8601; default now)")]


def emit(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


_opened: list[Credo] = []


def service() -> Credo:
    """The database of --db, which must exist (only `credo init`, `restore` and `demo` make one),
    closed when the command ends: a command that appended audit entries signs the
    log's head then (a checkpoint, when a key is configured)."""
    credo = Credo.open(create=False)
    _opened.append(credo)
    return credo


def close_services() -> None:
    while _opened:
        _opened.pop().close()


def read_text(path: Path, what: str) -> str:
    """A file given on the command line, or a one-line error naming it and why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredoError(f"{what} {path}: {exc.strerror or exc}", code="unreadable_file") from None
    except UnicodeDecodeError:
        raise CredoError(f"{what} {path}: not UTF-8 text", code="unreadable_file") from None


def as_of_time(credo: Credo, text: str | None, flag: str = "--as-of") -> datetime:
    """--as-of (or ``flag``) in the city's time (now when not given), or a one-line error saying what is wrong."""
    try:
        return credo.when(text)
    except ValueError as exc:
        raise CredoError(f"{flag} {text}: not an ISO 8601 date or date-time such as 2025-01-01 or "
                         f"2025-01-01T09:00:00+08:00 ({exc})", code="bad_time") from None


def optional_time(credo: Credo, text: str | None, flag: str) -> datetime | None:
    """A time option that may be absent (None), read as ``as_of_time`` reads one."""
    return as_of_time(credo, text, flag) if text else None

