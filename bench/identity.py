"""Identity matching: described rows matched against the registry with Splink, beside a floor.

    .venv/bin/python -m bench.identity [--residents 1000000] [--rows 100000] [--keep DIR]

A synthetic city (``credo synth``'s generator with ``identity`` rows: descriptions with realistic
mistakes) gives the registry and the described rows; the population is ingested once. Each measured
phase then runs in a child process of its own, on the database opened read-only, so that its peak RSS
is its own:

* ``floor``: DuckDB joining the described rows to the registry on the blocking keys alone (the same
  district and birth date; or the same district, birth-date digits and pinyin initial), counting the
  pairs: the least any matching of these rows could cost, since every candidate pair has to be found;
* ``estimate``: the model's ``u`` from random registry pairs (``credo.matching.estimate``), paid once
  per registry change, not per batch;
* ``match``: ``credo.matching.candidates`` for every row: the blocked registry read from the store,
  pinyin, Splink's comparisons and scores on DuckDB, the ranked candidates with their levels;
* ``match_spark`` (with ``--spark``): the same with Splink's step on a local Spark session
  (``CREDO_MATCH_ENGINE=spark``, ``credo.matchspark``); the session's start is timed apart
  (``session_s``), and the peak RSS is the Python driver's only (the JVM is a process of its own,
  ``jvm_peak_mb`` from its own accounting). Each run checks the candidates equal DuckDB's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

NOW = "2024-09-01T10:00:00+08:00"
TODAY = date(2024, 9, 1)

FLOOR_SQL = """
WITH d AS (SELECT subject_district AS district, CAST(subject_birth_date AS DATE) AS birth_date,
                  array_to_string(list_sort(string_split(replace(subject_birth_date, '-', ''), '')), '') AS digits,
                  lower(left(subject_name, 1)) AS initial
           FROM described),
r AS (SELECT district, strptime(CAST(resident // 1000 % 100000000 AS VARCHAR), '%Y%m%d')::DATE AS birth_date,
             array_to_string(list_sort(string_split(CAST(resident // 1000 % 100000000 AS VARCHAR), '')), '') AS digits,
             lower(left(name, 1)) AS initial
      FROM residents)
SELECT (SELECT count(*) FROM d JOIN r USING (district, birth_date))
     + (SELECT count(*) FROM d JOIN r ON d.district = r.district AND d.digits = r.digits AND d.initial = r.initial
                                     AND d.birth_date <> r.birth_date)
"""
"""The pairs of Splink's two blocking rules (``credo.matching``), counted by DuckDB alone. The synthetic
city's names are in the Latin alphabet, so a name's first letter, lowercased, is its pinyin initial."""


def _described(folder: Path, rows: int) -> pa.Table:
    [path] = folder.glob("*-identity.csv")
    t = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ("subject", "subject_name", "subject_birth_date", "subject_district")},
        strings_can_be_null=True))
    t = t.filter(pc.is_valid(t.column("subject_name")))
    return t.slice(0, rows)


def phase(name: str, db: Path, folder: Path, rows: int) -> dict[str, Any]:
    described = _described(folder, rows)
    con = duckdb.connect(str(db), read_only=True)
    start = time.perf_counter()
    out: dict[str, Any] = {"rows": described.num_rows}
    if name == "floor":
        con.register("described", described)
        out["pairs"] = con.execute(FLOOR_SQL).fetchall()[0][0]
    else:
        from credo import matching

        model = matching.estimate(con)
        out["estimate_s"] = round(time.perf_counter() - start, 2)
        if name in ("match", "match_spark"):
            predict = matching.predict_on_duckdb
            if name == "match_spark":
                from credo.engines.spark import session
                from credo.matchspark import predict_on_spark

                begun = time.perf_counter()
                spark = session("local[2]")
                out["session_s"] = round(time.perf_counter() - begun, 2)
                predict = predict_on_spark(spark)
            start = time.perf_counter()
            table = pa.table({"pos": pa.array(range(described.num_rows), pa.int64()),
                              "name": described.column("subject_name"),
                              "birth_date": pc.cast(pc.strptime(described.column("subject_birth_date"),
                                                                format="%Y-%m-%d", unit="s"), pa.date32()),
                              "district": described.column("subject_district")})
            found = matching.candidates(con, model, table, predict)
            out["candidates"] = found.num_rows
            out["digest"] = _digest(found)
            if name == "match_spark":
                out["jvm_peak_mb"] = _jvm_peak_mb(spark)
            out["rows_with_a_candidate"] = len(pc.unique(found.column("pos")))
    out["seconds"] = round(time.perf_counter() - start, 2)
    out["rows_per_s"] = round(out["rows"] / max(out["seconds"], 1e-9))
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    con.close()
    return out


def _digest(found: pa.Table) -> str:
    """The ranked candidates (row, rank, resident, probability to 6 places) as a hash: engines compared."""
    import hashlib

    rounded = pc.round(found.column("probability"), 6).to_pylist()
    keys = zip(found.column("pos").to_pylist(), found.column("rank").to_pylist(),
               found.column("resident").to_pylist(), rounded, strict=True)
    return hashlib.sha256(repr(list(keys)).encode()).hexdigest()[:16]


def _jvm_peak_mb(spark: Any) -> int:
    """The driver JVM's peak resident memory, from its /proc status (local mode: driver and executors)."""
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    [line] = [x for x in status.splitlines() if x.startswith("VmHWM:")]
    return round(int(line.split()[1]) / 1024)


def build(folder: Path, residents: int, rows: int) -> Path:
    from credo.service import Credo
    from credo.synth import synth_city
    from credo.synth.rates import DEFAULT_POLICY

    os.environ["CREDO_NOW"] = NOW
    share = min(1.0, 2 * rows / residents * 1.05)  # half the identity rows are legacy IDs
    summary = synth_city(residents, folder / "city", seed=11, identity=share, today=TODAY)
    db = folder / "city.duckdb"
    credo = Credo.open(db)
    try:
        credo.apply_policy(DEFAULT_POLICY.read_text(encoding="utf-8"))
        credo.ingest_files("population", [folder / "city" / summary["population"]["file"]])
    finally:
        credo.close()
    return db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--spark", action="store_true", help="also match on a local Spark session")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.db, args.db.parent / "city", args.rows)))
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="credo-bench-identity-"))
    try:
        t = time.perf_counter()
        db = build(folder, args.residents, args.rows)
        print(f"city of {args.residents:,} residents built and registered in {time.perf_counter() - t:.0f} s",
              flush=True)
        results = {}
        for name in ("floor", "estimate", "match", *(("match_spark",) if args.spark else ())):
            proc = subprocess.run([sys.executable, "-m", "bench.identity", "--phase", name, "--db", str(db),
                                   "--rows", str(args.rows)], capture_output=True, text=True, check=True)
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name:9} {json.dumps(results[name])}", flush=True)
        m, f = results["match"], results["floor"]
        print(f"match: {m['rows_per_s']:,} rows/s, peak {m['peak_rss_mb']:,} MB; floor (blocking join alone): "
              f"{f['rows_per_s']:,} rows/s, peak {f['peak_rss_mb']:,} MB; match / floor time "
              f"{m['seconds'] / max(f['seconds'], 1e-9):.1f}x", flush=True)
        if args.spark:
            s = results["match_spark"]
            print(f"match on Spark: {s['rows_per_s']:,} rows/s (session start {s['session_s']} s apart), driver peak "
                  f"{s['peak_rss_mb']:,} MB, JVM peak {s['jvm_peak_mb']:,} MB; candidates "
                  f"{'the same as' if s['digest'] == m['digest'] else 'DIFFERENT from'} DuckDB's", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
