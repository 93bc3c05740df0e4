"""Group commit: many requests' audit entries made durable by one transaction.

Why: a decision's audit entry must be committed before its response is sent,
and a DuckDB commit costs milliseconds, so one commit per decision would cap the
server at a few hundred decisions a second. Instead every request hands its
entries to one writer thread and waits; the writer takes everything that has
arrived, writes it in one transaction, and then releases all those requests
together. While it commits, the next group gathers, so the group grows with the
load and the cost per decision falls.

The flush returns the group's receipts (``credo.audit.Receipts``: where its entries
joined the chain); each submitter is handed its own share of them. Whatever the flush
works on belongs to the writer thread; others reach it through ``between``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from credo.audit import Receipts

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Waiter:
    """One submitter: an asyncio future on its loop, or a thread waiting on an event."""

    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Receipts | None] | None = None
    event: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    result: Receipts | None = None


class GroupCommit(Generic[T]):
    """A writer thread calling ``flush(items)`` for everything submitted while the last flush ran."""

    def __init__(self, flush: Callable[[list[T]], Receipts | None], name: str = "group-commit") -> None:
        self._flush = flush
        self._cond = threading.Condition()
        self._pending: list[tuple[Sequence[T], _Waiter]] = []
        self._jobs: list[tuple[Callable[[], Any], Future[Any]]] = []
        self._closed = False
        self.commits = 0
        self.items = 0
        self.failures = 0
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def submit(self, items: Sequence[T]) -> Receipts | None:
        """Return the receipts of ``items`` once they are flushed (raise what the flush raised)."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop, loop.create_future())
        self._enqueue(items, waiter)
        assert waiter.future is not None
        return await waiter.future

    def submit_wait(self, items: Sequence[T]) -> Receipts | None:
        """The same for a thread (the store process serving worker processes)."""
        waiter = _Waiter()
        self._enqueue(items, waiter)
        waiter.event.wait()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def between(self, job: Callable[[], R]) -> Future[R]:
        """Run ``job`` on the writer thread between two flushes, before the next group: while it runs,
        what the writer owns is the job's alone. Its result (or what it raised) comes in the future."""
        future: Future[R] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the audit writer is closed")
            self._jobs.append((job, future))
            self._cond.notify()
        return future

    def _enqueue(self, items: Sequence[T], waiter: _Waiter) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the audit writer is closed")
            self._pending.append((items, waiter))
            self._cond.notify()

    def close(self) -> None:
        """Flush what is pending, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._pending and not self._jobs:
                    return
                jobs, self._jobs = self._jobs, []
                group: list[tuple[Sequence[T], _Waiter]] = []
                if not jobs:  # jobs first: the group goes on gathering while they run
                    group, self._pending = self._pending, []
            if jobs:
                _run_jobs(jobs)
            else:
                self._commit(group)

    def _commit(self, group: list[tuple[Sequence[T], _Waiter]]) -> None:
        items = [item for chunk, _ in group for item in chunk]
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            receipts = self._flush(items)
        except BaseException as exc:  # handed to every waiter of the group
            error = exc
            self.failures += 1
        else:
            if receipts is not None:
                start = 0
                for chunk, waiter in group:
                    waiter.result = receipts.part(start, len(chunk))
                    start += len(chunk)
        self.seconds += time.perf_counter() - started
        self.commits += 1
        self.items += len(items)
        _release([w for _, w in group], error)


def _run_jobs(jobs: list[tuple[Callable[[], Any], Future[Any]]]) -> None:
    for job, future in jobs:
        try:
            future.set_result(job())
        except BaseException as exc:  # handed to whoever waits for it
            future.set_exception(exc)


def _release(waiters: list[_Waiter], error: BaseException | None) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
    for w in waiters:
        if w.loop is None:
            w.error = error
            w.event.set()
        else:
            by_loop.setdefault(w.loop, []).append(w)
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, group, error)


def _resolve(group: list[_Waiter], error: BaseException | None) -> None:
    for w in group:
        fut: Any = w.future
        if fut is not None and not fut.done():
            if error is None:
                fut.set_result(w.result)
            else:
                fut.set_exception(error)
