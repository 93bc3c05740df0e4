"""The library's front door: every operation the CLI and the HTTP API offer, with its audit trail.

Fronts parse, call one method here, and render. Each method that writes holds
one transaction around the change, the rescoring it causes and its audit
entry, so the standing reflects an accepted record as soon as the call
returns, and a crash leaves none of it.

What every operation stands on (the open database, the clock, the audit entry,
and the one rescoring path that writes the notices and tells the listeners of
every standing that changes, whichever caller made it current) is
``credo.servicebase``; who may call what is ``credo.permissions``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from credo import (
    audit,
    checkpoints,
    decisions,
    feeds,
    governance,
    ids,
    ingest,
    jurisdictions,
    known,
    ledger,
    notices,
    objections,
    permissions,
    principals,
    redress,
    settings,
    standing,
)
from credo import policy as policies
from credo.audit import Event
from credo.ids import ResidentId
from credo.known import Known
from credo.permissions import Op
from credo.policy import Policy
from credo.principals import OPERATOR_CLI, Principal
from credo.providerfeed import Cause
from credo.servicefeed import FeedService
from credo.servicereview import ReviewService
from credo.store import transaction
from credo.times import iso


class Credo(FeedService, ReviewService):
    """Every operation on one open database, each audited (``ServiceBase``: what they stand on;
    ``FeedService``: the providers' change feed; ``ReviewService``: the identity review's)."""

    # -- policy -----------------------------------------------------------------------------
    def apply_policy(self, text: str, who: Principal = OPERATOR_CLI) -> Policy:
        """Check, store as a new version and rescore everyone under it, in one transaction."""
        new = policies.load(text)
        now = settings.now(new.tz)
        with transaction(self.con):
            jurisdictions.require_fits(policies.in_force(self.con), new)
            was = self.policy if self.initialised() else None
            policies.save(self.con, new, by=who.name, now=now)
            self._rescore(now, None, new, cause=Cause.POLICY, was=was)
            seq = self._audit(who, Event.POLICY_APPLIED, policy=new.label, detail={"sha256": new.sha256})
            self._known(seq, "policy", policy=new.version)
        self._policy = new
        return new

    def apply_policies(self, texts: Iterable[str], who: Principal = OPERATOR_CLI) -> list[Policy]:
        """Several policies, one per jurisdiction (``credo init --policy A --policy B``): all checked, each
        alone and together, before the first is applied, then applied in the order given."""
        given = [policies.load(text) for text in texts]
        jurisdictions.require_together([(p.name, p) for p in given])
        return [self.apply_policy(p.text, who) for p in given]

    def policy_list(self) -> list[dict[str, Any]]:
        """Each jurisdiction with its policy in force and every version it had (``credo policy list``)."""
        return jurisdictions.listing(self.con, self.policy.tz)

    # -- ingest -----------------------------------------------------------------------------
    def ingest_feed(self, agency: str, feed: feeds.Feed, who: Principal = OPERATOR_CLI,
                    progress: feeds.Progress | None = None) -> ingest.BatchResult:
        """Validate and append one feed, rescore whom it touches: all of it or none of it."""
        self._require_agency(agency)
        now = self.now()
        with transaction(self.con):
            result = ingest.ingest(self.con, self.submittable, agency, feed, principal=who.name, now=now,
                                   progress=progress)
            if progress:
                progress("score", 0, feed.rows)
            self._rescore(now, result.residents, cause=Cause.RECORD)
            seq = self._audit(who, Event.BATCH_INGESTED, detail=result.to_json())
            self._known(seq, "batch", batch=result.batch)
        if result.model_estimated:
            self.write_identity_model()
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

    def revoke(self, agency: str, record_id: str, reason: str, who: Principal = OPERATOR_CLI) -> int:
        permissions.require(Op.REVOKE, who, agency=agency)
        now = self.now()
        with transaction(self.con):
            resident = ledger.revoke(self.con, agency, record_id, reason, principal=who.name, now=now)
            self._rescore(now, [resident], cause=Cause.REVOCATION)
            seq = self._audit(who, Event.RECORD_REVOKED, resident=resident,
                              detail={"record": f"{agency}:{record_id}", "reason": reason})
            self._known(seq, "revocation", agency=agency, record_id=record_id)
            redress.find(self.con, resident, now)
        return resident

    def notices(self, resident_id: ResidentId, who: Principal = OPERATOR_CLI) -> list[dict[str, Any]]:
        key = self._may_read(Op.READ_NOTICES, who, resident_id)
        return notices.for_resident(self.con, key, self.policy.tz)

    def rejects(self, agency: str | None = None, limit: int = 1000, after: str | None = None) -> dict[str, Any]:
        return ledger.rejects(self.con, self.policy.tz, agency, limit, after)

    # -- scoring and reading ----------------------------------------------------------------
    def score(self, as_of: datetime | None = None) -> int:
        """Everyone rescored (``credo score``: the nightly run that tells what changed by time)."""
        return self.freshen(None, as_of or self.now())

    def standing(self, resident_id: ResidentId, as_of: datetime | None = None, who: Principal = OPERATOR_CLI,
                 purpose: str | None = None, known_at: datetime | None = None) -> standing.Standing:
        """At T = ``as_of`` (now), from what was known at K = ``known_at`` (now: the stored standing
        serves it while it is true, at no cost beyond today's)."""
        key = self._may_read(Op.READ_STANDING, who, resident_id)
        if known_at is not None:
            then = Known(known_at)
            found = standing.at_in_force(self.con, known.policies_at(self.con, then), key, as_of or self.now(), then)
            found.known_at = known_at
        elif as_of:
            found = standing.at_in_force(self.con, self.in_force, key, as_of)
        else:
            found = self._current(key, self.now())
        with transaction(self.con):
            self._audit(who, Event.READ_STANDING, resident=key, purpose=purpose)
        return found

    def explain(self, resident_id: ResidentId, as_of: datetime | None = None, who: Principal = OPERATOR_CLI,
                purpose: str | None = None, known_at: datetime | None = None) -> dict[str, Any]:
        key = self._may_read(Op.READ_EXPLANATION, who, resident_id)
        if known_at is not None:
            then = Known(known_at)
            out = standing.explain_in_force(self.con, known.policies_at(self.con, then), key, as_of or self.now(), then)
            out["known_at"] = iso(known_at, self.policy.tz)
            with transaction(self.con):
                self._audit(who, Event.READ_EXPLANATION, resident=key, purpose=purpose)
            return out
        if as_of is None:
            as_of = self.now()
            self._current(key, as_of)  # the explanation is computed; this tells what changed by time
        out = self._mark_reviewed(key, standing.explain_in_force(self.con, self.in_force, key, as_of))
        with transaction(self.con):
            self._audit(who, Event.READ_EXPLANATION, resident=key, purpose=purpose)
        return out

    # -- decisions --------------------------------------------------------------------------
    def check(self, resident_id: ResidentId, action: str, who: Principal = OPERATOR_CLI,
              purpose: str | None = None) -> decisions.Decision:
        return self.check_receipted(resident_id, action, who, purpose)[0]

    def check_receipted(self, resident_id: ResidentId, action: str, who: Principal = OPERATOR_CLI,
                        purpose: str | None = None, *, as_of: datetime | None = None,
                        known_at: datetime | None = None) -> tuple[decisions.Decision, dict[str, Any]]:
        """A decision and the receipt of its audit entry (``{"seq", "hash"}``): now, from the stored
        standing; or as it would have been given at T = ``as_of`` from what was known at K =
        ``known_at`` (either defaults to now), logged with the times asked about."""
        permissions.require(Op.CHECK, who, resident_id=resident_id.text, action=action)
        now = self.now()
        if as_of is None and known_at is None:
            decisions.require_named(self.in_force, action)
            key = self.resident(resident_id)
            decision = decisions.decide_across(self.in_force, self._current(key, now), action, now)
            return decision, self.log_decisions(who, [(key, decision)], purpose, now).receipt()
        t, then = as_of or now, Known(known_at or now)
        in_force = known.policies_at(self.con, then)
        decisions.require_named(in_force, action)
        key = self.resident(resident_id)
        decision = decisions.decide_across(in_force, standing.at_in_force(self.con, in_force, key, t, then), action, t)
        asked = {"as_of": t.isoformat(), "known_at": then.at.isoformat()}  # naive city time, as stored
        return decision, self.log_decisions(who, [(key, decision)], purpose, now, asked).receipt()

    def log_decisions(self, who: Principal, made: list[tuple[int, decisions.Decision]],
                      purpose: str | None, now: datetime | None = None,
                      asked: dict[str, str] | None = None) -> audit.Receipts:
        """Log decisions made at ``now`` (the time they were decided at: a replay recomputes them then)."""
        now = now or self.now()
        entries = [audit.decision(now, who.name, who.role, key, d.action, d.decision, d.decision_id, purpose,
                                  d.policy, d.reasons, d.benefits, asked) for key, d in made]
        with transaction(self.con):
            return self.append_audit(self.con, entries)

    # -- objections -------------------------------------------------------------------------
    def open_objection(self, resident_id: ResidentId, ref: str, reason: str, who: Principal = OPERATOR_CLI) -> int:
        key = self._may_read(Op.OPEN_OBJECTION, who, resident_id)
        now = self.now()
        with transaction(self.con):
            number = objections.open_objection(self.con, key, ref, reason, principal=who.name, now=now)
            notices.add(self.con, key, "objection.opened", {"objection": number, "record": ref}, now)
            self._rescore(now, [key], cause=Cause.OBJECTION)
            seq = self._audit(who, Event.OBJECTION_OPENED, resident=key, detail={"objection": number, "record": ref})
            self._known(seq, "objection", objection=number, step="opened")
        return number

    def resolve_objection(self, number: int, *, uphold: bool, answer: str, who: Principal = OPERATOR_CLI) -> None:
        now = self.now()
        agency = permissions.own_agency(Op.RESOLVE_OBJECTION, who)
        with transaction(self.con):
            key = objections.resolve(self.con, number, uphold=uphold, answer=answer, agency=agency,
                                     principal=who.name, now=now)
            notices.add(self.con, key, "objection.resolved", {"objection": number, "upheld": uphold}, now)
            self._rescore(now, [key], cause=Cause.OBJECTION)
            seq = self._audit(who, Event.OBJECTION_RESOLVED, resident=key,
                              detail={"objection": number, "upheld": uphold})
            self._known(seq, "objection", objection=number, step="upheld" if uphold else "rejected")
            if uphold:
                agency_of, record_id = objections.record_of(self.con, number)
                self._known(seq, "revocation", agency=agency_of, record_id=record_id)
                redress.find(self.con, key, now)

    def objections(self, *, resident_id: ResidentId | None = None, agency: str | None = None,
                   overdue: bool = False) -> list[dict[str, Any]]:
        key = None if resident_id is None else self.resident(resident_id)
        return objections.listing(self.con, self.policy, self.now(), resident=key, agency=agency,
                                  overdue_only=overdue)

    # -- audit and tokens -------------------------------------------------------------------
    def backup(self, directory: Path) -> dict[str, Any]:
        from credo import backup

        return backup.backup(self.con, directory)

    def verify_audit(self, public_key: str | None = None,
                     receipts: list[tuple[int, str]] | None = None) -> audit.Verdict:
        """The chain, checked against every signed checkpoint and the receipts given (``credo.checkpoints``)."""
        return checkpoints.verify(self.con, self.path, public_key, receipts)

    def replay(self, decision_id: str, who: Principal = OPERATOR_CLI) -> dict[str, Any]:
        """A logged decision recomputed at T = K = its time and compared with the log (``credo.replay``)."""
        from credo import replay

        permissions.require(Op.VERIFY_AUDIT, who)
        out = replay.replay(self.con, decision_id, self.policy.tz)
        with transaction(self.con):
            self._audit(who, Event.AUDIT_VERIFIED, resident=ids.resident_key(out["resident_id"]),
                        detail={"replay": decision_id, "same": out["same"]})
        return out

    def export_audit(self) -> Iterator[dict[str, Any]]:
        """The whole log, oldest first, streamed (``audit.export``)."""
        return audit.export(self.con)

    def create_token(self, role: str, *, agency: str | None = None, provider: str | None = None,
                     resident_id: str | None = None, expires: str | None = None, actions: list[str] | None = None,
                     who: Principal = OPERATOR_CLI) -> tuple[str, principals.Token]:
        """A new token, shown once; ``expires`` as ``principals.expiry`` reads it; an agency the policy knows;
        a provider's ``actions`` (None: every action) the policy names."""
        principals.check_subject(role, {"agency": agency, "provider": provider, "resident": resident_id})
        scope = principals.check_actions(role, actions, self.policy.doc.actions if actions is not None else ())
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
                                            expires_at=until, actions=scope, now=self.now())
            self._audit(who, Event.TOKEN_CREATED, detail={"id": made.id, "principal": made.principal.name,
                                                          "role": role, "expires_at": shown,
                                                          **({"actions": list(scope)} if scope else {})})
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
        permissions.require(Op.WHATIF, who)
        proposed = policies.load(text)
        out = governance.whatif(self.con, self.policy, proposed, as_of or self.now(), sample=sample, engine=engine)
        self._audit_report(who, "whatif", purpose, out, engine=engine, proposed=proposed.label)
        return out

    def fairness(self, as_of: datetime | None = None, *, min_group: int = 30, engine: str = "duckdb",
                 who: Principal = OPERATOR_CLI, purpose: str = "fairness") -> dict[str, Any]:
        """Outcomes under the policy in force by district, sex and age band, with four-fifths flags."""
        permissions.require(Op.FAIRNESS, who)
        out = governance.fairness(self.con, self.policy, as_of or self.now(), min_group=min_group, engine=engine)
        self._audit_report(who, "fairness", purpose, out, engine=engine)
        return out

    def _audit_report(self, who: Principal, name: str, purpose: str, report: dict[str, Any], **more: str) -> None:
        with transaction(self.con):
            self._audit(who, Event.READ_REPORT, purpose=purpose, detail={
                "report": name, "as_of": report["as_of"], "residents": report["residents"], **more})

    # -- the HTTP API's reads ------------------------------------------------------------------
    def records(self, resident_id: ResidentId, who: Principal = OPERATOR_CLI,
                purpose: str | None = None) -> list[dict[str, Any]]:
        """A resident's records as stored, with revocations; an agency sees only its own."""
        key = self._may_read(Op.READ_RECORDS, who, resident_id)
        rows = ledger.records_of(self.con, key, permissions.own_agency(Op.READ_RECORDS, who))
        with transaction(self.con):
            self._audit(who, Event.READ_RECORDS, resident=key, purpose=purpose)
        return rows

    def audit_page(self, who: Principal, *, resident_id: str | None = None, after: int = 0, limit: int = 100,
                   purpose: str | None = None) -> list[dict[str, Any]]:
        """Audit entries after ``after``: a resident's own accesses, or (auditor, operator) any."""
        resident_id = permissions.own_file(Op.READ_AUDIT, who, resident_id)
        key = self.resident(ids.parse_resident_id(resident_id)) if resident_id else None
        rows = audit.page(self.con, resident=key, after=after, limit=limit)
        event = Event.READ_ACCESSES if who.role == "resident" else Event.AUDIT_READ
        with transaction(self.con):
            self._audit(who, event, resident=key, purpose=purpose,
                        detail={"after": after, "entries": len(rows)})
        return rows

    def batch_rows(self, result: ingest.BatchResult, record_ids: list[str | None]) -> list[dict[str, Any]]:
        """Each row of an API batch: accepted, duplicate (already in the ledger) or rejected and why."""
        return ingest.batch_rows(self.con, result, record_ids)

    # -- the web pages (credo.web) --------------------------------------------------------------
    def dashboard(self, who: Principal = OPERATOR_CLI, purpose: str = "dashboard", *,
                  days: int = 30) -> dict[str, Any]:
        """The operator's dashboard (``credo.dashboard.overview``), audited as a read of aggregates.

        Standings past their ``changes_at`` are made current first (``freshen``), so the aggregates
        count each resident as the API would answer for them now, and each resident is told.
        """
        from credo import dashboard, index

        permissions.require(Op.DASHBOARD, who)
        now = self.now()
        stale = index.stale_in_store(self.con, self.in_force, now, None)
        if len(stale):
            self.freshen(stale, now)
        out = dashboard.overview(self.con, self.policy, now, days=days)
        with transaction(self.con):
            self._audit(who, Event.AUDIT_READ, purpose=purpose, detail={"view": "dashboard"})
        return out

    def accesses(self, resident_id: ResidentId, who: Principal = OPERATOR_CLI, *, limit: int = 100,
                 purpose: str | None = None) -> dict[str, Any]:
        """The latest audit entries about a resident's file, newest first (the API pages oldest
        first), and their total; audited like ``audit_page``."""
        from credo import dashboard

        key = self._may_read(Op.READ_ACCESSES, who, resident_id)
        out = dashboard.accesses(self.con, key, self.policy.tz, limit)
        event = Event.READ_ACCESSES if who.role == "resident" else Event.AUDIT_READ
        with transaction(self.con):
            self._audit(who, event, resident=key, purpose=purpose, detail={"entries": len(out["entries"])})
        return out
