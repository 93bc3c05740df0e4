"""The service's identity review operations (spec §10), beside ``credo.service.Credo`` which inherits
them: the queue listed, a match confirmed or declined, each audited.

A confirmation appends the record for the resident and rescores through the one path
(``ServiceBase._rescore``: notices, listeners), in one transaction with its judgement and audit entry;
a declined match becomes a reject. Who may judge is ``credo.permissions`` (the operator; an agency its
own rows only, another agency's item answered as one that does not exist).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from credo import permissions, review, settings
from credo.audit import Event
from credo.ids import ResidentId
from credo.permissions import Op
from credo.principals import OPERATOR_CLI, Principal
from credo.providerfeed import Cause
from credo.servicebase import ServiceBase
from credo.store import transaction


class ReviewService(ServiceBase):
    """The review queue's operations; ``Credo`` is one of these."""

    def review_items(self, who: Principal = OPERATOR_CLI, *, item: int | None = None,
                     purpose: str | None = None) -> list[dict[str, Any]]:
        """Items, pending ones first, with their candidates; an agency sees its own. Audited as a read,
        as each item shows registered residents."""
        agency = permissions.own_agency(Op.LIST_REVIEW, who)
        out = review.listing(self.con, self.policy, self.now(), agency=agency, item=item)
        with transaction(self.con):
            self._audit(who, Event.READ_REVIEW, purpose=purpose, detail={"item": item, "items": len(out)})
        return out

    def confirm_review(self, number: int, resident_id: ResidentId, reason: str,
                       who: Principal = OPERATOR_CLI) -> dict[str, Any]:
        """Item ``number`` is about ``resident_id``: its record enters the ledger, and the resident is
        rescored. Returns the item as listed after."""
        agency = permissions.own_agency(Op.JUDGE_REVIEW, who)
        key = self.resident(resident_id)
        now = self.now()
        with transaction(self.con):
            found = review.confirm(self.con, number, key, reason, principal=who.name, role=who.role,
                                   agency=agency, now=now)
            self._rescore(now, [key], cause=Cause.RECORD)
            seq = self._audit(who, Event.REVIEW_CONFIRMED, resident=key, detail={
                "item": number, "record": f"{found['agency']}:{found['record_id']}", "reason": reason.strip()})
            self._known(seq, "batch", batch=found["batch"])  # the record is known from its confirmation
        return review.listing(self.con, self.policy, now, item=number)[0]

    def decline_review(self, number: int, reason: str, who: Principal = OPERATOR_CLI) -> dict[str, Any]:
        """None of item ``number``'s candidates is the person: the row becomes an ``identity_declined``
        reject. Returns the item as listed after."""
        agency = permissions.own_agency(Op.JUDGE_REVIEW, who)
        now = self.now()
        with transaction(self.con):
            found = review.decline(self.con, number, reason, principal=who.name, role=who.role, agency=agency,
                                   now=now)
            self._audit(who, Event.REVIEW_DECLINED, detail={
                "item": number, "record": f"{found['agency']}:{found['record_id']}", "reason": reason.strip()})
        return review.listing(self.con, self.policy, now, item=number)[0]

    def identity_model_path(self) -> Path | None:
        """Where the operator reads the matching's parameters (``CREDO_IDENTITY_MODEL``, else beside the
        database; None for a database in memory)."""
        configured = settings.current().identity_model
        if configured:
            return configured
        if self.path is None or str(self.path) == ":memory:":
            return None
        path = Path(self.path)
        return path.with_name(path.name + ".identity-model.json")

    def write_identity_model(self) -> Path | None:
        """Write the latest matching model where the operator reads it."""
        path = self.identity_model_path()
        if path is not None:
            review.write_model(self.con, path)
        return path

    def _mark_reviewed(self, key: int, explained: dict[str, Any]) -> dict[str, Any]:
        """An explanation whose records matched by review say so: the item, who confirmed, when."""
        found = review.matched(self.con, key, self.policy.tz)
        for record in explained.get("records", []):
            mark = found.get((record.get("agency"), record.get("record_id")))
            record["matched_by_review"] = mark
        return explained
