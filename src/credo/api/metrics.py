"""Prometheus metrics, written by hand: a few counters and one latency histogram.

Counting costs a dict update per request, cheap enough for the hot path, and
the text format is simple enough that a client library would add more than it
saves. Each server process counts its own requests (labelled with its pid);
audit figures come from the hub, which sees every process's entries.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.decisions: Counter[str] = Counter()
        self.batch_requests = 0
        self.index_refreshed = 0
        self.index_reloads = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        self.latency_sum += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
                return
        self.buckets[-1] += 1

    def render(self, gauges: dict[str, float], hub: dict[str, float]) -> str:
        pid = f'pid="{os.getpid()}"'
        lines = ["# TYPE credo_http_requests_total counter"]
        for (method, route, status), n in sorted(self.requests.items()):
            labels = f'{pid},method="{method}",route="{route}",status="{status}"'
            lines.append(f"credo_http_requests_total{{{labels}}} {n}")
        lines.append("# TYPE credo_http_request_seconds histogram")
        total = 0
        for bound, n in zip([*BUCKETS, float("inf")], self.buckets, strict=True):
            total += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'credo_http_request_seconds_bucket{{{pid},le="{le}"}} {total}')
        lines.append(f"credo_http_request_seconds_sum{{{pid}}} {self.latency_sum}")
        lines.append(f"credo_http_request_seconds_count{{{pid}}} {total}")
        lines.append("# TYPE credo_decisions_total counter")
        for verdict, n in sorted({"allow": 0, "deny": 0, **self.decisions}.items()):
            lines.append(f'credo_decisions_total{{{pid},decision="{verdict}"}} {n}')
        lines.append(f"credo_batch_check_requests_total{{{pid}}} {self.batch_requests}")
        lines.append(f"credo_index_refreshed_total{{{pid}}} {self.index_refreshed}")
        lines.append(f"credo_index_reloads_total{{{pid}}} {self.index_reloads}")
        for name, value in sorted(gauges.items()):
            lines.append(f"credo_{name}{{{pid}}} {value}")
        for name, value in sorted(hub.items()):
            lines.append(f"credo_hub_{name} {value}")
        return "\n".join(lines) + "\n"


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
