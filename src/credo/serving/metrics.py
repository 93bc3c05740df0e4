"""Prometheus metrics through ``prometheus_client``: what every request and decision adds, and the
gauges read when scraped.

Why the library: ``credo serve`` answers with N worker processes, and counts kept in each
process's memory meant that a scrape saw only the worker that answered it. In the library's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a private folder ``credo serve`` makes for its
workers: ``shared_between_workers``) every update is written to its process's memory-mapped file
in that folder, and a scrape, in whichever worker, sums the files of all of them, those of
workers that have exited included (counters do not go back). Without it (an app built in one
process, as the tests do) the counts live in this ``Metrics``' own registry, so that two apps in
one process count apart.

The gauges (the decision index's size and generation, the hub's audit figures) are read at
scrape time by a collector: the hub's come from the one hub all workers share, the index's from
the worker that answered (every worker follows the same generation). No gauge is kept in the
files, so an exited worker leaves nothing to forget (``mark_process_dead`` concerns only those).

The hot path: a request costs one counter and one histogram update (a lock and a write into the
memory map each, about 4 µs in all here); the labelled counters' children are looked up once per
label set and cached, since ``labels()`` itself costs more than the update.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from credo.serving.asgi import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
SHARED = "PROMETHEUS_MULTIPROC_DIR"
"""The library's variable: set, before the library is imported, in every process that counts."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

disable_created_metrics()  # type: ignore[no-untyped-call]  # a ``_created`` series per counter would double every line for nothing

Gauges = Callable[[], dict[str, float]]
"""Gauge names (without ``credo_``) and their values, read at each scrape."""


class Metrics:
    def __init__(self, gauges: Gauges) -> None:
        self.registry = CollectorRegistry()
        own: CollectorRegistry | None = self.registry
        if os.environ.get(SHARED):
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
            own = None  # the files are the one source; registered too, this process would count twice
        self.requests = Counter("credo_http_requests_total", "HTTP requests by method, route and status.",
                                ("method", "route", "status"), registry=own)
        self.latency = Histogram("credo_http_request_seconds", "Time to answer an HTTP request.",
                                 buckets=BUCKETS, registry=own)
        self.decisions = Counter("credo_decisions_total", "Decisions given, by verdict (single and batch).",
                                 ("decision",), registry=own)
        self.batch_requests = Counter("credo_batch_check_requests_total", "Batch checks answered.", registry=own)
        self.index_refreshed = Counter("credo_index_refreshed_total",
                                       "Residents re-read into a decision index.", registry=own)
        self.index_reloads = Counter("credo_index_reloads_total", "Decision indexes reloaded whole.",
                                     registry=own)
        self.registry.register(ReadGauges(gauges))
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._decisions: dict[str, Counter] = {}
        for verdict in ("allow", "deny"):  # shown from the start, at 0
            self.decided(verdict, 0)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        child = self._requests.get((method, route, status))
        if child is None:
            child = self._requests[(method, route, status)] = self.requests.labels(method, route, str(status))
        child.inc()
        self.latency.observe(seconds)

    def decided(self, verdict: str, n: int = 1) -> None:
        child = self._decisions.get(verdict)
        if child is None:
            child = self._decisions[verdict] = self.decisions.labels(verdict)
        child.inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ReadGauges(Collector):
    """The gauges, read when scraped rather than kept up to date on every change."""

    def __init__(self, read: Gauges) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        for name, value in sorted(self.read().items()):
            yield GaugeMetricFamily(f"credo_{name}", "Read at scrape time.", value=value)


@contextmanager
def shared_between_workers() -> Iterator[None]:
    """A fresh private folder for the workers' counts, named in ``SHARED`` while the block runs
    (for the worker processes started in it) and removed afterwards: the counts of one run of the
    server, never those of an earlier one."""
    folder = tempfile.mkdtemp(prefix="credo-metrics-")
    os.environ[SHARED] = folder
    try:
        yield
    finally:
        os.environ.pop(SHARED, None)
        shutil.rmtree(folder, ignore_errors=True)


class MetricsMiddleware:
    """Pure ASGI (no per-request task as BaseHTTPMiddleware makes): times and counts each request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            self.metrics.observe(scope["method"], getattr(route, "path", "(unmatched)"), status,
                                 time.perf_counter() - started)
