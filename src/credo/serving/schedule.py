"""The one scheduler over the due times: while serving, a change that time alone makes is told at its
moment (spec §8: a grace period ends, a record expires; in the feed within a minute).

Every stored standing has a due time, ``changes_at`` (the earliest moment it can change by itself;
the decision indexes hold the same times). The hub's owner asks this scheduler at every tick (about
each second, ``credo.serving.core``) whether the earliest of them has passed; when it has, the
standings past theirs are made current through the one rescoring path (``Credo.freshen``), which
writes their notices and feed rows (cause ``grace_ended`` or ``expired``) and tells every decision
index, like any write. At the server's start the first tick does the same for the due times that
passed while it was stopped. The earliest due time is kept between ticks and read again (one
aggregate) only after a turn changed standings, so an idle tick costs a comparison.
"""

from __future__ import annotations

from datetime import datetime

from credo import index
from credo.service import Credo
from credo.sql import q


class Scheduler:
    """The earliest due time of the stored standings, and the rescoring of those past theirs."""

    def __init__(self, credo: Credo) -> None:
        self.credo = credo
        self._known = False
        self._next: datetime | None = None
        self.runs = 0
        """How many times standings were made current because their due time passed."""

    def changed(self) -> None:
        """A turn changed standings: the earliest due time is read again at the next tick."""
        self._known = False

    def due(self) -> datetime | None:
        """The earliest due time as last read (None: none, or not read since the last change)."""
        return self._next if self._known else None

    def run(self) -> int:
        """(the owner) Make current every standing whose due time passed; how many were rescored."""
        credo = self.credo
        if not self._known and not credo.initialised():
            return 0
        now = credo.now()
        if not self._known:
            self._next, self._known = self._earliest(None), True
        if self._next is None or self._next > now:
            return 0
        stale = index.stale_in_store(credo.con, credo.in_force, now, None)
        count = credo.freshen(stale, now) if len(stale) else 0
        self.runs += bool(count)
        self._next, self._known = self._earliest(now), True
        return count

    def _earliest(self, after: datetime | None) -> datetime | None:
        found = self.credo.con.execute(q("providerfeed.earliest_due"), {"after": after}).fetchall()[0][0]
        assert found is None or isinstance(found, datetime)
        return found
