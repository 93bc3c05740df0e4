"""The decision index: decisions from memory, kept in step with the stored standings.

Why: a provider's check must take microseconds, and a DuckDB point query costs
about a millisecond. Most residents have no measure at all (their grade is in no
measure's ``grades`` and no record puts them on a list that has a measure), and
for them a decision needs only "is this a registered resident?": a sorted int64
array of registered keys answers that at 8 bytes a resident, and the decision is
"allow, nothing applies". Only residents with a measure get a dict entry, holding
what ``decisions.decide`` reads: grade, list hits and ``changes_at`` — never the
score, so nothing served from here can leak one.

Freshness: every registered resident has a due time (the ``changes_at`` of the
standing the index holds, in µs); past it, the resident is re-read from the
store (rescored there first when the stored standing is no longer true) before
any decision. Writes report the residents they rescored (``Credo.listen``) and
the server re-reads those before the write returns. ``stale_in_store`` and
``read_rows`` are the store side and run where the database is;
``DecisionIndex`` is the memory side and runs in every server process.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from credo import decisions, ids
from credo.errors import NotFound
from credo.policy import Policy
from credo.standing import Hit, Standing

Keys = npt.NDArray[np.int64]
NEVER = int(np.iinfo(np.int64).max)
EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_NONE: list[Any] = []


def micros(when: datetime | None) -> int:
    """Naive city time as µs since 1970 (NEVER for None): comparable with the index's due times."""
    return NEVER if when is None else (when - EPOCH) // _US


def unknown(resident_id: str) -> NotFound:
    return NotFound(f"resident {resident_id} is not registered", code="unknown_resident")


@dataclass(frozen=True, slots=True)
class Entry:
    """What a decision needs of a resident with a measure (no score)."""

    grade: str
    changes_at: datetime | None
    hits: tuple[Hit, ...]


@dataclass
class Rows:
    """What the store says about a set of residents: picklable, so worker processes can receive it."""

    keys: Keys  # registered residents of the scope, sorted
    due: Keys  # aligned with keys: changes_at in µs, NEVER when the standing never changes by itself
    measured: dict[int, Entry]


def measured(policy: Policy) -> tuple[list[str], list[str]]:
    """The grades and lists that some measure names: only they make a resident worth an entry."""
    grades = sorted({g for m in policy.doc.measures for g in m.grades or []})
    lists = sorted({m.list for m in policy.doc.measures if m.list})
    return grades, lists


HIT_COLUMNS = ", ".join(f"h.{f.name}" for f in fields(Hit))
"""The standing_hits columns a ``Hit`` holds, as SQL names (from the dataclass, never from data)."""


def stale_in_store(con: duckdb.DuckDBPyConnection, policy: Policy, now: datetime, scope: Keys | None) -> Keys:
    """Residents of ``scope`` (everyone when None) whose stored standing is not true at ``now``:
    missing, under another policy version, computed for a later time, or past its ``changes_at``."""
    with _scoped(con, scope) as where:
        found = con.execute(
            "SELECT r.resident FROM residents r LEFT JOIN standings s ON s.resident = r.resident "
            f"WHERE {where} "
            "(s.resident IS NULL OR s.policy_version <> ? OR s.as_of > ? OR s.changes_at <= ?)",
            [policy.version, now, now]).fetchnumpy()["resident"]
    return np.asarray(found, np.int64)


def read_rows(con: duckdb.DuckDBPyConnection, policy: Policy, scope: Keys | None) -> Rows:
    """The index's rows for ``scope`` (everyone when None), as stored: rescore ``stale_in_store`` first."""
    grades, lists = measured(policy)
    with _scoped(con, scope) as where:
        table = con.sql(
            "SELECT r.resident, s.changes_at FROM residents r JOIN standings s ON s.resident = r.resident "
            f"WHERE {where} TRUE ORDER BY r.resident").to_arrow_table()
        entries = con.execute(
            "SELECT r.resident, s.grade, s.changes_at "
            "FROM residents r JOIN standings s ON s.resident = r.resident "
            f"WHERE {where} (list_contains(?::VARCHAR[], s.grade) OR r.resident IN "
            "(SELECT resident FROM standing_hits WHERE list_contains(?::VARCHAR[], list)))",
            [grades, lists]).fetchall()
        hits = con.execute(
            f"SELECT h.resident, {HIT_COLUMNS} "
            "FROM standing_hits h JOIN residents r ON r.resident = h.resident "
            f"WHERE {where} list_contains(?::VARCHAR[], h.list) ORDER BY h.resident, h.list, h.takes_effect",
            [lists]).fetchall()
    return Rows(*_arrays(table), _entries(entries, hits))


@contextmanager
def _scoped(con: duckdb.DuckDBPyConnection, scope: Keys | None) -> Iterator[str]:
    """A WHERE prefix limiting ``r.resident`` to ``scope`` (nothing when None)."""
    if scope is None:
        yield ""
        return
    con.register("index_scope", pa.table({"resident": pa.array(scope, pa.int64())}))
    try:
        yield "r.resident IN (SELECT resident FROM index_scope) AND"
    finally:
        con.unregister("index_scope")


def _arrays(table: pa.Table) -> tuple[Keys, Keys]:
    keys = table.column("resident").to_numpy().astype(np.int64)
    due = pc.fill_null(table.column("changes_at").cast(pa.timestamp("us")).cast(pa.int64()), NEVER)
    return keys, due.to_numpy().astype(np.int64)


def _entries(rows: list[tuple[Any, ...]], hits: list[tuple[Any, ...]]) -> dict[int, Entry]:
    by_resident: dict[int, list[Hit]] = {}
    for resident, *rest in hits:
        by_resident.setdefault(int(resident), []).append(Hit(*rest))
    return {int(r): Entry(g, c, tuple(by_resident.get(int(r), ()))) for r, g, c in rows}


class DecisionIds:
    """Decision ids: a random per-process prefix and a counter (a uuid4 costs more than a decision).

    ``next`` on an ``itertools.count`` is atomic under the GIL, so no lock is needed.
    """

    def __init__(self) -> None:
        self.prefix = "d-" + secrets.token_hex(10)
        self._next = itertools.count()

    def one(self) -> str:
        return f"{self.prefix}{next(self._next):012x}"

    def take(self, n: int) -> list[str]:
        p, counter = self.prefix, self._next
        return [f"{p}{next(counter):012x}" for _ in range(n)]


class DecisionIndex:
    """Registered keys, due times and the measured residents' entries, under one policy."""

    def __init__(self, policy: Policy, rows: Rows, generation: int = 0) -> None:
        self.policy = policy
        self._label = policy.label
        self._actions = frozenset(policy.doc.actions)
        self.generation = generation
        self._arrays = (rows.keys, rows.due)
        self._measured = dict(rows.measured)
        self._ids = DecisionIds()
        self._lock = threading.Lock()

    # -- what is known ------------------------------------------------------------------------
    @property
    def registered(self) -> int:
        return len(self._arrays[0])

    @property
    def measured(self) -> int:
        return len(self._measured)

    def positions(self, keys: Keys) -> tuple[Keys, Keys, npt.NDArray[np.bool_]]:
        """(positions, due times, registered?) of keys, from one consistent snapshot."""
        arr, due = self._arrays
        pos = np.minimum(arr.searchsorted(keys), max(len(arr) - 1, 0))
        found = arr[pos] == keys if len(arr) else np.zeros(len(keys), np.bool_)
        return pos, due[pos] if len(arr) else np.zeros(len(keys), np.int64), found

    def locate(self, resident_id: str, today: date) -> tuple[int, int, str]:
        """(key, due time, normalised ID) of a registered resident; else the error of ``credo.ids``
        or ``unknown_resident``.

        The fast path checks only what a registered key leaves open (length, digits, check
        character): every registered key passed the full check when it was ingested.
        """
        s = resident_id
        if len(s) == 18 and s.isascii() and s[:17].isdigit():
            key = int(s[:17])
            arr, due = self._arrays
            i = int(arr.searchsorted(key))
            if i < len(arr) and arr[i] == key:
                check = ids.check_char_of_key(key)
                if s[17] == check:
                    return key, int(due[i]), s
                if s[17] == "x" and check == "X":
                    return key, int(due[i]), s[:17] + "X"
        normalised = ids.normalise_resident_id(resident_id, today)
        key = int(normalised[:17])
        _, found_due, found = self.positions(np.array([key], np.int64))
        if not found[0]:
            raise unknown(resident_id)
        return key, int(found_due[0]), normalised

    def locate_many(self, resident_ids: list[str], today: date
                    ) -> tuple[Keys, npt.NDArray[np.bool_], dict[int, dict[str, Any]]]:
        """(keys, which are registered residents, an error for each position that is not).

        Checked in bulk with ``credo.ids.check_resident_ids``; only the bad ones get a
        message, from the scalar check, so they read exactly as a single lookup's would.
        """
        arrow_keys, reasons = ids.check_resident_ids(pa.array(resident_ids, pa.string()), today)
        valid = arrow_keys.is_valid().to_numpy(zero_copy_only=False)
        keys = pc.fill_null(arrow_keys, 0).to_numpy().astype(np.int64)
        _, _, found = self.positions(keys)
        ok = valid & found
        errors: dict[int, dict[str, Any]] = {}
        for i in np.flatnonzero(~ok).tolist():
            if valid[i]:
                errors[i] = {"code": "unknown_resident", "message": unknown(resident_ids[i]).message,
                             "details": None}
                continue
            try:
                ids.normalise_resident_id(resident_ids[i], today)
                message = str(reasons[i])
            except ids.IdError as exc:
                message = str(exc)
            errors[i] = {"code": str(reasons[i]), "message": message, "details": {"field": "resident_id"}}
        return keys, ok, errors

    def stale(self, keys: Keys, now: datetime) -> Keys:
        """Registered keys whose entry is past its due time: re-read them before deciding."""
        _, due, found = self.positions(keys)
        return np.unique(keys[found & (due <= micros(now))])

    # -- deciding -----------------------------------------------------------------------------
    def decide(self, key: int, action: str, now: datetime,
               resident_id: str | None = None) -> decisions.Decision:
        """One decision (the caller re-read ``stale`` keys first)."""
        if action not in self._actions:
            decisions.require_action(self.policy, action)  # raises, with the actions named
        entry = self._measured.get(key)
        if entry is not None:
            return decisions.decide(self.policy, self._standing(key, entry, now), action, now)
        rid = resident_id or ids.resident_id_from_key(key)
        return decisions.Decision(self._ids.one(), rid, action, "allow", [], [], self._label)

    def decide_many(self, keys: Keys, action: str, now: datetime
                    ) -> list[tuple[str, str, list[str], list[dict[str, Any]]]]:
        """(decision_id, decision, benefits, reasons) for each registered key, in order.

        A resident without a measure (the common case) costs one dict lookup and gets
        "allow, nothing applies"; ``decisions.decide`` runs for the others, as for ``decide``.
        """
        decisions.require_action(self.policy, action)
        made_ids = self._ids.take(len(keys))
        get = self._measured.get
        out: list[tuple[str, str, list[str], list[dict[str, Any]]]] = []
        append = out.append
        for i, key in enumerate(keys.tolist()):
            entry = get(key)
            if entry is None:
                append((made_ids[i], "allow", _NONE, _NONE))
            else:
                d = decisions.decide(self.policy, self._standing(key, entry, now), action, now)
                append((d.decision_id, d.decision, d.benefits, d.reasons))
        return out

    def _standing(self, key: int, entry: Entry, now: datetime) -> Standing:
        """A standing as ``decide`` reads it; the index keeps no score, so 0 stands in for it."""
        return Standing(key, 0, entry.grade, entry.changes_at, now, self.policy.label, list(entry.hits))

    # -- keeping in step ----------------------------------------------------------------------
    def apply(self, scope: Keys, rows: Rows) -> None:
        """Replace what the index holds about ``scope`` by ``rows`` (new residents are inserted)."""
        with self._lock:
            arr, due = self._arrays
            pos, _, found = self.positions(rows.keys)
            if (~found).any():
                new_keys, new_due = rows.keys[~found], rows.due[~found]
                at = arr.searchsorted(new_keys)
                arr, due = np.insert(arr, at, new_keys), np.insert(due, at, new_due)
                self._arrays = (arr, due)
                pos = arr.searchsorted(rows.keys)
            due[pos] = rows.due
            for key in scope.tolist():
                entry = rows.measured.get(key)
                if entry is None:
                    self._measured.pop(key, None)
                else:
                    self._measured[key] = entry

    def replace(self, policy: Policy, rows: Rows, generation: int) -> None:
        """Everything anew (a new policy, a full rescore)."""
        with self._lock:
            self.policy = policy
            self._label = policy.label
            self._actions = frozenset(policy.doc.actions)
            self._arrays = (rows.keys, rows.due)
            self._measured = dict(rows.measured)
            self.generation = generation
