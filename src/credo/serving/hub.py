"""The hub: what the fronts ask of the store while the server runs, in one typed interface.

DuckDB allows one writing process, so while ``credo serve`` runs one process holds the database
(``credo.serving.core.Core``) and every request reaches the store through a ``Hub``: the ``Core``
itself when the process serves alone, or a ``credo.serving.remote.RemoteHub`` in each worker
process, which asks the ``Core`` over a Unix socket. Both offer the same methods.

Each operation the fronts use is a method here with its own parameters and result, and is one
service call: the ``Credo`` method of the same name run by ``service``, the one primitive the two
hubs implement differently (on the core's owner thread, or as a message over the socket). So a
reader, and mypy, can follow every request from its route to the store.

The hub also keeps a change feed: every write that rescored residents bumps a generation number
and records whom it touched, with the audit entry of the last write announced, so each process's
decision index can catch up (``changes_since``) before it decides again and knows which writes
its decisions rest on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import numpy as np

from credo import audit, index
from credo.decisions import Decision
from credo.ids import ResidentId
from credo.ingest import BatchResult
from credo.policy import Policy
from credo.principals import Directory, Principal, Token
from credo.service import Credo
from credo.standing import Standing

P = ParamSpec("P")
T = TypeVar("T")

PRINCIPALS = "principals"
"""A change-feed marker: the tokens changed (not any resident)."""

Change = index.Keys | str | None
"""What one write changed: residents, PRINCIPALS, or None for everyone (a policy, a full rescore)."""

Json = dict[str, Any]


class Service(Protocol):
    """The store's operations that the fronts use: each is the ``Credo`` method of its name, run as
    one service call. ``who`` is always named: the hub never assumes an operator."""

    def service(self, operation: Callable[Concatenate[Credo, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``operation`` (a method of ``Credo``) on the store, as the one writer, and return its result."""
        ...

    # -- a resident's file
    def standing(self, resident_id: ResidentId, *, who: Principal, purpose: str | None,
                 as_of: datetime | None = None, known_at: datetime | None = None) -> Standing:
        return self.service(Credo.standing, resident_id, as_of, who=who, purpose=purpose, known_at=known_at)

    def explain(self, resident_id: ResidentId, *, who: Principal, purpose: str | None,
                as_of: datetime | None = None, known_at: datetime | None = None) -> Json:
        return self.service(Credo.explain, resident_id, as_of, who=who, purpose=purpose, known_at=known_at)

    def check_receipted(self, resident_id: ResidentId, action: str, who: Principal, purpose: str | None, *,
                        as_of: datetime | None, known_at: datetime | None) -> tuple[Decision, Json]:
        """A decision as it would have been given at T from what was known at K, with its receipt
        (from the store: the decision index holds only the present)."""
        return self.service(Credo.check_receipted, resident_id, action, who, purpose, as_of=as_of,
                            known_at=known_at)

    def records(self, resident_id: ResidentId, *, who: Principal, purpose: str | None) -> list[Json]:
        return self.service(Credo.records, resident_id, who=who, purpose=purpose)

    def notices(self, resident_id: ResidentId, *, who: Principal) -> list[Json]:
        return self.service(Credo.notices, resident_id, who=who)

    def accesses(self, resident_id: ResidentId, who: Principal, *, limit: int, purpose: str | None) -> Json:
        return self.service(Credo.accesses, resident_id, who, limit=limit, purpose=purpose)

    # -- agencies' records
    def ingest_rows(self, agency: str, rows: list[Any], who: Principal, source: str) -> BatchResult:
        return self.service(Credo.ingest_rows, agency, rows, who, source)

    def batch_rows(self, result: BatchResult, record_ids: list[str | None]) -> list[Json]:
        return self.service(Credo.batch_rows, result, record_ids)

    def revoke(self, agency: str, record_id: str, reason: str, who: Principal) -> int:
        return self.service(Credo.revoke, agency, record_id, reason, who)

    def rejects(self, agency: str | None, limit: int, after: str | None) -> Json:
        return self.service(Credo.rejects, agency, limit, after)

    # -- identity review
    def review_items(self, who: Principal, *, item: int | None = None, purpose: str | None = None) -> list[Json]:
        return self.service(Credo.review_items, who, item=item, purpose=purpose)

    def confirm_review(self, number: int, resident_id: ResidentId, reason: str, who: Principal) -> Json:
        return self.service(Credo.confirm_review, number, resident_id, reason, who)

    def decline_review(self, number: int, reason: str, who: Principal) -> Json:
        return self.service(Credo.decline_review, number, reason, who)

    # -- objections
    def open_objection(self, resident_id: ResidentId, ref: str, reason: str, who: Principal) -> int:
        return self.service(Credo.open_objection, resident_id, ref, reason, who)

    def resolve_objection(self, number: int, *, uphold: bool, answer: str, who: Principal) -> None:
        return self.service(Credo.resolve_objection, number, uphold=uphold, answer=answer, who=who)

    def objections(self, *, resident_id: ResidentId | None = None, agency: str | None = None,
                   overdue: bool = False) -> list[Json]:
        return self.service(Credo.objections, resident_id=resident_id, agency=agency, overdue=overdue)

    def redress(self, *, who: Principal, provider: str | None = None,
                resident_id: ResidentId | None = None) -> list[Json]:
        return self.service(Credo.redress, who, provider=provider, resident_id=resident_id)

    # -- the audit log
    def audit_page(self, who: Principal, *, resident_id: str | None = None, after: int = 0, limit: int = 100,
                   purpose: str | None = None) -> list[Json]:
        return self.service(Credo.audit_page, who, resident_id=resident_id, after=after, limit=limit,
                            purpose=purpose)

    def verify_audit(self, *, receipts: list[tuple[int, str]] | None = None) -> audit.Verdict:
        return self.service(Credo.verify_audit, receipts=receipts)

    # -- policy, tokens, sessions, backups, reports
    def apply_policy(self, text: str, who: Principal) -> Policy:
        return self.service(Credo.apply_policy, text, who)

    def create_token(self, role: str, *, agency: str | None, provider: str | None, resident_id: str | None,
                     expires: str | None, who: Principal, actions: list[str] | None = None) -> tuple[str, Token]:
        return self.service(Credo.create_token, role, agency=agency, provider=provider, resident_id=resident_id,
                            expires=expires, actions=actions, who=who)

    def tokens(self) -> list[Json]:
        return self.service(Credo.tokens)

    def revoke_token(self, number: int, who: Principal) -> Principal:
        return self.service(Credo.revoke_token, number, who)

    def end_session(self, session: str, until: int) -> None:
        return self.service(Credo.end_session, session, until)

    def backup(self, directory: Path) -> Json:
        return self.service(Credo.backup, directory)

    def dashboard(self, who: Principal, purpose: str) -> Json:
        return self.service(Credo.dashboard, who, purpose)

    def whatif(self, text: str, *, who: Principal, purpose: str) -> Json:
        return self.service(Credo.whatif, text, who=who, purpose=purpose)

    # -- the providers' change feed
    def feed_snapshot(self, who: Principal, provider: str | None) -> Json:
        return self.service(Credo.feed_snapshot, who, provider)

    def feed_page(self, who: Principal, after: int, limit: int, provider: str | None) -> Json:
        return self.service(Credo.feed_page, who, after, limit, provider)

    def feed_ack(self, who: Principal, seq: int) -> Json:
        return self.service(Credo.feed_ack, who, seq)

    def feed_status(self, who: Principal) -> Json:
        return self.service(Credo.feed_status, who)


class Hub(Service, Protocol):
    """What the fronts need of the store, in-process (``Core``) or in another process (``RemoteHub``)."""

    def generation(self) -> int:
        """The change feed's generation: how many changes were announced (cheap, read on every request)."""
        ...

    def changes_since(self, generation: int) -> tuple[int, int, list[Change] | None]:
        """The generation now, the audit entry of the last write announced by then (an index caught up
        to that generation reflects every write up to it), and the changes after ``generation``; None
        when they are no longer all kept (reload everything)."""
        ...

    def index_rows(self, scope: index.Keys | None, now: datetime) -> tuple[index.Rows, int]:
        """Rows for a decision index (everyone when ``scope`` is None), rescored first where stale, and
        the audit entry of the last write committed when they were read."""
        ...

    def policy(self) -> Policy: ...
    def principals(self) -> Directory: ...

    async def log(self, entries: Sequence[Sequence[Any]]) -> audit.Receipts:
        """Return the entries' receipts once they are durable in the log (group commit)."""
        ...

    def stats(self) -> dict[str, float]: ...
    def close(self) -> None: ...


TOKEN_WRITES: frozenset[Callable[..., Any]] = frozenset({Credo.create_token, Credo.revoke_token, Credo.end_session})
"""Service operations that change the tokens or sessions: announced as PRINCIPALS on the feed."""

SERVED: frozenset[Callable[..., Any]] = frozenset(
    getattr(Credo, name) for name, member in vars(Service).items()
    if callable(member) and not name.startswith("_") and name != "service")
"""The ``Credo`` methods behind ``Service``'s operations, read off the protocol: all that a worker
process may ask the hub to run (``credo.serving.remote``)."""


def scope_of(changes: list[Change]) -> tuple[index.Keys | None, bool]:
    """(residents to re-read, None for everyone; whether the tokens changed) of a list of changes."""
    tokens = any(isinstance(c, str) for c in changes)
    keys = [c for c in changes if not isinstance(c, str)]
    if any(c is None for c in keys):
        return None, tokens
    arrays = [np.asarray(c, np.int64) for c in keys if c is not None]
    return (np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, np.int64)), tokens
