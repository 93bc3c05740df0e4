"""Settings: typed constants read once from ``CREDO_*`` environment variables.

Every knob an operator can turn lives here, so that `docs/operations.md` can list
them all and a test can check that none is undocumented.

"Once" is once per environment: ``current()`` parses and checks the ``CREDO_*`` variables the first
time it sees them and hands out the same ``Settings`` until one of them changes (the CLI's ``--db``
sets ``CREDO_DB`` before its command runs; a test sets ``CREDO_NOW`` between two calls). A bad value
is a ``CredoError`` naming the variable and why, raised where the settings are first read: the CLI
reads them before any command (exit 2), ``credo serve`` before it listens.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from credo.errors import CredoError
from credo.times import DEFAULT_TZ, parse_when

DEFAULTS: dict[str, str] = {
    "CREDO_DB": "credo.duckdb",
    "CREDO_NOW": "",
    "CREDO_HOST": "127.0.0.1",
    "CREDO_PORT": "8700",
    "CREDO_WORKERS": "1",
    "CREDO_MAX_BODY": str(16 * 1024 * 1024),
    "CREDO_RATE_LIMIT": "2000",
    "CREDO_MEMORY_LIMIT": "",
    "CREDO_THREADS": "",
    "CREDO_SPARK_MASTER": "local[2]",
    "CREDO_SPARK_LAKE": "",
    "CREDO_TOKEN": "",
    "CREDO_BACKUP_DIR": "",
    "CREDO_AUDIT_KEY": "",
    "CREDO_IDENTITY_MODEL": "",
    "CREDO_MATCH_ENGINE": "duckdb",
}
"""Setting name -> default, documented one by one in docs/operations.md."""

MATCH_ENGINES = ("duckdb", "spark")
"""The engines identity matching runs on (``CREDO_MATCH_ENGINE``)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Every ``CREDO_*`` setting, parsed; an empty variable is its default (see docs/operations.md)."""

    db: Path
    """The database file (``--db`` on the command line)."""
    now: str
    """A fixed clock, ISO 8601 ("" for the real clock): read through ``now()``, in the policy's zone."""
    host: str
    """The address ``credo serve`` listens on, and the CLI asks a running server at."""
    port: int
    workers: int
    """uvicorn worker processes."""
    max_body: int
    """The largest request body, in bytes."""
    rate_limit: float
    """Requests per second allowed per token."""
    memory_limit: str | None
    """DuckDB's ``memory_limit`` (``8GB``), None for DuckDB's default."""
    threads: int | None
    """DuckDB threads, None for all cores."""
    spark_master: str
    spark_lake: str | None
    """Where the ledger is kept as Parquet for Spark; None: the store is exported for each run."""
    token: str | None
    """An operator token for CLI commands that ask a running server."""
    backup_dir: Path | None
    """The only folder under which the server writes backups; None: ``backups`` beside the database."""
    audit_key: Path | None
    """The signing key; None: ``<db>.audit-key`` beside the database."""
    identity_model: Path | None
    """Where the identity matching's parameters are written for the operator (docs/identity.md);
    None: ``<db>.identity-model.json`` beside the database."""
    match_engine: str
    """Where Splink compares described rows with their blocks: ``duckdb`` (the default) or ``spark``
    (a large backlog, on the scoring session; docs/identity.md)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """The settings of ``env``, or a ``CredoError`` naming the first variable whose value is wrong."""
        def raw(name: str) -> str:
            return env.get(name) or DEFAULTS[name]

        def parsed(name: str, parse: Callable[[str], T], what: str, ok: Callable[[T], bool]) -> T:
            text = raw(name)
            try:
                value = parse(text)
            except ValueError:
                value = None
            if value is None or not ok(value):
                raise CredoError(f"{name}={text}: not {what}", code="bad_setting")
            return value

        def positive(name: str) -> int:
            return parsed(name, int, "a whole number of at least 1", lambda n: n >= 1)

        def optional(name: str) -> str | None:
            return raw(name) or None

        if raw("CREDO_NOW"):
            parsed("CREDO_NOW", parse_when, "an ISO 8601 date or date-time", lambda _: True)
        threads = raw("CREDO_THREADS")
        return cls(
            db=Path(raw("CREDO_DB")), now=raw("CREDO_NOW"), host=raw("CREDO_HOST"),
            port=parsed("CREDO_PORT", int, "a port number (1 to 65535)", lambda n: 1 <= n <= 65535),
            workers=positive("CREDO_WORKERS"), max_body=positive("CREDO_MAX_BODY"),
            rate_limit=parsed("CREDO_RATE_LIMIT", float, "a number of requests per second (0 or more)",
                              lambda r: r >= 0),
            memory_limit=optional("CREDO_MEMORY_LIMIT"),
            threads=positive("CREDO_THREADS") if threads else None,
            spark_master=raw("CREDO_SPARK_MASTER"), spark_lake=optional("CREDO_SPARK_LAKE"),
            token=optional("CREDO_TOKEN"),
            backup_dir=Path(raw("CREDO_BACKUP_DIR")) if raw("CREDO_BACKUP_DIR") else None,
            audit_key=Path(raw("CREDO_AUDIT_KEY")) if raw("CREDO_AUDIT_KEY") else None,
            identity_model=Path(raw("CREDO_IDENTITY_MODEL")) if raw("CREDO_IDENTITY_MODEL") else None,
            match_engine=parsed("CREDO_MATCH_ENGINE", str, "duckdb or spark", lambda e: e in MATCH_ENGINES),
        )


def current() -> Settings:
    """The settings of the environment as it is now, parsed once for as long as it stays so."""
    return _parsed(tuple(os.environ.get(name, "") for name in DEFAULTS))


@lru_cache(maxsize=8)
def _parsed(values: tuple[str, ...]) -> Settings:
    return Settings.from_env(dict(zip(DEFAULTS, values, strict=True)))


def db_path() -> Path:
    """The database file of ``CREDO_DB`` (or ``--db``), where a caller gives none."""
    return current().db


def now(tz: str = DEFAULT_TZ) -> datetime:
    """The current instant as naive wall-clock time in the city's zone.

    ``CREDO_NOW`` fixes the clock for tests and replays; everything that asks
    "what time is it" goes through here. It reads ``CREDO_NOW`` alone, not every setting: it is on
    the path of every decision (``current()`` compares all the variables, ~50 µs), and the value was
    checked when the process read its settings.
    """
    fixed = os.environ.get("CREDO_NOW")
    if fixed:
        return parse_when(fixed, tz)
    return datetime.now(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0)
