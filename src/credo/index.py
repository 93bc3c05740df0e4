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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from credo import decisions, ids, idvectors, settings
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


def stale_in_store(con: duckdb.DuckDBPyConnection, policy: Policy | Sequence[Policy], now: datetime,
                   scope: Keys | None) -> Keys:
    """Residents of ``scope`` (everyone when None) whose stored standing, in any jurisdiction, is not true at
    ``now``: missing, under a policy version no longer in force, computed for a later time, or past its
    ``changes_at``."""
    versions = [p.version for p in ([policy] if isinstance(policy, Policy) else policy)]
    with _scoped(con, scope) as where:
        found = con.execute(
            "SELECT DISTINCT r.resident FROM residents r LEFT JOIN standings s ON s.resident = r.resident "
            f"WHERE {where} (s.resident IS NULL OR NOT list_contains(?::INTEGER[], s.policy_version) "
            "OR s.as_of > ? OR s.changes_at <= ?) ORDER BY r.resident",
            [versions, now, now]).fetchnumpy()["resident"]
    return np.asarray(found, np.int64)


def read_rows(con: duckdb.DuckDBPyConnection, policy: Policy, scope: Keys | None) -> Rows:
    """The index's rows for ``scope`` (everyone when None), as stored: rescore ``stale_in_store`` first."""
    grades, lists = measured(policy)
    with _scoped(con, scope) as where:
        table = con.sql(
            "SELECT r.resident, s.changes_at FROM residents r "
            "JOIN (SELECT * FROM standings WHERE home) s ON s.resident = r.resident "
            f"WHERE {where} TRUE ORDER BY r.resident").to_arrow_table()
        entries = con.execute(
            "SELECT r.resident, s.grade, s.changes_at "
            "FROM residents r JOIN (SELECT * FROM standings WHERE home) s ON s.resident = r.resident "
            f"WHERE {where} (list_contains(?::VARCHAR[], s.grade) OR r.resident IN "
            "(SELECT resident FROM standing_hits WHERE home AND list_contains(?::VARCHAR[], list)))",
            [grades, lists]).fetchall()
        hits = con.execute(
            f"SELECT h.resident, {HIT_COLUMNS} "
            "FROM (SELECT * FROM standing_hits WHERE home) h JOIN residents r ON r.resident = h.resident "
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


COMPACT_AT = 4096
"""How many residents a snapshot may hold apart from its base arrays: an ``apply`` copies only
its changes and those held apart (never more than this), and folds them into new arrays (a copy of
the city's) once they would pass it, or when a new resident must be inserted."""


class DecisionIndex:
    """Registered keys, due times and the measured residents' entries, under one policy.

    Why immutable: a request takes ``rt.index`` once and answers wholly from that snapshot, so a
    policy or a write landing meanwhile never mixes into one answer (one policy's label with
    another's outcome). ``apply``, ``replace`` and ``at`` make a new snapshot; nothing changes one
    once it is made. The base arrays and dict are shared between snapshots; what an ``apply``
    changed is held apart (``_due_over``, ``_entry_over``) until ``COMPACT_AT``.
    """

    __slots__ = ("_actions", "_count", "_due", "_due_over", "_entry_over", "_ids", "_keys", "_label",
                 "_measured", "_over_due", "_over_keys", "generation", "known", "policy")

    def __init__(self, policy: Policy, rows: Rows, generation: int = 0,
                 decision_ids: DecisionIds | None = None, known: int = 0) -> None:
        self.policy = policy
        self._label = policy.label
        self._actions = frozenset(policy.doc.actions)
        self.generation = generation
        self.known = known
        """The audit seq of the last write this snapshot reflects (``credo.serving.runtime``): every
        decision it answers is logged with it, and replayed from the writes up to it."""
        self._ids = decision_ids or DecisionIds()
        self._based(rows.keys, rows.due, dict(rows.measured), {}, {})

    def _based(self, keys: Keys, due: Keys, base: dict[int, Entry], due_over: dict[int, int],
               entry_over: dict[int, Entry | None]) -> None:
        """Set the arrays and what is held apart from them (only while the snapshot is being made)."""
        self._keys, self._due, self._measured = keys, due, base
        self._due_over, self._entry_over = due_over, entry_over
        over = sorted(due_over.items())
        self._over_keys = np.array([k for k, _ in over], np.int64)
        self._over_due = np.array([d for _, d in over], np.int64)
        self._count = len(base) + sum((e is not None) - (k in base) for k, e in entry_over.items())

    def _copy(self) -> DecisionIndex:
        made = object.__new__(DecisionIndex)
        for name in self.__slots__:
            setattr(made, name, getattr(self, name))
        return made

    # -- what is known ------------------------------------------------------------------------
    @property
    def registered(self) -> int:
        return len(self._keys)

    @property
    def measured(self) -> int:
        return self._count

    def now(self) -> datetime:
        """The city's time now, in this snapshot's policy's zone."""
        return settings.now(self.policy.tz)

    def positions(self, keys: Keys) -> tuple[Keys, Keys, npt.NDArray[np.bool_]]:
        """(positions, due times, registered?) of keys."""
        arr = self._keys
        if not len(arr):
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), np.int64), np.zeros(len(keys), np.bool_)
        pos = np.minimum(arr.searchsorted(keys), len(arr) - 1)
        due = self._due[pos]
        if len(self._over_keys):
            at = np.minimum(self._over_keys.searchsorted(keys), len(self._over_keys) - 1)
            due = np.where(self._over_keys[at] == keys, self._over_due[at], due)
        return pos, due, arr[pos] == keys

    def _entry(self, key: int) -> Entry | None:
        over = self._entry_over
        return over[key] if key in over else self._measured.get(key)

    def locate(self, resident_id: str, today: date) -> tuple[int, int, str]:
        """(key, due time, normalised ID) of a registered resident; else the error of ``credo.ids``
        or ``unknown_resident``.

        The fast path checks only what a registered key leaves open (length, digits, check
        character): every registered key passed the full check when it was ingested.
        """
        s = resident_id
        if len(s) == 18 and s.isascii() and s[:17].isdigit():
            key = int(s[:17])
            arr = self._keys
            i = int(arr.searchsorted(key))
            if i < len(arr) and arr[i] == key:
                check = ids.check_char_of_key(key)
                over = self._due_over
                due = over[key] if over and key in over else int(self._due[i])
                if s[17] == check:
                    return key, due, s
                if s[17] == "x" and check == "X":
                    return key, due, s[:17] + "X"
        normalised = ids.normalise_resident_id(resident_id, today)
        key = int(normalised[:17])
        _, found_due, found = self.positions(np.array([key], np.int64))
        if not found[0]:
            raise unknown(resident_id)
        return key, int(found_due[0]), normalised

    def locate_many(self, resident_ids: list[str], today: date
                    ) -> tuple[Keys, npt.NDArray[np.bool_], dict[int, dict[str, Any]]]:
        """(keys, which are registered residents, an error for each position that is not).

        Checked in bulk with ``credo.idvectors.check_resident_ids``; only the bad ones get a
        message, from the scalar check, so they read exactly as a single lookup's would.
        """
        arrow_keys, reasons = idvectors.check_resident_ids(pa.array(resident_ids, pa.string()), today)
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
        over = self._entry_over
        entry = over[key] if over and key in over else self._measured.get(key)
        if entry is not None:
            return decisions.decide(self.policy, self._standing(key, entry, now), action, now)
        rid = resident_id or ids.resident_id_from_key(key)
        return decisions.Decision(self._ids.one(), rid, action, "allow", [], [], self._label, (self._label,))

    def decide_many(self, keys: Keys, action: str, now: datetime
                    ) -> list[tuple[str, str, list[str], list[dict[str, Any]]]]:
        """(decision_id, decision, benefits, reasons) for each registered key, in order.

        A resident without a measure (the common case) costs one dict lookup and gets
        "allow, nothing applies"; ``decisions.decide`` runs for the others, as for ``decide``.
        """
        decisions.require_action(self.policy, action)
        made_ids = self._ids.take(len(keys))
        get = self._entry if self._entry_over else self._measured.get
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
    def apply(self, scope: Keys, rows: Rows) -> DecisionIndex:
        """A new snapshot: this one with what it holds about ``scope`` replaced by ``rows`` (new
        residents are inserted). This snapshot is left as it was, for the requests reading it."""
        due_over = {**self._due_over, **dict(zip(rows.keys.tolist(), rows.due.tolist(), strict=True))}
        entry_over = {**self._entry_over, **{k: rows.measured.get(k) for k in scope.tolist()}}
        made = self._copy()
        _, _, found = self.positions(rows.keys)
        if found.all() and len(due_over) <= COMPACT_AT:
            made._based(self._keys, self._due, self._measured, due_over, entry_over)
        else:
            made._based(*_folded(self._keys, self._due, due_over), _merged(self._measured, entry_over), {}, {})
        return made

    def replace(self, policy: Policy, rows: Rows, generation: int, known: int) -> DecisionIndex:
        """A new snapshot of everything anew (a new policy, a full rescore); decision ids go on."""
        return DecisionIndex(policy, rows, generation, self._ids, known)

    def at(self, generation: int, known: int) -> DecisionIndex:
        """This snapshot, marked as in step with the hub's ``generation`` and its writes up to ``known``."""
        made = self._copy()
        made.generation, made.known = generation, known
        return made


def _folded(keys: Keys, due: Keys, due_over: dict[int, int]) -> tuple[Keys, Keys]:
    """New arrays: ``keys``/``due`` with ``due_over`` written in (keys it adds are inserted in order)."""
    over = sorted(due_over.items())
    over_keys = np.array([k for k, _ in over], np.int64)
    over_due = np.array([d for _, d in over], np.int64)
    pos = np.minimum(keys.searchsorted(over_keys), max(len(keys) - 1, 0))
    new = keys[pos] != over_keys if len(keys) else np.ones(len(over_keys), np.bool_)
    at = keys.searchsorted(over_keys[new])
    keys, due = np.insert(keys, at, over_keys[new]), np.insert(due, at, over_due[new])
    due[keys.searchsorted(over_keys)] = over_due
    return keys, due


def _merged(base: dict[int, Entry], entry_over: dict[int, Entry | None]) -> dict[int, Entry]:
    merged = dict(base)
    for key, entry in entry_over.items():
        if entry is None:
            merged.pop(key, None)
        else:
            merged[key] = entry
    return merged
