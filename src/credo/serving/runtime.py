"""One server process's state: its hub, its decision index, its token directory, its counters.

The index is brought up to the hub's generation before every decision and
after every write (``sync``), so a decision never answers from a standing that
a returned write has changed; residents past their due time are re-read first
(``refresh``). Both may touch the database, so they run in a worker thread,
never on the event loop. The index is an immutable snapshot: both make a new one
and swap it in by one assignment, and a request reads ``index`` once.
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
        generation = hub.generation()
        policy = hub.policy()
        self.index = DecisionIndex(policy, hub.index_rows(None, settings.now(policy.tz)), generation)
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
            generation, changes = self.hub.changes_since(self._tokens_at)
            if changes is None or scope_of(changes)[1]:
                self.directory = self.hub.principals()
            self._tokens_at = generation

    def behind(self) -> bool:
        return self.hub.generation() != self.index.generation

    def sync(self) -> None:
        """Catch the index up with every write the hub has seen (the tokens: ``catch_up_tokens``)."""
        with self._sync_lock:
            self._catch_up()

    def _catch_up(self) -> None:
        """``sync``, under its lock: each change is one new snapshot, swapped in by one assignment."""
        if not self.behind():
            return
        idx = self.index
        generation, changes = self.hub.changes_since(idx.generation)
        scope = None if changes is None else scope_of(changes)[0]
        if scope is None:
            policy = self.hub.policy()
            self.index = idx.replace(policy, self.hub.index_rows(None, settings.now(policy.tz)), generation)
            self.metrics.index_reloads.inc()
            _settle()
            return
        if len(scope):
            idx = idx.apply(scope, self.hub.index_rows(scope, idx.now()))
            self.metrics.index_refreshed.inc(len(scope))
        self.index = idx.at(generation)

    def refresh(self, keys: Keys) -> DecisionIndex:
        """Re-read residents past their due time (the hub rescores them first); the snapshot holding them.

        Under ``sync``'s lock, so that no swap is lost. A policy applied while the rows were read
        may have rescored them under itself: then the reload (which reads everyone) replaces them.
        """
        keys = np.unique(np.asarray(keys, np.int64))
        with self._sync_lock:
            self._catch_up()
            idx = self.index
            rows = self.hub.index_rows(keys, idx.now())
            _, changes = self.hub.changes_since(idx.generation)
            if changes is None or scope_of(changes)[0] is None:
                self._catch_up()
            else:
                self.index = idx.apply(keys, rows)
            self.metrics.index_refreshed.inc(len(keys))
            return self.index

    def close(self) -> None:
        if self.owns_hub:
            self.hub.close()
