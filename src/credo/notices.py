"""Notices: an outbox per resident, so that a grace period is a real notice before punishment.

Written in the same transaction as the change that causes them: a list
pending (with the date it takes effect) or in force, a list left, a grade
changed, an objection opened or resolved. Standing changes are found by
comparing the standings just before and after a rescoring, in SQL; every
rescoring is the service's one path (``credo.servicebase``), so a change is
told whichever caller made the standing current. A record
added is the one notice not written: the ledger row is already there, in the
same transaction, so ``for_resident`` reads it as a notice at its batch's time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from credo.sql import q
from credo.times import iso


def _run(con: duckdb.DuckDBPyConnection, ref: str, params: dict[str, Any]) -> None:
    for statement in q(ref).split(";"):
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})


def snapshot(con: duckdb.DuckDBPyConnection, residents: np.ndarray | None) -> None:
    """Remember the standings about to change (everyone's when ``residents`` is None), as they were
    at their own ``as_of``: what the resident was last told, whenever that was."""
    if residents is None:
        _run(con, "notices.snapshot_all", {})
        return
    con.register("notice_scope", pa.table({"resident": pa.array(residents, pa.int64())}))
    _run(con, "notices.snapshot_scoped", {})


def emit_changes(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    _run(con, "notices.emit", {"now": now})


def add(con: duckdb.DuckDBPyConnection, resident: int, kind: str, detail: dict[str, Any], now: datetime) -> None:
    con.execute("INSERT INTO notices VALUES (?, ?, ?, ?)", [resident, now, kind, orjson.dumps(detail).decode()])


TIMES = ("takes_effect", "occurred_at")
"""Details that hold a time: stored as naive city time, given with the city's offset like every time."""


def for_resident(con: duckdb.DuckDBPyConnection, resident: int, tz: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = con.execute(q("notices.for_resident"), {"resident": resident, "limit": limit}).fetchall()
    return [{"at": iso(at, tz), "kind": kind, "detail": _with_offsets(orjson.loads(detail), tz)}
            for at, kind, detail in rows]


def _with_offsets(detail: dict[str, Any], tz: str) -> dict[str, Any]:
    for key in TIMES:
        if isinstance(detail.get(key), str):
            detail[key] = iso(datetime.fromisoformat(detail[key]), tz)
    return detail
