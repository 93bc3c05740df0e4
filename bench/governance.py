"""Governance benchmark: what-if and fairness at city scale, against a bare aggregate of the same ledger.

Run ``python -m bench.governance [--residents 1000000] [--seed 7] [--engine duckdb|spark] [--keep DIR]``.

Why the ledger is generated here rather than through ``credo synth`` and ingest: the reports
need only the tables ingest leaves behind, and their cost depends on what the keys carry
(16 districts, ages 0-90, both sexes) and on ~3 records per resident, like the reference city
(22 M residents, 68 M records). So residents get real GB 11643 keys, and records follow the
per-type yearly rates of ``credo.synth`` (a flat rate if it does not import) over 4.5 years,
with resolving records (fulfilled judgments, settled arrears) where the policy has them.
One district (Yanqing, 110119) is given twelve times the court-default rate: a constructed
disparity, so that the fairness report's flag-and-driver path runs at scale as well.

Each phase runs in a fresh child process, so its peak RSS is its own. The phases:
``bare`` (points summed by resident over the ledger, written to a temporary table: the least an
engine can do that touches every record), ``pipeline`` (one full scoring run materialised, the
floor of anything that scores), ``whatif`` (Beijing in force, Hangzhou proposed) and
``fairness`` (Beijing). Ratios are against ``bare`` of the same run, for wall-clock and for CPU
seconds (on a shared machine the CPU figure is the steadier one). With ``--engine spark`` the two
reports run on Spark (``CREDO_SPARK_MASTER``, local[2] by default) over a Parquet export of the
store, while ``bare`` and ``pipeline`` stay on DuckDB as the floor; the CPU and peak figures of
a Spark phase are the Python driver's only (the JVM is another process), so compare wall-clock.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

AS_OF = datetime(2026, 3, 1)
YEARS = 4.5
US_PER_DAY = 86_400_000_000
CHUNK = 2_000_000
DISTRICTS = (("110101", 70.9), ("110102", 110.6), ("110105", 345.2), ("110106", 201.9), ("110107", 56.8),
             ("110108", 313.3), ("110109", 39.3), ("110111", 131.3), ("110112", 184.0), ("110113", 132.4),
             ("110114", 226.9), ("110115", 199.4), ("110116", 44.1), ("110117", 45.7), ("110118", 52.8),
             ("110119", 34.6))
"""Beijing's 16 districts and their populations in 10k (2020 census): where keys are born."""
HOTSPOT, HOTSPOT_FACTOR = "110119", 12.0
DATE_ONLY = frozenset({"court", "tax", "market-regulator", "labour", "housing", "customs", "education",
                       "civil-affairs", "volunteer-registry", "blood-centre", "tourism", "environment"})

I64 = npt.NDArray[np.int64]


def _rates() -> tuple[dict[str, float], float, float]:
    try:
        from credo import synth

        return dict(synth.RATES), float(synth.DEFAULT_RATE), float(synth.DEFAULT_RESOLVE_SHARE)
    except Exception:  # pragma: no cover - only while synth is broken mid-edit
        return {}, 0.02, 0.5


def residents(n: int, rng: np.random.Generator) -> I64:
    """``n`` distinct resident keys: region * 10^11 + birth YYYYMMDD * 10^3 + sequence."""
    weights = np.array([w for _, w in DISTRICTS])
    regions = np.array([int(c) for c, _ in DISTRICTS], dtype=np.int64)
    out = np.empty(0, np.int64)
    while len(out) < n:
        k = int((n - len(out)) * 1.05) + 16
        region = regions[rng.choice(len(regions), k, p=weights / weights.sum())]
        born = np.datetime64(AS_OF.date()) - rng.integers(0, 91 * 365, k).astype("timedelta64[D]")
        year, month = born.astype("datetime64[Y]"), born.astype("datetime64[M]")
        birth = ((year.astype(np.int64) + 1970) * 10000 + (month - year).astype(np.int64) * 100 + 100
                 + (born - month).astype(np.int64) + 1)
        out = np.unique(np.concatenate([out, region * 10**11 + birth * 1000 + rng.integers(0, 1000, k)]))
    return rng.permutation(out)[:n]


def ledger(keys: I64, rng: np.random.Generator) -> pa.Table:
    """~3 records per resident at synth's per-type rates, resolvers pointing at earlier records."""
    from credo import policy as policies

    policy = policies.load(policies.shipped("beijing"))
    rates, default_rate, default_share = _rates()
    end = int((AS_OF - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    span = int(YEARS * 365.25 * US_PER_DAY)
    hot = np.flatnonzero(keys // 10**11 == int(HOTSPOT))
    types = sorted(policy.doc.record_types)
    idx: list[npt.NDArray[np.int16]] = []
    who: list[I64] = []
    occ: list[I64] = []
    res: list[I64] = []
    count = 0
    for i, code in enumerate(types):
        if policy.doc.record_types[code].resolves:
            continue
        k = int(rng.poisson(len(keys) * rates.get(code, default_rate) * YEARS))
        w = rng.integers(0, len(keys), k, dtype=np.int64)
        if code == "court.judgment_default" and len(hot):
            extra = int(rng.poisson(len(hot) * rates.get(code, default_rate) * YEARS * (HOTSPOT_FACTOR - 1)))
            w = np.concatenate([w, hot[rng.integers(0, len(hot), extra)]])
        idx.append(np.full(len(w), i, np.int16))
        who.append(w)
        occ.append(end - rng.integers(1, span, len(w), dtype=np.int64))
        res.append(np.full(len(w), -1, np.int64))
        count += len(w)
    type_idx, resident, occurred = np.concatenate(idx), np.concatenate(who), np.concatenate(occ)
    for i, code in enumerate(types):
        targets = [types.index(t) for t in policy.doc.record_types[code].resolves]
        if not targets:
            continue
        pool = np.flatnonzero(np.isin(type_idx[:count], targets))
        chosen = rng.choice(pool, int(rng.binomial(len(pool), rates.get(code, default_share))), replace=False)
        at = occurred[chosen] + (rng.exponential(60, len(chosen)) * US_PER_DAY).astype(np.int64) + US_PER_DAY
        keep = at <= end
        idx.append(np.full(int(keep.sum()), i, np.int16))
        who.append(resident[chosen][keep])
        occ.append(at[keep])
        res.append(chosen[keep].astype(np.int64))
    type_idx, resident, occurred = np.concatenate(idx), np.concatenate(who), np.concatenate(occ)
    resolves = np.concatenate(res)
    agency = np.array([policy.doc.record_types[t].agency for t in types], dtype=object)
    dated = np.array([a in DATE_ONLY for a in agency])[type_idx]
    occurred = np.where(dated, occurred - occurred % US_PER_DAY, occurred)
    n = len(type_idx)
    ids = pc.binary_join_element_wise("r", pc.cast(pa.array(np.arange(n)), pa.string()), "")
    take = pa.array(type_idx.astype(np.int32))
    return pa.table({
        "agency": pc.take(pa.array(agency.tolist(), pa.string()), take),
        "record_id": ids,
        "type": pc.take(pa.array(types), take),
        "resident": pa.array(keys[resident]),
        "subject": pa.nulls(n, pa.string()),
        "occurred_at": pa.array(occurred.astype("datetime64[us]")),
        "resolves": pc.if_else(pa.array(resolves >= 0), pc.take(ids, pa.array(np.maximum(resolves, 0))),
                               pa.nulls(n, pa.string())),
        "attributes": pa.nulls(n, pa.string()),
        "batch": pa.array(np.zeros(n, np.int32)),
    })


def build(path: Path, n: int, seed: int) -> dict[str, Any]:
    """A store at ``path`` with the Beijing policy, ``n`` residents and their ledger (nothing scored)."""
    from credo import policy as policies
    from credo.store import connect, transaction

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    keys = residents(n, rng)
    led = ledger(keys, rng)
    con = connect(path)
    with transaction(con):
        policies.save(con, policies.load(policies.shipped("beijing")), by="bench", now=AS_OF)
        people = pa.table({"resident": pa.array(keys), "name": pa.nulls(n, pa.string()),
                           "district": pc.cast(pa.array(keys // 10**11), pa.string()),
                           "status": pa.array(np.full(n, "active", dtype=object).tolist(), pa.string()),
                           "status_date": pa.nulls(n, pa.timestamp("us")),
                           "updated_at": pa.nulls(n, pa.timestamp("us")),
                           "batch": pa.array(np.zeros(n, np.int32))})
        con.register("people_in", people)
        con.execute("INSERT INTO residents SELECT * FROM people_in")
        for lo in range(0, led.num_rows, CHUNK):
            con.register("chunk_in", led.slice(lo, CHUNK))
            con.execute("INSERT INTO ledger SELECT * FROM chunk_in")
            con.unregister("chunk_in")
    con.execute("CHECKPOINT")
    con.close()
    return {"residents": n, "records": led.num_rows, "seconds": time.perf_counter() - t0}


def phase(name: str, path: Path, engine: str = "duckdb") -> dict[str, Any]:
    """Run one measured phase on the store at ``path`` (in this process: the caller forks one per phase)."""
    from credo import governance
    from credo import policy as policies
    from credo.engines.duckdb import DuckDBScoring
    from credo.store import connect

    con = connect(path)
    in_force = policies.current(con)
    t0, c0 = time.perf_counter(), _cpu()
    detail: dict[str, Any] = {}
    if name == "bare":
        con.register("p_types_in", in_force.tables()["p_types"])
        con.execute("CREATE TEMP TABLE bare AS SELECT l.resident, sum(t.points) AS points FROM ledger l "
                    "JOIN p_types_in t ON t.type = l.type GROUP BY l.resident")
    elif name == "pipeline":
        DuckDBScoring(con).bind(in_force.tables(), AS_OF, None)
        con.execute("CREATE TEMP TABLE once AS SELECT * FROM scored")
    elif name == "whatif":
        w = governance.whatif(con, in_force, policies.load(policies.shipped("hangzhou")), AS_OF, engine=engine)
        detail = {"residents_changed_grade": w["residents_changed_grade"],
                  "transitions": dict(sorted(w["transitions"].items(), key=lambda kv: -kv[1])[:5])}
    elif name == "fairness":
        f = governance.fairness(con, in_force, AS_OF, engine=engine)
        detail = {"flags": [(x["dimension"], x["group"], x["outcome"], x["impact_ratio"],
                             [d["type"] for d in x["drivers"]]) for x in f["flags"]]}
    else:
        raise SystemExit(f"unknown phase {name!r}")
    seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    con.close()
    return {"phase": name, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), **detail}


def _cpu() -> float:
    """CPU seconds of this process: on a shared machine, steadier than the wall clock."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(*args: str) -> dict[str, Any]:
    got = subprocess.run([sys.executable, "-m", "bench.governance", *args], capture_output=True, text=True,
                         check=False)
    if got.returncode:
        raise SystemExit(f"phase {args} failed:\n{got.stderr}")
    result: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb", help="for whatif and fairness")
    ap.add_argument("--keep", type=Path, help="keep the store in this folder (default: a temporary one)")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        if args.phase == "build":
            out = build(args.db, args.residents, args.seed)
            out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        else:
            out = phase(args.phase, args.db, args.engine)
        print(json.dumps(out, default=str))
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="credo-bench-gov-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "gov.duckdb"
    db.unlink(missing_ok=True)
    started = date.today().isoformat()
    try:
        built = _child("--phase", "build", "--db", str(db), "--residents", str(args.residents),
                       "--seed", str(args.seed))
        print(f"built {built['residents']:,} residents, {built['records']:,} records in "
              f"{built['seconds']:.1f}s (peak {built['peak_rss_mb']:,} MB)", flush=True)
        runs: dict[str, dict[str, Any]] = {}
        for name in ("bare", "pipeline", "whatif", "fairness"):
            r = runs[name] = _child("--phase", name, "--db", str(db), "--engine", args.engine)
            bare, bare_cpu = runs["bare"]["seconds"] or 0.01, runs["bare"]["cpu_seconds"] or 0.01
            shown = ("phase", "seconds", "cpu_seconds", "peak_rss_mb")
            extra = {k: v for k, v in r.items() if k not in shown}
            print(f"{name:9} {r['seconds']:8.2f}s x{r['seconds'] / bare:5.1f} bare   "
                  f"cpu {r['cpu_seconds']:8.2f}s x{r['cpu_seconds'] / bare_cpu:5.1f} bare   "
                  f"peak {r['peak_rss_mb']:>6,} MB"
                  + (f"  {json.dumps(extra)}" if extra else ""), flush=True)
        print(json.dumps({"date": started, "engine": args.engine, "residents": built["residents"],
                          "records": built["records"],
                          "build": built, **runs}, default=str))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
