"""The providers' change feed (spec §8 "Provider feed"): every change of a decision, durable and in order.

A provider that keeps its own copy of whom to deny (a railway's booking system) follows this feed
instead of asking about each passenger. Each row is one (resident, action) whose decision or
benefits changed: its ``seq`` (one more than the last, with no gap: rows are numbered inside the
transaction of the change, which the one writer holds), the decision, benefits and reason codes
now, when it took effect and why (``Cause``).

The rows are written by the one rescoring path (``credo.servicebase``): ``before`` notes, for the
residents about to be rescored, the decisions their stored standings imply; ``append``, after the
scoring, compares them with the decisions the new standings imply and appends the differences.
Both are SQL over whole sets (``sql/providerfeed.sql``), so a policy that changes 30,000 decisions
in a city of a million puts them all in the feed within the same call. Only actions some measure
names can change; any other is a plain allow for everyone, always. The table is one for all
providers: what a provider sees is the rows of its actions (``credo.principals``: a provider
token's actions).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

import duckdb
import numpy as np
import pyarrow as pa

from credo import ids
from credo.deadlines import Deadline
from credo.policy import Policy, measures_table
from credo.policydoc import Measure
from credo.sql import q
from credo.times import iso


class Cause(enum.StrEnum):
    """Why the one rescoring path ran, as its caller says; ``TIME`` rows are stored as what time did."""

    RECORD = "record"
    REVOCATION = "revocation"
    OBJECTION = "objection"
    POLICY = "policy"
    TIME = "time"
    """A standing made current because it stopped being true by itself: each change is stored as
    ``grace_ended`` (a list came into force) or ``expired`` (a record stopped counting)."""


CAUSES = ("record", "revocation", "objection", "policy", "grace_ended", "expired")
"""What a feed row's ``cause`` may say."""


def _statements(ref: str) -> list[str]:
    return [s for s in q(ref).split(";") if s.strip()]


def _run(con: duckdb.DuckDBPyConnection, ref: str, params: dict[str, Any]) -> None:
    for statement in _statements(ref):
        con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})


EFFECTS = ("deny", *sorted(e for e in get_args(Measure.model_fields["effect"].annotation) if e != "deny"))
"""Every effect a measure may have, deny first: effect ``i`` is bit ``i`` of a decision's mask (in the SQL),
so a mask is compared as one integer and decoded to benefits in this (alphabetical) order."""


def _measures(con: duckdb.DuckDBPyConnection, name: str, policy: Policy) -> None:
    """The policy's measures as ``name``, each with the bit of its effect."""
    table = measures_table(policy)
    bits = [1 << EFFECTS.index(e) for e in table.column("effect").to_pylist()]
    con.register(name, table.append_column("bit", pa.array(bits, pa.int64())))


def before(con: duckdb.DuckDBPyConnection, scope: np.ndarray | None, policy: Policy, now: datetime) -> None:
    """Note the decisions of ``scope`` (everyone when None) as their stored standings imply them under
    ``policy`` (the one in force before the change), just before they are rescored at ``now``."""
    keys = np.zeros(0, np.int64) if scope is None else scope
    con.register("feed_scope", pa.table({"resident": pa.array(keys, pa.int64())}))
    _measures(con, "feed_measures_before", policy)
    _run(con, "providerfeed.scope_all" if scope is None else "providerfeed.scope_scoped", {})
    _run(con, "providerfeed.before", {"now": now})


def append(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime, cause: Cause) -> None:
    """After the rescoring: append each decision of the scope ``before`` noted that changed, under
    ``policy`` (the one the standings were scored under), numbered on from the feed's last ``seq``."""
    _measures(con, "feed_measures_after", policy)
    try:
        _run(con, "providerfeed.after", {"now": now, "cause": cause.value, "policy": policy.label,
                                         "effects": list(EFFECTS)})
    finally:
        for name in ("feed_scope", "feed_measures_before", "feed_measures_after"):
            con.unregister(name)


def head(con: duckdb.DuckDBPyConnection) -> int:
    """The last ``seq`` in the feed (0 when empty)."""
    return int(con.execute(q("providerfeed.head")).fetchall()[0][0])


def _arrow(con: duckdb.DuckDBPyConnection, ref: str, params: dict[str, Any]) -> pa.Table:
    table: pa.Table = con.sql(q(ref), params=params).to_arrow_table()
    return table


def _actions(actions: Sequence[str] | None) -> list[str] | None:
    return None if actions is None else list(actions)


def page(con: duckdb.DuckDBPyConnection, tz: str, actions: Sequence[str] | None, after: int,
         limit: int) -> list[dict[str, Any]]:
    """The changes after ``after`` on ``actions`` (None: every action), at most ``limit``, in order."""
    table = _arrow(con, "providerfeed.page", {"after": after, "actions": _actions(actions), "limit": limit})
    if not table.num_rows:
        return []
    residents = ids.resident_ids_from_keys(table.column("resident")).to_pylist()
    told: dict[datetime, str | None] = {}
    out = []
    for row, rid in zip(table.drop(["resident"]).to_pylist(), residents, strict=True):
        at = row["effective_at"]
        shown = told.get(at)
        if shown is None:
            shown = told[at] = iso(at, tz)
        row["effective_at"] = shown
        out.append({"seq": row["seq"], "resident_id": rid, **row})
    return out


@dataclass(frozen=True)
class Page:
    """A page of changes as JSON text (the array's items, comma-separated), how many, and the last seq."""

    changes: str
    count: int
    last: int | None


def page_json(con: duckdb.DuckDBPyConnection, tz: str, actions: Sequence[str] | None, after: int,
              limit: int) -> Page:
    """``page`` as JSON made by the database: what a provider reading the whole feed over HTTP gets,
    at the speed of the query rather than of a dict per change."""
    params = {"after": after, "actions": _actions(actions), "limit": limit}
    times = [at for (at,) in con.execute(q("providerfeed.page_times"), params).fetchall()]
    con.register("feed_times", pa.table({"effective_at": pa.array(times, pa.timestamp("us")),
                                         "shown": pa.array([iso(at, tz) for at in times], pa.string())}))
    try:
        changes, count, last = con.execute(q("providerfeed.page_json"), params).fetchall()[0]
    finally:
        con.unregister("feed_times")
    return Page(str(changes), int(count), None if last is None else int(last))


def snapshot(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime,
             actions: Sequence[str] | None) -> list[dict[str, Any]]:
    """Every (resident, action) on ``actions`` whose decision at ``now`` is not a plain allow, from the
    stored standings (the caller made them current, in the same transaction as it reads ``head``)."""
    _measures(con, "feed_measures_after", policy)
    try:
        table = _arrow(con, "providerfeed.snapshot", {"now": now, "actions": _actions(actions)})
    finally:
        con.unregister("feed_measures_after")
    residents = ids.resident_ids_from_keys(table.column("resident")).to_pylist()
    return [{"resident_id": rid, **row} for rid, row in zip(residents, table.drop(["resident"]).to_pylist(),
                                                             strict=True)]


def ack(con: duckdb.DuckDBPyConnection, provider: str, seq: int, *, principal: str, now: datetime) -> int:
    """Store ``provider``'s acknowledgment of every change up to ``seq``; its position now (an
    acknowledgment never moves it back)."""
    con.execute(q("providerfeed.ack"), {"provider": provider, "seq": seq, "now": now, "principal": principal})
    return acked(con, provider)


def acked(con: duckdb.DuckDBPyConnection, provider: str) -> int:
    return int(con.execute(q("providerfeed.acked"), {"provider": provider}).fetchall()[0][0])


@dataclass(frozen=True)
class Provider:
    """A provider the feed knows of: it has a token, or acknowledged changes."""

    provider: str
    actions: list[str] | None
    """The actions of its live tokens (None: every action, when one of them is unscoped or none is live)."""
    acked: int
    acked_at: datetime | None


def providers(con: duckdb.DuckDBPyConnection) -> list[Provider]:
    out = []
    for name, scopes, unscoped, seq, at in con.execute(q("providerfeed.providers")).fetchall():
        actions = None if unscoped or not scopes else sorted({a for scope in scopes for a in scope})
        out.append(Provider(str(name), actions, int(seq), at))
    return out


def status(con: duckdb.DuckDBPyConnection, deadline: Deadline, now: datetime, tz: str) -> list[dict[str, Any]]:
    """Each provider's acknowledged position, its lag (the changes on its actions after it) and how many
    of those are overdue: recorded longer ago than ``deadline`` (the policy's ``correction_deadline``).

    The deadline is worked out once per recording time (one per rescoring call, not per change), so a
    lag of a million changes costs as many deadlines as calls that made them."""
    out = []
    for p in providers(con):
        groups = con.execute(q("providerfeed.unacked"), {"after": p.acked, "actions": p.actions}).fetchall()
        lag = overdue = 0
        estimated = False
        for recorded_at, changes, _ in groups:
            due = deadline.due(recorded_at)
            lag += changes
            if due.at <= now:
                overdue += changes
                estimated = estimated or due.estimated
        out.append({"provider": p.provider, "actions": p.actions, "acknowledged": p.acked,
                    "acknowledged_at": iso(p.acked_at, tz), "head": max((g[2] for g in groups), default=p.acked),
                    "lag": lag, "overdue": overdue, "deadline": str(deadline), "deadline_estimated": estimated,
                    "oldest_unacknowledged": iso(groups[0][0], tz) if groups else None})
    return out
