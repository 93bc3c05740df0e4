"""The providers' change feed as the service offers it (spec §8): a snapshot, the changes in order, the
acknowledged position, and each provider's status.

The rows themselves are written by the one rescoring path (``credo.providerfeed``, from
``ServiceBase._rescore``); here they are read. Who reads what is the permission table's
(``Op.READ_FEED``: a provider its own feed, narrowed to its token's actions; an operator any
provider's, or the whole feed). Each read and acknowledgment is audited, as one entry: a page is
a disclosure of decisions like a check, but an entry per change would double the feed.
"""

from __future__ import annotations

from typing import Any

from credo import ids, index, permissions, providerfeed, redress
from credo.audit import Event
from credo.deadlines import Deadline
from credo.errors import CredoError, NotFound
from credo.ids import ResidentId
from credo.permissions import Op, Owner
from credo.principals import OPERATOR_CLI, Principal
from credo.providerfeed import Cause
from credo.servicebase import ServiceBase
from credo.store import transaction

MAX_PAGE = 50_000
"""The most changes one page holds."""


class BeyondFeed(CredoError):
    status = 422
    code = "beyond_feed"


class FeedService(ServiceBase):
    """The feed's operations, beside the rest of ``credo.service.Credo``."""

    def _feed_scope(self, who: Principal, provider: str | None) -> tuple[str | None, list[str] | None]:
        """(the provider read for, None: the whole feed; its actions, None: every action)."""
        rule = permissions.RULES[Op.READ_FEED]
        named, actions = rule.own_feed(who, provider)
        if named is None or rule.owners.get(who.role) is Owner.ACTIONS:  # the token decided
            return named, None if actions is None else list(actions)
        known = {p.provider: p for p in providerfeed.providers(self.con)}
        if named not in known:
            raise NotFound(f"no provider {named!r} has a token or an acknowledgment", code="unknown_provider",
                           details={"providers": sorted(known)})
        return named, known[named].actions

    def feed_snapshot(self, who: Principal, provider: str | None = None) -> dict[str, Any]:
        """Every resident whose decision on the provider's actions is not a plain allow, and the ``seq``
        to follow the feed from: both read in one transaction, after the standings that stopped being
        true by themselves are made current (their changes go into the feed first, by time)."""
        named, actions = self._feed_scope(who, provider)
        now = self.now()
        with transaction(self.con):
            stale = index.stale_in_store(self.con, self.in_force, now, None)
            if len(stale):
                self._rescore(now, stale, cause=Cause.TIME)
            seq = providerfeed.head(self.con)
            rows = providerfeed.snapshot(self.con, self.policy, now, actions)
            self._audit(who, Event.FEED_READ, detail={"provider": named, "snapshot": seq, "decisions": len(rows)})
        return {"provider": named, "actions": actions, "seq": seq, "policy": self.policy.label, "decisions": rows}

    def feed_page(self, who: Principal, after: int = 0, limit: int = 1000,
                  provider: str | None = None) -> dict[str, Any]:
        """The changes after ``after`` on the provider's actions, in ``seq`` order, as a JSON array's text
        (``changes``: made by the database, for speed); ``next`` is the ``after`` of the next page (the
        last seq looked at), ``head`` the feed's last seq; ``redress``, the items for this provider that
        the feed carries in the same span (``credo.redress``)."""
        if not 1 <= limit <= MAX_PAGE:
            raise CredoError(f"limit must be 1 to {MAX_PAGE}", code="bad_limit", details={"field": "limit"})
        named, actions = self._feed_scope(who, provider)
        with transaction(self.con):
            page = providerfeed.page_json(self.con, self.policy.tz, actions, after, limit)
            head = providerfeed.head(self.con)
            # a short page read everything of this provider's up to the head (one snapshot)
            last = page.last if page.count == limit and page.last is not None else max(after, head)
            told = redress.listing(self.con, self.policy.tz, self.now(), provider=named, after=after, until=last)
            self._audit(who, Event.FEED_READ, detail={"provider": named, "after": after, "changes": page.count})
        return {"provider": named, "actions": actions, "after": after, "next": last, "head": head,
                "changes": f"[{page.changes}]", "redress": told}

    def feed_ack(self, who: Principal, seq: int) -> dict[str, Any]:
        """The provider acknowledges every change up to ``seq`` (at most the feed's head); its position
        now, which an acknowledgment never moves back."""
        permissions.require(Op.ACK_FEED, who)
        assert who.provider is not None  # the rule admits providers only, each bound to one
        now = self.now()
        with transaction(self.con):
            head = providerfeed.head(self.con)
            if not 0 <= seq <= head:
                raise BeyondFeed(f"seq {seq} is not in the feed (its last is {head})",
                                 details={"field": "seq", "head": head})
            position = providerfeed.ack(self.con, who.provider, seq, principal=who.name, now=now)
            self._audit(who, Event.FEED_ACKED, detail={"provider": who.provider, "seq": seq})
        return {"provider": who.provider, "seq": position, "head": head}

    def feed_status(self, who: Principal = OPERATOR_CLI) -> dict[str, Any]:
        """Each provider's acknowledged position, lag and overdue changes (``credo feed status``)."""
        permissions.require(Op.FEED_STATUS, who)
        policy, now = self.policy, self.now()
        deadline = Deadline.parse(policy.doc.correction_deadline)
        with transaction(self.con):
            head = providerfeed.head(self.con)
            rows = providerfeed.status(self.con, deadline, now, policy.tz)
        return {"head": head, "deadline": str(deadline), "providers": rows}

    def redress(self, who: Principal = OPERATOR_CLI, *, provider: str | None = None,
                resident_id: ResidentId | None = None) -> list[dict[str, Any]]:
        """Logged decisions that a withdrawn record made worse for the resident (``credo.redress``): a
        provider's own, a resident's own file, or (the operator) any, narrowed to ``provider``/``resident_id``."""
        provider, named = permissions.own_redress(who, provider, resident_id.text if resident_id else None)
        key = None if named is None else self.resident(ids.parse_resident_id(named))
        return redress.listing(self.con, self.policy.tz, self.now(), provider=provider, resident=key)
