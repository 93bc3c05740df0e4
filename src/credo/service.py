"""The library's front door: every operation the CLI and the HTTP API offer, with its audit trail.

Fronts parse, call one method here, and render. Each method that writes holds
one transaction around the change, the rescoring it causes and its audit
entry, so the standing reflects an accepted record as soon as the call
returns, and a crash leaves none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson

from credo import (
    audit,
    checkpoints,
    decisions,
    feeds,
    governance,
    ids,
    ingest,
    ledger,
    notices,
    objections,
    principals,
    scoring,
    settings,
    standing,
)
from credo import policy as policies
from credo.audit import Entry, Event
from credo.errors import CredoError, Forbidden
from credo.policy import Policy
from credo.principals import OPERATOR_CLI, Principal, a_role
from credo.store import connect, transaction
from credo.times import DEFAULT_TZ, iso, parse_when


class Credo:
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
        self._listeners: list[Callable[[np.ndarray | None], None]] = []
        self.append_audit: Callable[[duckdb.DuckDBPyConnection, Sequence[Sequence[Any]]], audit.Receipts] = audit.append
        """How this service's own audit entries join the log, inside its transaction: straight into
        the table, or (``credo.serving.core``) after the server's journal."""

    @classmethod
    def open(cls, path: Path | str | None = None, *, create: bool = True) -> Credo:
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

    # -- policy -----------------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = policies.current(self.con)
        return self._policy

    @property
    def loaded_policy(self) -> Policy | None:
        """The policy in force if already read: no database access, so safe beside a running call."""
        return self._policy

    def now(self) -> datetime:
        tz = self._policy.tz if self._policy else DEFAULT_TZ
        return settings.now(tz)

    def when(self, text: str | None) -> datetime:
        """A time given by a user (bare date = local midnight), or now."""
        return parse_when(text, self.policy.tz) if text else self.now()

    def apply_policy(self, text: str, who: Principal = OPERATOR_CLI) -> Policy:
        """Check, store as a new version and rescore everyone under it, in one transaction."""
        new = policies.load(text)
        now = settings.now(new.tz)
        with transaction(self.con):
            policies.save(self.con, new, by=who.name, now=now)
            self._rescore(now, None, new)
            self._audit(who, Event.POLICY_APPLIED, policy=new.label, detail={"sha256": new.sha256})
        self._policy = new
        return new

    def initialised(self) -> bool:
        return bool(self.con.execute("SELECT count(*) FROM policies").fetchall()[0][0])

    # -- ingest -----------------------------------------------------------------------------
    def ingest_feed(self, agency: str, feed: feeds.Feed, who: Principal = OPERATOR_CLI,
                    progress: feeds.Progress | None = None) -> ingest.BatchResult:
        """Validate and append one feed, rescore whom it touches: all of it or none of it."""
        self._require_agency(agency)
        now = self.now()
        with transaction(self.con):
            result = ingest.ingest(self.con, self.policy, agency, feed, principal=who.name, now=now,
                                   progress=progress)
            if progress:
                progress("score", 0, feed.rows)
            self._rescore(now, result.residents)
            self._audit(who, Event.BATCH_INGESTED, detail=result.to_json())
        if progress:
            progress("score", feed.rows, feed.rows)
        return result

    def ingest_files(self, agency: str, paths: Iterable[Path], who: Principal = OPERATOR_CLI,
                     progress: feeds.Progress | None = None) -> list[ingest.BatchResult]:
        """Each file is its own batch and transaction; ``progress(phase, rows, total)`` follows each."""
        self._require_agency(agency)
        results = []
        for path in paths:
            feed = feeds.read(path, feeds.columns_for(agency), progress)
            results.append(self.ingest_feed(agency, feed, who, progress))
        return results

    def ingest_rows(self, agency: str, rows: list[dict[str, Any]], who: Principal, source: str) -> ingest.BatchResult:
        """A batch from the API: the same path as a file."""
        return self.ingest_feed(agency, feeds.from_rows(rows, feeds.columns_for(agency), source), who)

    def _require_agency(self, agency: str) -> None:
        if agency not in ("population", "telecom") and agency not in self.policy.agencies:
            raise CredoError(f"agency {agency!r} has no record types in policy {self.policy.label}",
                             code="unknown_agency", details={"agencies": self.policy.agencies})

    def revoke(self, agency: str, record_id: str, reason: str, who: Principal = OPERATOR_CLI) -> int:
        if who.role == "agency" and who.agency != agency:
            raise Forbidden("an agency revokes only its own records")
        now = self.now()
        with transaction(self.con):
            resident = ledger.revoke(self.con, agency, record_id, reason, principal=who.name, now=now)
            self._rescore(now, [resident])
            self._audit(who, Event.RECORD_REVOKED, resident=resident, detail={"record": f"{agency}:{record_id}",
                                                                                "reason": reason})
        return resident

    def _rescore(self, now: datetime, residents: Iterable[int] | None, policy: Policy | None = None) -> int:
        """Rescore (everyone when ``residents`` is None) and tell residents what changed."""
        scope = None if residents is None else np.unique(np.fromiter(residents, np.int64))
        if scope is not None and len(scope) == 0:
            return 0
        if scope is not None and scoring.better_whole(self.con, scope):
            scope = None  # everyone: also the notices of any other standing that changed by time
        notices.snapshot(self.con, scope, now)
        count = scoring.rescore(self.con, policy or self.policy, now, scope)
        notices.emit_changes(self.con, now)
        self._notify(scope)
        return count

    def notices(self, resident_id: str, who: Principal = OPERATOR_CLI) -> list[dict[str, Any]]:
        key = self._may_read(who, resident_id)
        return notices.for_resident(self.con, key, self.policy.tz)

    def rejects(self, agency: str | None = None, limit: int = 1000, after: str | None = None) -> dict[str, Any]:
        return ledger.rejects(self.con, self.policy.tz, agency, limit, after)

    # -- scoring and reading ----------------------------------------------------------------
    def score(self, as_of: datetime | None = None) -> int:
        with transaction(self.con):
            return self._rescore(as_of or self.now(), None)

    def resident(self, resident_id: str) -> int:
        return standing.require_resident(self.con, resident_id, self.now())

    def standing(self, resident_id: str, as_of: datetime | None = None, who: Principal = OPERATOR_CLI,
                 purpose: str | None = None) -> standing.Standing:
        key = self._may_read(who, resident_id)
        found = (standing.at(self.con, self.policy, key, as_of) if as_of
                 else standing.current(self.con, self.policy, key, self.now()))
        with transaction(self.con):
            self._audit(who, Event.READ_STANDING, resident=key, purpose=purpose)
        return found

    def explain(self, resident_id: str, as_of: datetime | None = None, who: Principal = OPERATOR_CLI,
                purpose: str | None = None) -> dict[str, Any]:
        key = self._may_read(who, resident_id)
        out = standing.explain(self.con, self.policy, key, as_of or self.now())
        with transaction(self.con):
            self._audit(who, Event.READ_EXPLANATION, resident=key, purpose=purpose)
        return out

    def _may_read(self, who: Principal, resident_id: str) -> int:
        key = self.resident(resident_id)
        if who.role == "resident" and who.resident != key:
            raise Forbidden("a resident reads only their own file")
        if who.role in ("provider", "auditor"):
            raise Forbidden(f"{a_role(who.role)} never reads a resident's file")
        return key

    # -- decisions --------------------------------------------------------------------------
    def check(self, resident_id: str, action: str, who: Principal = OPERATOR_CLI,
              purpose: str | None = None) -> decisions.Decision:
        return self.check_receipted(resident_id, action, who, purpose)[0]

    def check_receipted(self, resident_id: str, action: str, who: Principal = OPERATOR_CLI,
                        purpose: str | None = None) -> tuple[decisions.Decision, dict[str, Any]]:
        """A decision and the receipt of its audit entry (``{"seq", "hash"}``)."""
        decisions.require_action(self.policy, action)
        key = self.resident(resident_id)
        now = self.now()
        decision = decisions.decide(self.policy, standing.current(self.con, self.policy, key, now), action, now)
        return decision, self.log_decisions(who, [(key, decision)], purpose).receipt()

    def log_decisions(self, who: Principal, made: list[tuple[int, decisions.Decision]],
                      purpose: str | None) -> audit.Receipts:
        now = self.now()
        entries = [audit.decision(now, who.name, who.role, key, d.action, d.decision, d.decision_id, purpose,
                                  d.policy, d.reasons) for key, d in made]
        with transaction(self.con):
            return self.append_audit(self.con, entries)

    # -- objections -------------------------------------------------------------------------
    def open_objection(self, resident_id: str, ref: str, reason: str, who: Principal = OPERATOR_CLI) -> int:
        key = self._may_read(who, resident_id)
        now = self.now()
        with transaction(self.con):
            number = objections.open_objection(self.con, key, ref, reason, principal=who.name, now=now)
            notices.add(self.con, key, "objection.opened", {"objection": number, "record": ref}, now)
            self._rescore(now, [key])
            self._audit(who, Event.OBJECTION_OPENED, resident=key, detail={"objection": number, "record": ref})
        return number

    def resolve_objection(self, number: int, *, uphold: bool, answer: str, who: Principal = OPERATOR_CLI) -> None:
        now = self.now()
        agency = who.agency if who.role == "agency" else None
        with transaction(self.con):
            key = objections.resolve(self.con, number, uphold=uphold, answer=answer, agency=agency,
                                     principal=who.name, now=now)
            notices.add(self.con, key, "objection.resolved", {"objection": number, "upheld": uphold}, now)
            self._rescore(now, [key])
            self._audit(who, Event.OBJECTION_RESOLVED, resident=key,
                        detail={"objection": number, "upheld": uphold})

    def objections(self, *, resident_id: str | None = None, agency: str | None = None,
                   overdue: bool = False) -> list[dict[str, Any]]:
        key = self.resident(resident_id) if resident_id else None
        return objections.listing(self.con, self.policy, self.now(), resident=key, agency=agency,
                                  overdue_only=overdue)

    # -- audit and tokens -------------------------------------------------------------------
    def _audit(self, who: Principal, event: Event, *, resident: int | None = None, purpose: str | None = None,
               policy: str | None = None, detail: Any = None) -> None:
        """Append one audit entry inside the caller's transaction."""
        entry = Entry(self.now(), who.name, who.role, event, resident, None, None, None, purpose,
                      policy or (self._policy.label if self._policy else None),
                      orjson.dumps(detail, default=str).decode() if detail is not None else None)
        self.append_audit(self.con, [entry])

    def backup(self, directory: Path) -> dict[str, Any]:
        from credo import backup

        return backup.backup(self.con, directory)

    def verify_audit(self, public_key: str | None = None,
                     receipts: list[tuple[int, str]] | None = None) -> audit.Verdict:
        """The chain, checked against every signed checkpoint and the receipts given (``credo.checkpoints``)."""
        return checkpoints.verify(self.con, self.path, public_key, receipts)

    def export_audit(self) -> Iterator[dict[str, Any]]:
        """The whole log, oldest first, streamed (``audit.export``)."""
        return audit.export(self.con)

    def create_token(self, role: str, *, agency: str | None = None, provider: str | None = None,
                     resident_id: str | None = None, expires: str | None = None,
                     who: Principal = OPERATOR_CLI) -> tuple[str, principals.Token]:
        """A new token, shown once; ``expires`` as ``principals.expiry`` reads it; an agency the policy knows."""
        principals.check_subject(role, {"agency": agency, "provider": provider, "resident": resident_id})
        if agency is not None:
            self._require_agency(agency)
        resident = ids.resident_key(ids.normalise_resident_id(resident_id, self.now().date())) if resident_id else None
        until, shown = None, None
        if expires is not None:  # the policy's zone: a database with none yet can still get operator tokens
            tz = self.policy.tz
            until = principals.expiry(expires, self.now(), tz)
            shown = iso(until, tz)
        with transaction(self.con):
            token, made = principals.create(self.con, role, agency=agency, provider=provider, resident=resident,
                                            expires_at=until, now=self.now())
            self._audit(who, Event.TOKEN_CREATED, detail={"id": made.id, "principal": made.principal.name,
                                                          "role": role, "expires_at": shown})
        return token, made

    def tokens(self) -> list[dict[str, Any]]:
        """Every token with its state, never its secret."""
        return principals.listing(self.con, self.now(), self.policy.tz)

    def revoke_token(self, number: int, who: Principal = OPERATOR_CLI) -> Principal:
        """Revoke token ``number``: it, and every web session opened with it, stop at once (the hub
        announces the change to every process before this returns)."""
        with transaction(self.con):
            named = principals.revoke(self.con, number, principal=who.name, now=self.now())
            self._audit(who, Event.TOKEN_REVOKED, detail={"id": number, "principal": named.name})
        return named

    def end_session(self, session: str, until: int) -> None:
        """A web session signed out (``principals.end_session``)."""
        principals.end_session(self.con, session, until=until, now=self.now())

    # -- governance -------------------------------------------------------------------------
    def whatif(self, text: str, as_of: datetime | None = None, *, sample: int = 5, engine: str = "duckdb",
               who: Principal = OPERATOR_CLI, purpose: str = "whatif") -> dict[str, Any]:
        """The impact of a proposed policy (its YAML text) on the current ledger; nothing is applied.

        Audited as an operator's read of every resident's file in aggregate (spec §6).
        """
        if who.role != "operator":
            raise Forbidden(f"{a_role(who.role)} does not run what-if reports")
        proposed = policies.load(text)
        out = governance.whatif(self.con, self.policy, proposed, as_of or self.now(), sample=sample, engine=engine)
        self._audit_report(who, "whatif", purpose, out, engine=engine, proposed=proposed.label)
        return out

    def fairness(self, as_of: datetime | None = None, *, min_group: int = 30, engine: str = "duckdb",
                 who: Principal = OPERATOR_CLI, purpose: str = "fairness") -> dict[str, Any]:
        """Outcomes under the policy in force by district, sex and age band, with four-fifths flags."""
        if who.role not in ("operator", "auditor"):
            raise Forbidden(f"{a_role(who.role)} does not read fairness reports")
        out = governance.fairness(self.con, self.policy, as_of or self.now(), min_group=min_group, engine=engine)
        self._audit_report(who, "fairness", purpose, out, engine=engine)
        return out

    def _audit_report(self, who: Principal, name: str, purpose: str, report: dict[str, Any], **more: str) -> None:
        with transaction(self.con):
            self._audit(who, Event.READ_REPORT, purpose=purpose, detail={
                "report": name, "as_of": report["as_of"], "residents": report["residents"], **more})

    # -- change listeners and the HTTP API's reads ---------------------------------------------
    def listen(self, listener: Callable[[np.ndarray | None], None]) -> None:
        """Call ``listener`` with the residents whose standing a write rescored (None: everyone).

        It runs inside the write's transaction, so it should only take note; the server's
        decision index re-reads those residents once the write has returned.
        """
        self._listeners.append(listener)

    def _notify(self, residents: np.ndarray | None) -> None:
        for listener in self._listeners:
            listener(residents)

    def records(self, resident_id: str, who: Principal = OPERATOR_CLI,
                purpose: str | None = None) -> list[dict[str, Any]]:
        """A resident's records as stored, with revocations; an agency sees only its own."""
        key = self._may_read(who, resident_id)
        rows = ledger.records_of(self.con, key, who.agency if who.role == "agency" else None)
        with transaction(self.con):
            self._audit(who, Event.READ_RECORDS, resident=key, purpose=purpose)
        return rows

    def audit_page(self, who: Principal, *, resident_id: str | None = None, after: int = 0, limit: int = 100,
                   purpose: str | None = None) -> list[dict[str, Any]]:
        """Audit entries after ``after``: a resident's own accesses, or (auditor, operator) any."""
        key = self.resident(resident_id) if resident_id else None
        if who.role == "resident" and (key is None or key != who.resident):
            raise Forbidden("a resident lists only the accesses to their own file")
        if who.role not in ("resident", "auditor", "operator"):
            raise Forbidden(f"{a_role(who.role)} does not read the audit log")
        rows = audit.page(self.con, resident=key, after=after, limit=limit)
        event = Event.READ_ACCESSES if who.role == "resident" else Event.AUDIT_READ
        with transaction(self.con):
            self._audit(who, event, resident=key, purpose=purpose,
                        detail={"after": after, "entries": len(rows)})
        return rows

    def batch_rows(self, result: ingest.BatchResult, record_ids: list[str | None]) -> list[dict[str, Any]]:
        """Each row of an API batch: accepted, duplicate (already in the ledger) or rejected and why."""
        rejected = {int(line): (reason, field, message) for line, reason, field, message in self.con.execute(
            "SELECT line, reason, field, message FROM rejects WHERE batch = ?", [result.batch]).fetchall()}
        batch_of: dict[str, int] = {}
        if result.agency not in ("population", "telecom"):
            wanted = [r for r in record_ids if r]
            batch_of = dict(self.con.execute(
                "SELECT record_id, batch FROM ledger "
                "WHERE agency = ? AND list_contains(?::VARCHAR[], record_id)",
                [result.agency, wanted]).fetchall())
        out: list[dict[str, Any]] = []
        for line, record_id in enumerate(record_ids, start=1):
            row: dict[str, Any] = {"line": line, "record_id": record_id}
            if line in rejected:
                reason, field, message = rejected[line]
                row.update(status="rejected", reason=reason, field=field, message=message)
            elif record_id is not None and batch_of.get(record_id, result.batch) != result.batch:
                row["status"] = "duplicate"
            else:
                row["status"] = "accepted"
            out.append(row)
        return out

    def freshen(self, residents: np.ndarray | None, now: datetime | None = None) -> int:
        """Rescore residents whose stored standing stopped being true by itself (its ``changes_at``
        passed): the path every write takes, so notices are written too."""
        with transaction(self.con):
            return self._rescore(now or self.now(), residents)

    # -- the web pages (credo.web) --------------------------------------------------------------
    def dashboard(self, who: Principal = OPERATOR_CLI, purpose: str = "dashboard", *,
                  days: int = 30) -> dict[str, Any]:
        """The operator's dashboard (``credo.dashboard.overview``), audited as a read of aggregates.

        Standings past their ``changes_at`` are rescored first (the way every write goes), so the
        aggregates count each resident as the API would answer for them now.
        """
        from credo import dashboard, index

        if who.role not in ("operator", "auditor"):
            raise Forbidden(f"{a_role(who.role)} does not read the dashboard")
        now = self.now()
        stale = index.stale_in_store(self.con, self.policy, now, None)
        if len(stale):
            self.freshen(stale, now)
        out = dashboard.overview(self.con, self.policy, now, days=days)
        with transaction(self.con):
            self._audit(who, Event.AUDIT_READ, purpose=purpose, detail={"view": "dashboard"})
        return out

    def accesses(self, resident_id: str, who: Principal = OPERATOR_CLI, *, limit: int = 100,
                 purpose: str | None = None) -> dict[str, Any]:
        """The latest audit entries about a resident's file, newest first (the API pages oldest
        first), and their total; audited like ``audit_page``."""
        from credo import dashboard

        key = self._may_read(who, resident_id)
        out = dashboard.accesses(self.con, key, self.policy.tz, limit)
        event = Event.READ_ACCESSES if who.role == "resident" else Event.AUDIT_READ
        with transaction(self.con):
            self._audit(who, event, resident=key, purpose=purpose, detail={"entries": len(out["entries"])})
        return out
