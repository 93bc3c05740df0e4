"""Decisions in-process and over HTTP, each beside its floor measured in the same run.

Run ``python -m bench.api [--residents N] [--seconds S]`` (about 1-2 minutes).
It builds a synthetic city through ingest (most residents without any measure, a
few on a black list, a few with a green-channel grade), then measures:

* in-process: decisions/s from the decision index, one at a time and by manifest;
* over HTTP, with 1 and with 2 uvicorn workers: single checks/s and IDs/s in batch
  checks, p50 and p99 under 32 concurrent clients, each beside a bare endpoint of
  the same server that returns a constant (the floor), and the ratio between them;
* that every decision answered is in the audit log, and the peak RSS of each process.

The load generator is asyncio with raw HTTP/1.1 keep-alive connections: bounded in
time and concurrency, and cheap enough (tens of µs a request) that the server, not
the client, is what is measured; httpx sets the city up and checks answers.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from fastapi import Request
from starlette.responses import Response

from credo import ids

POLICY = """\
policy: bench-1
timezone: Asia/Shanghai
base_score: 1000
score_bounds: [0, 2000]
grades:
  - {grade: AA, min: 1020}
  - {grade: A, min: 1000}
  - {grade: B, min: 900}
  - {grade: C, min: 0}
record_types:
  tax.arrears: {agency: tax, category: tax, points: -50, valid_for: 3y, lists: [tax_defaulter],
                basis: "bench"}
  tax.settled: {agency: tax, category: tax, points: 0, resolves: [tax.arrears], basis: "bench"}
  civic.donation: {agency: blood-centre, category: civic, points: 30, valid_for: 2y, basis: "bench"}
lists:
  tax_defaulter: {title: Tax defaulters, kind: black, grace: 5d, restricts: [rail.*, flight.*]}
actions:
  flight.book: "Book a flight"
  admin.approval: "Administrative approval"
measures:
  - {list: tax_defaulter, action: flight.book, effect: deny}
  - {grades: [AA], action: admin.approval, effect: green_channel}
"""
NOW = "2024-09-01T10:00:00+08:00"
ACTION = "flight.book"
CONCURRENCY = 32
MANIFEST = 1000


# -- the city ---------------------------------------------------------------------------------
def resident_ids(n: int, seed: int = 7) -> list[str]:
    """n distinct valid IDs: Beijing districts, births 1950-2005, random sequence numbers."""
    rng = np.random.default_rng(seed)
    keys: np.ndarray = np.zeros(0, np.int64)
    while len(keys) < n:
        m = n * 2
        region = 110101 + rng.integers(0, 18, m)
        days = rng.integers(0, (date(2005, 12, 31) - date(1950, 1, 1)).days, m)
        born = np.datetime64("1950-01-01") + days.astype("timedelta64[D]")
        ymd = born.astype(str).astype("U10")
        ymd_int = np.char.replace(ymd, "-", "").astype(np.int64)
        keys = np.unique(np.concatenate([keys, region * 10**11 + ymd_int * 1000 + rng.integers(0, 1000, m)]))
    keys = rng.permutation(keys)[:n]
    return list(ids.resident_ids_from_keys(keys).to_pylist())


def build_city(folder: Path, n: int) -> dict[str, Any]:
    """A database built the way a city is: init, then every feed through ingest."""
    from credo.service import Credo

    people = resident_ids(n)
    listed, donors = people[: n // 50], people[n // 50: n // 50 + n // 100]
    (folder / "policy.yaml").write_text(POLICY)
    rec = ("record_id", "type", "subject", "occurred_at", "resolves", "attributes")
    feeds: dict[str, list[tuple[str, ...]]] = {
        "population": [("resident_id", "name", "district", "status", "status_date"),
                       *[(p, "Resident", p[:6], "", "") for p in people]],
        "tax": [rec, *[(f"t{i}", "tax.arrears", p, "2024-06-01", "", "") for i, p in enumerate(listed)]],
        "blood-centre": [rec, *[(f"b{i}", "civic.donation", p, "2024-03-03", "", "")
                                for i, p in enumerate(donors)]],
    }
    os.environ["CREDO_NOW"] = NOW
    credo = Credo.open(folder / "bench.duckdb")
    try:
        credo.apply_policy(POLICY)
        for agency, rows in feeds.items():
            path = folder / f"{agency}.csv"
            with path.open("w", newline="") as f:
                csv.writer(f).writerows(rows)
            credo.ingest_files(agency, [path])
        provider, _ = credo.create_token("provider", provider="bench-air")
        operator, _ = credo.create_token("operator")
    finally:
        credo.close()
    return {"db": folder / "bench.duckdb", "people": people, "listed": listed, "donors": donors,
            "plain": people[n // 50 + n // 100:], "provider": provider, "operator": operator}


# -- in-process -------------------------------------------------------------------------------
def in_process(city: dict[str, Any], seconds: float) -> dict[str, float]:
    from credo.serving.core import Core
    from credo.serving.runtime import Runtime

    core = Core(city["db"])
    try:
        rt = Runtime(core, owns_hub=False)
        index, now = rt.index, rt.now()
        today = now.date()
        out: dict[str, float] = {"registered": index.registered, "measured": index.measured}
        for name, pool in (("single_plain", city["plain"]), ("single_listed", city["listed"])):
            n, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds / 4:
                for rid in pool[:2000]:
                    key, _, normalised = index.locate(rid, today)
                    index.decide(key, ACTION, now, normalised)
                n += min(len(pool), 2000)
            out[name] = n / (time.perf_counter() - started)
        located = [index.locate(rid, today) for rid in city["plain"][:2000]]
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 4:
            for key, _, normalised in located:
                index.decide(key, ACTION, now, normalised)
            n += len(located)
        out["decide_plain"] = n / (time.perf_counter() - started)
        manifest = city["plain"][:10_000]
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 4:
            keys, ok, _ = index.locate_many(manifest, today)
            index.decide_many(keys[ok], ACTION, now)
            n += len(manifest)
        out["batch_plain"] = n / (time.perf_counter() - started)
        return out
    finally:
        core.close()


# -- the server -------------------------------------------------------------------------------
def floored_app() -> Any:
    """The API plus two bare endpoints returning a constant: the floor of this server setup."""
    from credo.app import create_app

    app = create_app()
    constant = b'{"ok":true}'

    @app.get("/floor")  # type: ignore[untyped-decorator]
    async def floor() -> Response:
        return Response(constant, media_type="application/json")

    @app.post("/floor/batch")  # type: ignore[untyped-decorator]
    async def floor_batch(request: Request) -> Response:
        await request.body()
        return Response(constant, media_type="application/json")

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str

    def rss_peak_mib(self) -> dict[str, float]:
        """VmHWM of the serving process and its worker processes."""
        out: dict[str, float] = {}
        pids = [self.proc.pid, *_children(self.proc.pid)]
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        out[str(pid)] = int(line.split()[1]) / 1024
            except OSError:
                pass
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in found] + [g for c in found for g in _children(int(c))]


def start_server(db: Path, workers: int) -> Server:
    port = free_port()
    env = dict(os.environ, CREDO_DB=str(db), CREDO_NOW=NOW, CREDO_RATE_LIMIT="0")
    proc = subprocess.Popen([sys.executable, "-m", "bench.api", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, cwd=Path(__file__).parent.parent)
    return wait_ready(proc, f"http://127.0.0.1:{port}", workers)


def wait_ready(proc: subprocess.Popen[bytes], url: str, workers: int = 1, seconds: float = 120) -> Server:
    """The server once every one of its ``workers`` has answered ``/readyz`` (each has loaded its index)."""
    deadline = time.monotonic() + seconds
    ready: set[int] = set()
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/readyz", timeout=2)  # a new connection each time: any worker may answer
            if r.status_code == 200:
                ready.add(r.json()["pid"])
                if len(ready) == workers:
                    return Server(proc, url)
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not become ready")


# -- load -------------------------------------------------------------------------------------
def request_bytes(method: str, path: str, token: str, body: bytes = b"") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _connection(port: int, requests: list[bytes], stop: float, latencies: list[float],
                      statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def load(url: str, requests: list[bytes], seconds: float, concurrency: int = CONCURRENCY) -> dict[str, float]:
    """``concurrency`` keep-alive connections sending requests back to back for ``seconds``."""
    port = int(url.rsplit(":", 1)[1])
    warmup: list[float] = []

    async def run() -> tuple[list[float], dict[int, int], float]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        warm = time.perf_counter() + min(1.0, seconds / 4)
        await asyncio.gather(*[_connection(port, requests[i::concurrency] or requests, warm, warmup, {})
                               for i in range(concurrency)])
        started = time.perf_counter()
        await asyncio.gather(*[_connection(port, requests[i::concurrency] or requests, started + seconds,
                                           latencies, statuses) for i in range(concurrency)])
        return latencies, statuses, time.perf_counter() - started

    try:
        import uvloop

        latencies, statuses, elapsed = uvloop.run(run())
    except ImportError:
        latencies, statuses, elapsed = asyncio.run(run())
    lat = np.array(latencies) * 1000
    bad = sum(n for s, n in statuses.items() if s != 200)
    return {"requests_per_s": len(lat) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "non_200": bad, "requests": len(lat) + len(warmup)}


def over_http(city: dict[str, Any], workers: int, seconds: float) -> dict[str, Any]:
    server = start_server(city["db"], workers)
    try:
        token = city["provider"]
        mix = city["plain"][:3000] + city["listed"][:60] + city["donors"][:30]
        checks = [request_bytes("GET", f"/v1/check?resident_id={rid}&action={ACTION}&purpose=boarding", token)
                  for rid in mix]
        manifests = [orjson.dumps({"action": ACTION, "purpose": "boarding",
                                   "resident_ids": (mix * 2)[i * MANIFEST % len(mix):][:MANIFEST]})
                     for i in range(8)]
        batch = [request_bytes("POST", "/v1/check/batch", token, m) for m in manifests]
        floor = [request_bytes("GET", "/floor", token)]
        floor_batch = [request_bytes("POST", "/floor/batch", token, m) for m in manifests]
        out: dict[str, Any] = {
            "floor_single": load(server.url, floor, seconds),
            "check_single": load(server.url, checks, seconds),
            "floor_batch": load(server.url, floor_batch, seconds),
            "check_batch": load(server.url, batch, seconds),
        }
        for key in ("floor_batch", "check_batch"):
            out[key]["ids_per_s"] = out[key]["requests_per_s"] * MANIFEST
        out["ratio_single"] = out["check_single"]["requests_per_s"] / out["floor_single"]["requests_per_s"]
        out["ratio_batch"] = out["check_batch"]["requests_per_s"] / out["floor_batch"]["requests_per_s"]
        out["answered"] = out["check_single"]["requests"] + out["check_batch"]["requests"] * MANIFEST
        out["rss_peak_mib"] = server.rss_peak_mib()
        out["hub"] = hub_stats(server.url, city["operator"])
        return out
    finally:
        server.stop()


def hub_stats(url: str, token: str) -> dict[str, float]:
    """The hub's audit figures from /metrics: commits, entries, seconds spent committing."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    return {line.split()[0].removeprefix("credo_hub_"): float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("credo_hub_audit")}


def audited(db: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM audit WHERE event = 'decision'").fetchall()[0][0])
    finally:
        con.close()


# -- report -----------------------------------------------------------------------------------
def report(city_n: int, build_s: float, proc: dict[str, float], http: dict[int, dict[str, Any]],
           audit: dict[int, tuple[int, int]]) -> None:
    k = "{:,.0f}".format
    print(f"\ncity: {city_n:,} residents, {proc['measured']:,.0f} with a measure; built through ingest in "
          f"{build_s:.1f} s")
    print("in-process (decision index, no audit):")
    print(f"  single, resident without measure   {k(proc['single_plain'])} decisions/s "
          f"(of which the decision alone, ID already parsed: {k(proc['decide_plain'])}/s)")
    print(f"  single, resident on a black list   {k(proc['single_listed'])} decisions/s")
    print(f"  manifest of 10,000, without measure {k(proc['batch_plain'])} decisions/s")
    for workers, r in http.items():
        print(f"HTTP, {workers} worker(s), {CONCURRENCY} concurrent clients (every decision audited):")
        for name, label, unit in (("floor_single", "floor GET constant ", "req/s"),
                                  ("check_single", "GET /v1/check      ", "checks/s"),
                                  ("floor_batch", f"floor POST {MANIFEST} IDs ", "IDs/s"),
                                  ("check_batch", f"batch {MANIFEST} IDs    ", "IDs/s")):
            x = r[name]
            rate = x.get("ids_per_s", x["requests_per_s"])
            print(f"  {label} {k(rate):>10} {unit:9} p50 {x['p50_ms']:6.1f} ms  p99 {x['p99_ms']:6.1f} ms"
                  + (f"  ({x['non_200']} non-200)" if x["non_200"] else ""))
        print(f"  ratio check/floor: single {r['ratio_single']:.2f}, batch {r['ratio_batch']:.2f}")
        answered, logged = audit[workers]
        print(f"  decisions answered {answered:,}, decision entries in the audit log {logged:,}")
        hub = r["hub"]
        commits = max(hub.get("audit_commits", 0), 1)
        per_commit = hub.get("audit_entries", 0) / commits
        print(f"  audit group commits {commits:,.0f}: {per_commit:,.1f} entries and "
              f"{hub.get('audit_flush_seconds', 0) / commits * 1000:.1f} ms each on average")
        print("  peak RSS (MiB): " + ", ".join(f"pid {p} {v:.0f}" for p, v in r["rss_peak_mib"].items()))
    print(f"bench process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="(internal) the server under test")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--workers", type=int, default=1)
    parser.add_argument("--residents", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each HTTP measurement")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    if args.command == "serve":
        from credo.serving.server import run

        run("127.0.0.1", args.port, args.workers, app="bench.api:floored_app")
        return
    with tempfile.TemporaryDirectory(prefix="credo-bench-") as tmp:
        started = time.perf_counter()
        city = build_city(Path(tmp), args.residents)
        build_s = time.perf_counter() - started
        proc = in_process(city, args.seconds)
        http: dict[int, dict[str, Any]] = {}
        audit: dict[int, tuple[int, int]] = {}
        for workers in [int(w) for w in args.workers.split(",")]:
            before = audited(city["db"])
            http[workers] = over_http(city, workers, args.seconds)
            audit[workers] = (http[workers]["answered"], audited(city["db"]) - before)
        report(args.residents, build_s, proc, http, audit)


if __name__ == "__main__":
    main()
