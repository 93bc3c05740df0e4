"""One server process's state: its hub, its decision index, its token directory, its counters.

The index is brought up to the hub's generation before every decision and
after every write (``sync``), so a decision never answers from a standing that
a returned write has changed; residents past their due time are re-read first
(``refresh``). Both may touch the database, so they run in a worker thread,
never on the event loop. The index is an immutable snapshot: both make a new one
and swap it in by one assignment, and a request reads ``index`` once.

Each snapshot knows the last write it reflects (``known``: that write's audit entry, as the hub
announced it), and every decision it answers is logged with it, so that a replay counts exactly
those writes (``credo.replay``), however late the decision's own entry joins the log. Rows are
read from what is committed, which may hold a write whose announcement is still on its way (the
moment between its commit and the end of its turn): a snapshot holding such rows is not swapped
in until that write is announced and taken in too.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from datetime import datetime

import numpy as np

from credo import settings
from credo.index import DecisionIndex, Keys
from credo.principals import Directory, Principal
from credo.serving.hub import Hub, scope_of
from credo.serving.metrics import Metrics

WAIT = 0.001
"""Seconds between two looks at the hub while a write that rows hold is not yet announced."""


def _settle() -> None:
    """Move the freshly loaded index out of the garbage collector's sight: at city scale it holds
    millions of objects that never form cycles, and a full collection walking them would stall
    every request in flight for a second."""
    gc.collect()
    gc.freeze()


class RateLimiter:
    """A token bucket per principal: ``rate`` requests a second, bursts up to ``rate`` (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, who: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        tokens, last = self._buckets.get(who, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[who] = (tokens, now)
            return False
        self._buckets[who] = (tokens - 1, now)
        return True

    def retry_after(self, who: str) -> int:
        """Whole seconds until ``who`` may ask again (a 429's ``Retry-After``): until the bucket
        holds one request again, rounded up, so that a client waiting that long is let in."""
        now = time.monotonic()
        tokens, last = self._buckets.get(who, (self.rate, now))
        missing = 1 - min(self.rate, tokens + (now - last) * self.rate)
        return max(1, math.ceil(missing / self.rate)) if self.rate > 0 else 0


class Runtime:
    def __init__(self, hub: Hub, *, owns_hub: bool = True) -> None:
        self.hub = hub
        self.owns_hub = owns_hub
        self.metrics = Metrics(self._gauges)
        configured = settings.current()
        self.limiter = RateLimiter(configured.rate_limit)
        self.max_body = configured.max_body
        self._tokens_at = hub.generation()
        self.directory: Directory = hub.principals()
        self._tokens_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        generation, known, _ = hub.changes_since(hub.generation())
        policy = hub.policy()
        rows, read = hub.index_rows(None, settings.now(policy.tz))
        self.index = DecisionIndex(policy, rows, generation, known=known)
        self._catch_up(read)
        _settle()

    def _gauges(self) -> dict[str, float]:
        """What ``/metrics`` reads when scraped: this worker's index (one snapshot), and the hub's figures."""
        idx = self.index
        return {"index_registered": float(idx.registered), "index_measured": float(idx.measured),
                "index_generation": float(idx.generation),
                **{f"hub_{name}": value for name, value in self.hub.stats().items()}}

    def now(self) -> datetime:
        return self.index.now()

    def authenticate(self, token: str) -> Principal:
        return self.directory.authenticate(token, self.now)

    def tokens_behind(self) -> bool:
        """Whether the hub has announced any write since the directory was read (cheap: a memory read)."""
        return self.hub.generation() != self._tokens_at

    def catch_up_tokens(self) -> None:
        """Re-read the directory if a write since it was read changed tokens or sessions: a revocation
        or a sign-out in any process holds in this one from its next request on (``CurrentTokens``)."""
        with self._tokens_lock:
            generation, _, changes = self.hub.changes_since(self._tokens_at)
            if changes is None or scope_of(changes)[1]:
                self.directory = self.hub.principals()
            self._tokens_at = generation

    def behind(self) -> bool:
        return self.hub.generation() != self.index.generation

    def sync(self) -> None:
        """Catch the index up with every write the hub has seen (the tokens: ``catch_up_tokens``)."""
        with self._sync_lock:
            self._catch_up()

    def _catch_up(self, read: int = 0) -> None:
        """``sync``, under its lock: the changes since the snapshot make one new snapshot, swapped in by
        one assignment once every write its rows reflect (``read``: the last) is announced."""
        idx = self.index
        if read <= idx.known and not self.behind():
            return
        reloaded = False
        while True:
            generation, known, changes = self.hub.changes_since(idx.generation)
            if generation == idx.generation:
                idx = idx.at(generation, known) if known > idx.known else idx  # writes that rescored nobody
                if read <= idx.known:
                    break
                time.sleep(WAIT)  # the write the rows hold ends its turn, and is announced, within moments
                continue
            scope = None if changes is None else scope_of(changes)[0]
            if scope is None:
                policy = self.hub.policy()
                rows, last = self.hub.index_rows(None, settings.now(policy.tz))
                idx, reloaded = idx.replace(policy, rows, generation, known), True
                self.metrics.index_reloads.inc()
            elif len(scope):
                rows, last = self.hub.index_rows(scope, idx.now())
                idx = idx.apply(scope, rows).at(generation, known)
                self.metrics.index_refreshed.inc(len(scope))
            else:
                last, idx = 0, idx.at(generation, known)
            read = max(read, last)
        self.index = idx
        if reloaded:
            _settle()

    def refresh(self, keys: Keys) -> DecisionIndex:
        """Re-read residents past their due time (the hub rescores them first); the snapshot holding them.

        Under ``sync``'s lock, so that no swap is lost. A policy applied while the rows were read
        may have rescored them under itself: then the reload (which reads everyone) replaces them.
        """
        keys = np.unique(np.asarray(keys, np.int64))
        with self._sync_lock:
            read = 0
            while True:  # until the rows hold no write the snapshot does not (then catch up, read again)
                self._catch_up(read)
                idx = self.index
                rows, read = self.hub.index_rows(keys, idx.now())
                _, _, changes = self.hub.changes_since(idx.generation)
                if read <= idx.known and changes is not None and scope_of(changes)[0] is not None:
                    break
            self.index = idx.apply(keys, rows)
            self.metrics.index_refreshed.inc(len(keys))
            return self.index

    def close(self) -> None:
        if self.owns_hub:
            self.hub.close()
