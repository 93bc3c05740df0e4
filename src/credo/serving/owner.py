"""One thread that owns something not safe to share, and runs the work asked of it in turn.

A DuckDB connection must not be used by two threads at once. Rather than guard it with a lock
that every user must take (and release on every path), the server gives it to one ``Owner``:
callers submit work and wait for its result (a ``Future``), and the owner's thread runs the
work one job at a time, in the order it was submitted. What the owner holds needs no lock,
and what a job leaves behind (changes to announce, a borrowed audit writer) is settled by the
job itself before the next one starts.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("credo.hub")

_TICK, _STOP = object(), object()


class Owner:
    """Runs submitted jobs on its own thread, one at a time; ``tick`` between them at least every
    ``every`` seconds, and as soon as possible after ``nudge``."""

    def __init__(self, name: str, tick: Callable[[], None] | None = None, every: float = 1.0) -> None:
        self.name = name
        self._tick = tick
        self._every = every
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closing = threading.Lock()
        """Held only inside ``submit`` and ``close``, so that no job is queued after the last one."""
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._closing:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            self._jobs.put((job, future))
        return future

    def run(self, job: Callable[[], T]) -> T:
        """Submit ``job`` and wait for its result (never from the owner's own thread: it would wait for itself)."""
        return self.submit(job).result()

    def nudge(self) -> None:
        """Ask for a ``tick`` soon, without waiting for it (ignored once closed)."""
        if not self._closed:
            self._jobs.put(_TICK)

    def close(self, last: Callable[[], None]) -> None:
        """Run ``last`` after every job submitted before, then stop; raise what ``last`` raised."""
        future: Future[None] = Future()
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._jobs.put((last, future))
            self._jobs.put(_STOP)
        self._thread.join()
        future.result()

    def _run(self) -> None:
        ticked = time.monotonic()
        while True:
            wait = None if self._tick is None else max(0.0, ticked + self._every - time.monotonic())
            try:
                item = self._jobs.get(timeout=wait)
            except queue.Empty:
                item = _TICK
            if item is _STOP:
                return
            if self._tick is not None and (item is _TICK or time.monotonic() - ticked >= self._every):
                try:  # before the job: the last job may close what the tick uses
                    self._tick()
                except Exception:  # the tick reports its own failures; this only keeps the owner alive
                    log.exception("%s: a periodic job failed", self.name)
                ticked = time.monotonic()
            if item is not _TICK:
                _work(*item)


def _work(job: Callable[[], Any], future: Future[Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(job())
    except BaseException as exc:  # handed to whoever waits for it
        future.set_exception(exc)
