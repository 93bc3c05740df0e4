"""Scoring benchmark: full recompute, the bare-engine floor, a 10k-record update, and Spark beside DuckDB.

Run ``python -m bench.scoring [--sizes 200000,1000000] [--spark-size 1000000]``.

Why the ledger is generated here rather than through ``credo synth`` and ingest: ingest of 68 M
records is its own benchmark, and scoring only needs the tables ingest leaves behind. The
generator writes those tables straight from numpy, with the per-type yearly rates and
resolution shares of ``credo.synth`` (falling back to a flat rate when that module is not
importable), over a window sized so that the city has ~3.1 records per resident, like the
reference city (22 M residents, 68 M records).

Each size runs in fresh child processes (one to generate, one to score), so that each phase's
peak RSS is its own and not the generator's. The bare floor is the simplest aggregate the engine
can compute over the same ledger: points summed by resident, written to a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

AS_OF = datetime(2026, 3, 1)
YEARS = 4.47
"""Window of the ledger, in years before AS_OF: ~3.1 records per resident with synth's rates."""
KEY_BASE = 11010519800101000
"""Residents are keys KEY_BASE + i (scoring never parses a key, so they need not be real IDs)."""
US_PER_DAY = 86_400_000_000
CHUNK = 2_000_000
DATE_ONLY = frozenset({"court", "tax", "market-regulator", "labour", "housing", "customs", "education",
                       "civil-affairs", "volunteer-registry", "blood-centre", "tourism", "environment"})
"""Agencies whose records are dated, not timed (midnight city time), as in synth's feeds."""
UPDATES = 3
"""Incremental updates measured per size, each appending the batch, rescoring and committing."""
REVOKED_SHARE = 0.002
OBJECTION_SHARE = 0.0005

I64 = npt.NDArray[np.int64]


def _synth_rates() -> tuple[dict[str, float], float, float, dict[str, int], float]:
    """synth's rates when it imports cleanly (it is being developed alongside), else flat ones."""
    try:
        from credo import synth

        return (dict(synth.RATES), float(synth.DEFAULT_RATE), float(synth.DEFAULT_RESOLVE_SHARE),
                dict(synth.RESOLVE_DELAY), float(synth.CIVIC_SHARE))
    except Exception:  # pragma: no cover - only while synth is broken mid-edit
        return {}, 0.02, 0.5, {}, 0.12


@dataclass
class Ledger:
    """The generated ledger as columns; record ``i`` has record_id ``r{i}``."""

    type_idx: npt.NDArray[np.int16]
    resident: I64
    occurred: I64  # microseconds since the epoch, naive city time
    resolves: I64  # index of the resolved record, -1 for none


def generate(n: int, seed: int, types: list[str], agency_of: dict[str, str],
             resolves_of: dict[str, list[str]]) -> Ledger:
    """A ledger for ``n`` residents: numbers only, vectorised; strings are made when inserting."""
    rates, default_rate, default_share, delays, civic_share = _synth_rates()
    rng = np.random.default_rng(seed)
    end = int((AS_OF - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    span = int(YEARS * 365.25 * US_PER_DAY)
    civic_n = max(1, int(n * civic_share))
    parts: list[tuple[int, I64, I64, I64]] = []
    offset = 0
    for i, code in enumerate(types):
        if resolves_of[code]:
            continue
        k = int(rng.poisson(n * rates.get(code, default_rate) * YEARS))
        who = rng.integers(0, n, k, dtype=np.int64)
        if code.split(".")[0] in ("volunteer", "blood", "civil") and k:
            civic = rng.random(k) < 0.8
            who[civic] = rng.integers(0, civic_n, int(civic.sum()), dtype=np.int64)
        occ = end - rng.integers(1, span, k, dtype=np.int64)
        if agency_of[code] in DATE_ONLY:
            occ -= occ % US_PER_DAY
        parts.append((i, who, occ, np.full(k, -1, np.int64)))
        offset += k
    type_idx = np.concatenate([np.full(len(w), i, np.int16) for i, w, _, _ in parts])
    resident = np.concatenate([w for _, w, _, _ in parts])
    occurred = np.concatenate([o for _, _, o, _ in parts])
    resolves = np.concatenate([r for _, _, _, r in parts])
    extra: list[tuple[int, I64, I64, I64]] = []
    for i, code in enumerate(types):
        targets = [types.index(t) for t in resolves_of[code]]
        if not targets:
            continue
        pool = np.flatnonzero(np.isin(type_idx, targets))
        m = int(rng.binomial(len(pool), rates.get(code, default_share)))
        chosen = rng.choice(pool, m, replace=False) if m else pool[:0]
        delay = rng.exponential(delays.get(agency_of[code], 60), m) * US_PER_DAY
        occ = occurred[chosen] + delay.astype(np.int64) + US_PER_DAY
        if agency_of[code] in DATE_ONLY:
            occ -= occ % US_PER_DAY
        keep = occ <= end
        extra.append((i, resident[chosen][keep], occ[keep], chosen[keep].astype(np.int64)))
    return Ledger(
        np.concatenate([type_idx, *[np.full(len(w), i, np.int16) for i, w, _, _ in extra]]),
        np.concatenate([resident, *[w for _, w, _, _ in extra]]) + KEY_BASE,
        np.concatenate([occurred, *[o for _, _, o, _ in extra]]),
        np.concatenate([resolves, *[r for _, _, _, r in extra]]),
    )


def _ids(index: I64) -> pa.Array:
    return pc.binary_join_element_wise("r", pc.cast(pa.array(index), pa.string()), "")


def ledger_chunks(led: Ledger, types: list[str], agency_of: dict[str, str],
                  start: int = 0) -> Iterator[pa.Table]:
    """The ledger as Arrow tables in the store's column order (record ids numbered from ``start``)."""
    type_arr = pa.array(types)
    agency_arr = pa.array([agency_of[t] for t in types])
    for lo in range(0, len(led.resident), CHUNK):
        hi = min(lo + CHUNK, len(led.resident))
        idx = pa.array(led.type_idx[lo:hi].astype(np.int32))
        res = led.resolves[lo:hi]
        resolves = pc.if_else(pa.array(res >= 0), _ids(res + start), pa.nulls(hi - lo, pa.string()))
        yield pa.table({
            "agency": pc.take(agency_arr, idx),
            "record_id": _ids(np.arange(start + lo, start + hi, dtype=np.int64)),
            "type": pc.take(type_arr, idx),
            "resident": pa.array(led.resident[lo:hi]),
            "subject": pa.nulls(hi - lo, pa.string()),
            "occurred_at": pa.array(led.occurred[lo:hi].astype("datetime64[us]")),
            "resolves": resolves,
            "attributes": pa.nulls(hi - lo, pa.string()),
            "batch": pa.array(np.zeros(hi - lo, np.int32)),
        })


def build(path: Path, n: int, seed: int = 7) -> dict[str, Any]:
    """Create a store at ``path`` holding the Beijing policy and a generated city of ``n`` residents."""
    from credo import policy as policies
    from credo.store import connect, transaction

    policy = policies.load(policies.shipped("beijing"))
    types = sorted(policy.doc.record_types)
    agency_of = {c: t.agency for c, t in policy.doc.record_types.items()}
    resolves_of = {c: list(t.resolves) for c, t in policy.doc.record_types.items()}
    t0 = time.perf_counter()
    led = generate(n, seed, types, agency_of, resolves_of)
    generated = time.perf_counter() - t0
    con = connect(path)
    with transaction(con):
        policies.save(con, policy, by="bench", now=AS_OF)
    residents = pa.table({"resident": pa.array(np.arange(n, dtype=np.int64) + KEY_BASE),
                          "name": pa.nulls(n, pa.string()), "district": pa.nulls(n, pa.string()),
                          "status": pa.array(["active"]).take(pa.array(np.zeros(n, np.int32))),
                          "status_date": pa.nulls(n, pa.timestamp("us")),
                          "updated_at": pa.nulls(n, pa.timestamp("us")),
                          "batch": pa.array(np.zeros(n, np.int32))})
    con.register("people", residents)
    con.execute("INSERT INTO residents SELECT * FROM people")
    for chunk in ledger_chunks(led, types, agency_of):
        con.register("chunk", chunk)
        con.execute("INSERT INTO ledger SELECT * FROM chunk")
        con.unregister("chunk")
    rng = np.random.default_rng(seed + 1)
    end = np.datetime64(AS_OF, "us").astype(np.int64)
    rec = len(led.resident)
    rv = rng.choice(rec, int(rec * REVOKED_SHARE), replace=False)
    rv_at = np.minimum(led.occurred[rv] + rng.integers(1, 200, len(rv)) * US_PER_DAY, end)
    ob = rng.choice(rec, int(rec * OBJECTION_SHARE), replace=False)
    opened = led.occurred[ob] + rng.integers(1, 100, len(ob)) * US_PER_DAY
    keep = opened <= end
    ob, opened = ob[keep], opened[keep]
    closed = opened + rng.integers(1, 40, len(ob)) * US_PER_DAY
    closes = closed <= end
    upheld = closes & (rng.random(len(ob)) < 0.2)
    agencies = np.array([agency_of[t] for t in types], dtype=object)
    con.register("rv", pa.table({"agency": agencies[led.type_idx[rv]].tolist(), "record_id": _ids(rv),
                                 "revoked_at": rv_at.astype("datetime64[us]")}))
    con.execute("INSERT INTO revocations SELECT agency, record_id, revoked_at, 'bench', 'bench', NULL "
                "FROM rv")
    events = pa.table({
        "objection": np.concatenate([np.arange(len(ob)), np.flatnonzero(closes)]) + 1,
        "step": ["opened"] * len(ob) + np.where(upheld, "upheld", "rejected")[closes].tolist(),
        "resident": np.concatenate([led.resident[ob], led.resident[ob][closes]]),
        "agency": np.concatenate([agencies[led.type_idx[ob]], agencies[led.type_idx[ob]][closes]]).tolist(),
        "record_id": pa.concat_arrays([_ids(ob), _ids(ob[closes])]),
        "happened_at": np.concatenate([opened, closed[closes]]).astype("datetime64[us]"),
    })
    con.register("ev", events)
    con.execute("INSERT INTO objection_events SELECT objection, step, resident, agency, record_id, 'bench', "
                "'bench', happened_at FROM ev")
    con.register("up", events.filter(pc.equal(events["step"], "upheld")))
    con.execute("INSERT INTO revocations SELECT agency, record_id, happened_at, 'objection upheld', 'bench', "
                "objection FROM up")
    con.execute("CHECKPOINT")
    con.close()
    return {"residents": n, "records": rec, "generate_s": round(generated, 2),
            "write_s": round(time.perf_counter() - t0 - generated, 2)}


# -- measuring ------------------------------------------------------------------------------------
def _rss(pid: int) -> int:
    """Resident set of ``pid`` and its descendants (the JVM of a Spark run), in bytes."""
    total = 0
    try:
        with open(f"/proc/{pid}/statm") as f:
            total = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            total += sum(_rss(int(c)) for c in f.read().split())
    except OSError:
        pass
    return total


class Peak:
    """Samples the process tree's RSS every 20 ms; ``phase()`` reports the peak within a block."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss(os.getpid()))

    @contextmanager
    def phase(self, into: dict[str, Any], name: str) -> Iterator[None]:
        self.peak = _rss(os.getpid())
        wall, cpu = time.perf_counter(), _cpu()
        yield
        into[f"{name}_s"] = round(time.perf_counter() - wall, 3)
        into[f"{name}_cpu_s"] = round(_cpu() - cpu, 3)
        into[f"{name}_peak_rss_mib"] = round(max(self.peak, _rss(os.getpid())) / 2**20)


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children: steadier than wall time on a shared box."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


BATCH_TYPES = {"traffic.speeding": "traffic-police", "traffic.illegal_parking": "traffic-police",
               "volunteer.service": "volunteer-registry", "court.judgment_default": "court"}


def _batch(n: int, size: int, seed: int) -> tuple[pa.Table, I64]:
    """A batch like an agency's day: records for random residents; returns it and whom it touches."""
    rng = np.random.default_rng(seed)
    who = rng.integers(0, n, size, dtype=np.int64) + KEY_BASE
    codes = sorted(BATCH_TYPES)
    pick = rng.integers(0, len(codes), size)
    at = np.datetime64(AS_OF, "us") - rng.integers(1, 86_400, size).astype("timedelta64[s]")
    table = pa.table({
        "agency": [BATCH_TYPES[codes[i]] for i in pick], "record_id": [f"batch-{i}" for i in range(size)],
        "type": [codes[i] for i in pick], "resident": who, "subject": pa.nulls(size, pa.string()),
        "occurred_at": at.astype("datetime64[us]"), "resolves": pa.nulls(size, pa.string()),
        "attributes": pa.nulls(size, pa.string()), "batch": np.ones(size, np.int32),
    })
    return table, np.unique(who)


BARE = ("CREATE OR REPLACE TABLE bench_bare AS SELECT l.resident, sum(p.points) AS points "
        "FROM ledger l JOIN p_types p ON p.type = l.type GROUP BY l.resident")
"""The floor: the simplest aggregate over the same ledger, points summed by resident into a table."""
CHECKSUM = "SELECT count(*), sum(score), sum(hash(grade) % 1000), count(changes_at) FROM standings"


def measure_duckdb(path: Path, n: int, repeat: int, batch: int) -> dict[str, Any]:
    """Bare floor, full recompute (best of ``repeat``), then a ``batch``-record update, in one process."""
    from credo import policy as policies
    from credo import scoring
    from credo.engines.duckdb import unordered
    from credo.store import connect, transaction

    con = connect(path)
    con.execute("SET enable_progress_bar = false")
    policy = policies.current(con)
    peak, out = Peak(), dict[str, Any]()
    out["records"] = int(con.execute("SELECT count(*) FROM ledger").fetchall()[0][0])
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "full": []}
    for _ in range(repeat):
        for name, table in policy.tables().items():
            con.register(name, table)
        runs["bare"].append({})
        with peak.phase(runs["bare"][-1], "bare"), unordered(con):  # the same freedom scoring has
            con.execute(BARE)
        runs["full"].append({})
        with peak.phase(runs["full"][-1], "full"), transaction(con):
            scoring.rescore(con, policy, AS_OF)
    for name, results in runs.items():
        out.update(min(results, key=lambda r: r[f"{name}_s"]))
    out["checksum"] = [str(v) for v in con.execute(CHECKSUM).fetchall()[0]]
    table, touched = _batch(n, batch, seed=11)
    con.register("batch_in", table)
    updates: list[dict[str, Any]] = []
    for _ in range(UPDATES):  # the first after a full run is slower (cold pages): report both
        con.execute("BEGIN TRANSACTION")
        updates.append({})
        with peak.phase(updates[-1], "append"):
            con.execute("INSERT INTO ledger SELECT * FROM batch_in")
        with peak.phase(updates[-1], "update"):
            out["update_residents"] = scoring.rescore(con, policy, AS_OF, touched)
        with peak.phase(updates[-1], "commit"):
            con.execute("COMMIT")
        con.execute("DELETE FROM ledger WHERE batch = 1")  # leave the city as generated
    out.update(min(updates, key=lambda r: r["update_s"]))
    out["update_first_s"] = updates[0]["update_s"]
    con.close()
    return out


def measure_spark(path: Path, conf: dict[str, str]) -> dict[str, Any]:
    """Spark on the same store: session start, then two full runs (the first warms the JVM)."""
    from credo import policy as policies
    from credo import scoring
    from credo.engines.spark import session
    from credo.store import connect

    con = connect(path)
    con.execute("SET enable_progress_bar = false")
    policy = policies.current(con)
    peak, out, second = Peak(), dict[str, Any](), dict[str, Any]()
    with peak.phase(out, "spark_start"):
        spark = session(conf=conf)
    with peak.phase(out, "spark_first"):
        scoring.rescore_on_spark(con, policy, AS_OF, spark=spark)
    with peak.phase(second, "spark"):
        scoring.rescore_on_spark(con, policy, AS_OF, spark=spark)
    out.update(second)
    out["checksum"] = [str(v) for v in con.execute(CHECKSUM).fetchall()[0]]
    spark.stop()
    con.close()
    return out


def _child(phase: str, db: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one phase in a fresh interpreter (its peak RSS is its own) and read its JSON line."""
    env = {**os.environ, "CREDO_MEMORY_LIMIT": args.memory_limit, "PYTHONUNBUFFERED": "1"}
    if args.threads:
        env["CREDO_THREADS"] = str(args.threads)
    cmd = [sys.executable, "-m", "bench.scoring", "--phase", phase, "--db", str(db), "--n", str(n),
           "--repeat", str(args.repeat if n <= 5_000_000 else 1), "--batch", str(args.batch)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    if done.returncode:
        raise SystemExit(f"{phase} at {n:,} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _phase(args: argparse.Namespace) -> None:
    db = Path(args.db)
    if args.phase == "build":
        db.unlink(missing_ok=True)
        result = build(db, args.n)
    elif args.phase == "duckdb":
        result = measure_duckdb(db, args.n, args.repeat, args.batch)
    else:
        result = measure_spark(db, {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "8"})
    print(json.dumps(result))


def report(rows: list[dict[str, Any]]) -> str:
    """The figures as a Markdown table, with growth and the ratios the goals are stated in."""
    head = ("| residents | records | full s (cpu s) | records/s | peak RSS MiB | bare s (cpu s) | ratio wall"
            " (cpu) | 10k update s, best of 3 (first) | Spark s (first) |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        spark = f"{r['spark_s']} ({r['spark_first_s']})" if "spark_s" in r else "-"
        lines.append(
            f"| {r['residents']:,} | {r['records']:,} | {r['full_s']} ({r['full_cpu_s']}) | "
            f"{r['records'] / r['full_s']:,.0f} | {r['full_peak_rss_mib']:,} | "
            f"{r['bare_s']} ({r['bare_cpu_s']}) | "
            f"{r['full_s'] / r['bare_s']:.2f} ({r['full_cpu_s'] / max(r['bare_cpu_s'], 1e-9):.2f}) | "
            f"{r['update_s']} ({r['update_first_s']}) | {spark} |")
    for a, b in itertools.pairwise(rows):
        k = np.log(b["full_s"] / a["full_s"]) / np.log(b["records"] / a["records"])
        lines.append(f"\n{a['residents']:,} -> {b['residents']:,}: time grows as records^{k:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="residents per city, comma-separated")
    parser.add_argument("--spark-size", type=int, default=100_000, help="size also scored on Spark (0: none)")
    parser.add_argument("--batch", type=int, default=10_000, help="records in the incremental batch")
    parser.add_argument("--repeat", type=int, default=2, help="full runs per size up to 5M (best is kept)")
    parser.add_argument("--memory-limit", default="6GB", help="DuckDB memory_limit for the runs")
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: all cores)")
    parser.add_argument("--dir", help="keep the generated cities here (reused when present)")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--phase", choices=["build", "duckdb", "spark"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        _phase(args)
        return
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="credo-bench-"))
    rows = []
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            db = folder / f"city-{n}.duckdb"
            row: dict[str, Any] = {"residents": n}
            if not db.exists():
                row.update({f"build_{k}": v for k, v in _child("build", db, n, args).items()})
            row.update(_child("duckdb", db, n, args))
            if n == args.spark_size:
                spark = _child("spark", db, n, args)
                if spark.pop("checksum") != row["checksum"]:
                    raise SystemExit(f"Spark's standings differ from DuckDB's at {n:,}")
                row.update(spark)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    print(report(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
