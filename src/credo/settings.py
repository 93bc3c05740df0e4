"""Settings: typed constants read once from ``CREDO_*`` environment variables.

Every knob an operator can turn lives here, so that `docs/operations.md` can list
them all and a test can check that none is undocumented.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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
}
"""Setting name -> default, documented one by one in docs/operations.md."""


def get(name: str) -> str:
    """The setting's value from the environment, else its default."""
    return os.environ.get(name) or DEFAULTS[name]


def db_path() -> Path:
    return Path(get("CREDO_DB"))


def now(tz: str = DEFAULT_TZ) -> datetime:
    """The current instant as naive wall-clock time in the city's zone.

    ``CREDO_NOW`` fixes the clock for tests and replays; everything that asks
    "what time is it" goes through here.
    """
    fixed = get("CREDO_NOW")
    if fixed:
        return parse_when(fixed, tz)
    return datetime.now(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0)
