"""What every operation of ``credo.service.Credo`` stands on: one open database, its policy in force,
the clock, the audit entry of an operation, and the one path that makes standings current.

That path is ``_rescore`` (``freshen`` when no write holds a transaction). Every standing that
changes goes through it: a write (ingest, revocation, objection step, policy), a read of a standing
that stopped being true by itself (its ``changes_at`` passed: ``_current``), the dashboard, and the
server catching up on due times (``credo.serving.core``). So each change is told once, whichever
caller noticed it first: the notices it causes (``credo.notices``), and the listeners (``listen``)
that keep every decision index in step. ``credo.standing`` stores nothing; it only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import duckdb
import numpy as np
import orjson

from credo import (
    audit,
    checkpoints,
    jurisdictions,
    known,
    notices,
    permissions,
    providerfeed,
    scoring,
    settings,
    standing,
)
from credo import policy as policies
from credo.audit import Entry, Event
from credo.errors import CredoError, NotFound
from credo.ids import ResidentId, resident_id_from_key
from credo.permissions import Op
from credo.policy import Policy
from credo.principals import Principal
from credo.providerfeed import Cause
from credo.store import connect, transaction
from credo.times import DEFAULT_TZ, parse_when

Listener = Callable[[np.ndarray | None], None]


class ServiceBase:
    """One open database, its policy in force and the clock."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | str | None = None) -> None:
        self.con = con
        self.path = path
        self.notary = checkpoints.Notary(path)
        """Signs the log's head (``credo.checkpoints``): when this service closes, if it appended
        entries, and, under the server, every second or so (``credo.serving.core``)."""
        self._opened_head = audit.head(con)
        self._closed = False
        self._policy: Policy | None = None
        self._in_force: list[Policy] | None = None
        self._listeners: list[Listener] = []
        self.append_audit: Callable[[duckdb.DuckDBPyConnection, Sequence[Sequence[Any]]], audit.Receipts] = audit.append
        """How this service's own audit entries join the log, inside its transaction: straight into
        the table, or (``credo.serving.core``) after the server's journal."""

    @classmethod
    def open(cls, path: Path | str | None = None, *, create: bool = True) -> Self:
        """Open the store; audit entries a stopped server left in its journal are moved in first.

        ``create=False`` (every CLI command but ``init``) refuses a path holding no Credo database,
        where a mistyped ``--db`` would otherwise be a new, empty city."""
        con = connect(path, create=create)
        credo = cls(con, path)
        audit.recover(con, audit.journal_path(path))  # after the head is noted: recovered entries get signed
        return credo

    def close(self) -> None:
        """Sign the head if this service appended entries (a key configured), then close (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            head = audit.head(self.con)
            if head != self._opened_head:
                self.checkpoint(head)
        finally:
            self.con.close()

    def checkpoint(self, head: tuple[int, str] | None = None) -> checkpoints.Checkpoint | None:
        """Sign the log's head (or ``head``) now; None without a key or when it is signed already."""
        tz = self._policy.tz if self._policy else DEFAULT_TZ
        return self.notary.sign(self.con, head or audit.head(self.con), checkpoints.signed_at(self.now(), tz))

    # -- the policy and the clock -------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = policies.current(self.con)
        return self._policy

    @property
    def in_force(self) -> list[Policy]:
        """The policy of each jurisdiction in force (``credo.jurisdictions``), oldest applied first."""
        if self._in_force is None:
            self._in_force = policies.in_force(self.con)
            if self._policy is None and self._in_force:  # the latest applied, as ``policies.current`` reads it
                self._policy = max(self._in_force, key=lambda p: p.version)
        return self._in_force

    @property
    def loaded_policy(self) -> Policy | None:
        """The policy in force if already read: no database access, so safe beside a running call."""
        return self._policy

    def initialised(self) -> bool:
        return bool(self.con.execute("SELECT count(*) FROM policies").fetchall()[0][0])

    def now(self) -> datetime:
        tz = self._policy.tz if self._policy else DEFAULT_TZ
        return settings.now(tz)

    def when(self, text: str | None) -> datetime:
        """A time given by a user (bare date = local midnight), or now."""
        return parse_when(text, self.policy.tz) if text else self.now()

    # -- whom an operation is about, and its audit entry --------------------------------------
    def resident(self, resident_id: ResidentId) -> int:
        return standing.require_resident(self.con, resident_id, self.now())

    def _may_read(self, op: Op, who: Principal, resident_id: ResidentId) -> int:
        """The file's key, once ``who`` may do ``op`` on it (``credo.permissions``; before the lookup, which
        would tell whether someone else exists)."""
        permissions.require(op, who, resident_id=resident_id.text)
        return self.resident(resident_id)

    @property
    def submittable(self) -> Policy:
        """The types agencies may submit: every policy in force's (``credo.jurisdictions.submittable``)."""
        return jurisdictions.submittable(self.in_force)

    def _require_agency(self, agency: str) -> None:
        allowed = self.submittable
        if agency not in ("population", "telecom") and agency not in allowed.agencies:
            raise CredoError(f"agency {agency!r} has no record types in the policies in force",
                             code="unknown_agency", details={"agencies": allowed.agencies})

    def _audit(self, who: Principal, event: Event, *, resident: int | None = None, purpose: str | None = None,
               policy: str | None = None, detail: Any = None) -> int:
        """Append one audit entry inside the caller's transaction; its sequence number."""
        entry = Entry(self.now(), who.name, who.role, event, resident, None, None, None, purpose,
                      policy or (self._policy.label if self._policy else None),
                      orjson.dumps(detail, default=str).decode() if detail is not None else None)
        return self.append_audit(self.con, [entry]).first

    def _known(self, seq: int, kind: str, **keys: Any) -> None:
        """Note that the write whose audit entry is ``seq`` is known from now (``credo.known``): the last
        statement of the write's transaction, so it is known from its commit on."""
        known.note(self.con, seq, self.now(), kind, **keys)

    # -- making standings current: the one rescoring path -------------------------------------
    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with the residents whose standing was rescored (None: everyone).

        It runs inside the rescoring's transaction, so it should only take note; the server's
        decision index re-reads those residents once the call has returned.
        """
        self._listeners.append(listener)

    def _notify(self, residents: np.ndarray | None) -> None:
        for listener in self._listeners:
            listener(residents)

    def _rescore(self, now: datetime, residents: Iterable[int] | None, policy: Policy | None = None, *,
                 cause: Cause, was: Policy | None = None) -> int:
        """Rescore (everyone when ``residents`` is None) inside the caller's transaction, and tell what
        changed: notices for the residents, the provider feed for every decision that changed
        (``cause``: why the caller rescored; ``was``: the policy the stored standings were scored
        under, when the call changes it), the listeners for every decision index."""
        scope = None if residents is None else np.unique(np.fromiter(residents, np.int64))
        if scope is not None and len(scope) == 0:
            return 0
        if scope is not None and scoring.better_whole(self.con, scope):
            scope = None  # everyone: also the notices of any other standing that changed by time
        scored = policy or self.policy
        notices.snapshot(self.con, scope)
        providerfeed.before(self.con, scope, was or scored, now)
        if policy is not None:  # a policy applied: its jurisdiction's changed, the others stay
            self._in_force = None
        count = scoring.rescore(self.con, self.in_force, now, scope)
        notices.emit_changes(self.con, now)
        providerfeed.append(self.con, scored, now, cause)
        self._notify(scope)
        return count

    def freshen(self, residents: np.ndarray | None, now: datetime | None = None) -> int:
        """``_rescore`` in a transaction of its own: how a read makes current the standings that
        stopped being true by themselves (a ``changes_at`` passed, another policy), here or in the
        server (``credo.serving.core``, for the residents ``credo.index.stale_in_store`` finds, and
        its scheduler over the due times). What changes is told as changed by time."""
        with transaction(self.con):
            return self._rescore(now or self.now(), residents, cause=Cause.TIME)

    def _current(self, key: int, now: datetime) -> standing.Standing:
        """The standing now: the stored one while still true, else made current first (``freshen``)."""
        found = standing.stored(self.con, self.in_force, key, now)
        if found is None:
            self.freshen(np.array([key], np.int64), now)
            found = standing.stored(self.con, self.in_force, key, now)
        if found is None:  # registered, but in a district no jurisdiction in force holds (spec §9)
            raise NotFound(f"resident {resident_id_from_key(key)} is held by no jurisdiction in force",
                           code="no_jurisdiction")
        return found
