"""The library's front door: every operation the CLI and the HTTP API offer, with its audit trail.

Fronts parse, call one method here, and render. Each method that writes holds
one transaction around the change, the rescoring it causes and its audit
entry, so the standing reflects an accepted record as soon as the call
returns, and a crash leaves none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson

from credo import (audit, decisions, feeds, ids, ingest, ledger, notices, objections, principals, scoring, settings,
                   standing)
from credo import policy as policies
from credo.audit import Entry, Event
from credo.errors import CredoError, Forbidden
from credo.policy import Policy
from credo.principals import OPERATOR_CLI, Principal
from credo.store import connect, transaction
from credo.times import parse_when


class Credo:
    """One open database, its policy in force and the clock."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._policy: Policy | None = None

    @classmethod
    def open(cls, path: Path | str | None = None) -> Credo:
        return cls(connect(path))

    def close(self) -> None:
        self.con.close()

    # -- policy -----------------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = policies.current(self.con)
        return self._policy

    def now(self) -> datetime:
        tz = self._policy.tz if self._policy else policies.DEFAULT_TZ
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
    def ingest_feed(self, agency: str, feed: feeds.Feed, who: Principal = OPERATOR_CLI) -> ingest.BatchResult:
        """Validate and append one feed, rescore whom it touches: all of it or none of it."""
        self._require_agency(agency)
        now = self.now()
        with transaction(self.con):
            result = ingest.ingest(self.con, self.policy, agency, feed, principal=who.name, now=now)
            notices.records_added(self.con, result.batch, now)
            self._rescore(now, result.residents)
            self._audit(who, Event.BATCH_INGESTED, detail=result.to_json())
        return result

    def ingest_files(self, agency: str, paths: Iterable[Path], who: Principal = OPERATOR_CLI,
                     progress: Callable[[ingest.BatchResult], None] | None = None) -> list[ingest.BatchResult]:
        results = []
        for path in paths:
            result = self.ingest_feed(agency, feeds.read(path, feeds.columns_for(agency)), who)
            results.append(result)
            if progress:
                progress(result)
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
        notices.snapshot(self.con, scope, now)
        count = scoring.rescore(self.con, policy or self.policy, now, scope)
        notices.emit_changes(self.con, now)
        return count

    def notices(self, resident_id: str, who: Principal = OPERATOR_CLI) -> list[dict[str, Any]]:
        key = self._may_read(who, resident_id)
        return notices.for_resident(self.con, key, self.policy.tz)

    def rejects(self, agency: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        return ledger.rejects(self.con, agency, limit)

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
            raise Forbidden(f"a {who.role} never reads a resident's file")
        return key

    # -- decisions --------------------------------------------------------------------------
    def check(self, resident_id: str, action: str, who: Principal = OPERATOR_CLI,
              purpose: str | None = None) -> decisions.Decision:
        decisions.require_action(self.policy, action)
        key = self.resident(resident_id)
        now = self.now()
        decision = decisions.decide(self.policy, standing.current(self.con, self.policy, key, now), action, now)
        self.log_decisions(who, [(key, decision)], purpose)
        return decision

    def log_decisions(self, who: Principal, made: list[tuple[int, decisions.Decision]],
                      purpose: str | None) -> None:
        now = self.now()
        entries = [Entry(now, who.name, who.role, Event.DECISION, key, d.action, d.decision, d.decision_id,
                         purpose, d.policy, orjson.dumps([r["code"] for r in d.reasons]).decode())
                   for key, d in made]
        with transaction(self.con):
            audit.append(self.con, entries)

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
        entry = Entry(self.now(), who.name, who.role, event.value, resident, None, None, None, purpose,
                      policy or (self._policy.label if self._policy else None),
                      orjson.dumps(detail, default=str).decode() if detail is not None else None)
        audit.append(self.con, [entry])

    def verify_audit(self) -> audit.Verdict:
        return audit.verify(self.con)

    def export_audit(self) -> list[dict[str, Any]]:
        return audit.export(self.con)

    def create_token(self, role: str, *, agency: str | None = None, provider: str | None = None,
                     resident_id: str | None = None) -> tuple[str, Principal]:
        resident = ids.resident_key(ids.normalise_resident_id(resident_id)) if resident_id else None
        with transaction(self.con):
            token, who = principals.create(self.con, role, agency=agency, provider=provider, resident=resident,
                                           now=self.now())
            self._audit(OPERATOR_CLI, Event.TOKEN_CREATED, detail={"principal": who.name, "role": role})
        return token, who
