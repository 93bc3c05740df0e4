"""Audit export benchmark: ``credo audit export`` against DuckDB's own COPY of the same log, with peak memory.

Run ``python -m bench.audit_export [--sizes 200000,4560000] [--keep DIR]``.

Why the log is generated in SQL rather than by logging decisions: the export only reads the
table, and its cost depends on the number of entries and their width, not on how they were
chained. So each size gets an audit table of decision entries shaped like the server's (a
provider's principal, an action, a decision id, a purpose, a policy label, a detail of a few
dozen bytes, two hashes of 64 hex digits), one every 7 ms.

Both phases run as child processes, each measured by a small launcher (``os.wait4``: wall, CPU
and peak RSS of that child alone; see ``LAUNCH``). ``export`` is the real command, ``credo audit
export --out FILE``, start-up included (about a second of imports, which weighs on small sizes).
The floor, ``copy``, is the least DuckDB itself does to write the log out as JSON Lines in sequence order:
``COPY (SELECT ... ORDER BY seq) TO FILE (FORMAT JSON)``, in a Python process that imports
only duckdb. Its peak memory grows with the log (the sort holds all of it); the export's must
not: it reads a window of sequence numbers at a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FILL = """
INSERT INTO audit
SELECT i, TIMESTAMP '2026-01-01 08:00:00' + to_milliseconds(i * 7), 'provider:air', 'provider', 'decision',
       11010519900101000 + i % 1000, 'rail.high_speed.book', CASE WHEN i % 10 = 0 THEN 'deny' ELSE 'allow' END,
       'd-' || lpad(i::VARCHAR, 12, '0'), 'booking', 'beijing-2026@1',
       CASE WHEN i % 10 = 0 THEN '{"reasons":["dishonest_debtor"],"benefits":[]}' ELSE '{"benefits":[]}' END,
       sha256((i - 1)::VARCHAR), sha256(i::VARCHAR)
FROM range(1, ? + 1) t(i)
"""

FLOOR = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SET enable_progress_bar = false")
con.execute(f"COPY (SELECT * FROM audit ORDER BY seq) TO '{sys.argv[2]}' (FORMAT JSON)")
"""


def build(db: Path, n: int) -> float:
    """A Credo database whose audit table holds ``n`` entries; seconds taken."""
    from credo.service import Credo

    t0 = time.perf_counter()
    credo = Credo.open(db)
    credo.con.execute(FILL, [n])
    credo.close()
    return time.perf_counter() - t0


LAUNCH = """
import os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024,
      os.waitstatus_to_exitcode(status), file=sys.stderr)
"""
"""Runs a command and reports its wall and CPU seconds and peak RSS. The measured command is this
small process's child, because Linux counts in a child's peak RSS the parent's own at the fork:
started from the benchmark (or a test) after it filled a large table, the figure would be theirs."""


def measure(argv: list[str], out: Path) -> dict[str, Any]:
    """One command: wall and CPU seconds, peak RSS (its own, from the kernel), lines written."""
    done = subprocess.run([sys.executable, "-c", LAUNCH, *argv], capture_output=True, text=True, check=False)
    seconds, cpu, rss, code = done.stderr.split("\n")[-2].split()
    if int(code) != 0:
        raise SystemExit(f"{argv[:4]} failed: {done.stderr}")
    with out.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return {"seconds": float(seconds), "cpu": float(cpu), "rss": int(rss), "lines": lines,
            "bytes": out.stat().st_size}


def line(label: str, n: int, r: dict[str, Any], floor: dict[str, Any] | None) -> str:
    ratio = f"  {r['seconds'] / floor['seconds']:4.1f}x floor ({r['cpu'] / floor['cpu']:3.1f}x in CPU)" if floor else ""
    return (f"{label:28} {n:>11,} entries {r['seconds']:7.2f} s {n / r['seconds'] / 1e3:7.0f} k rows/s "
            f"(CPU {r['cpu']:6.2f} s)  {r['bytes'] / 2**20:7,.0f} MiB out  peak RSS {r['rss'] / 2**20:6,.0f} MiB"
            f"{ratio}")


def run(work: Path, n: int) -> None:
    db = work / f"audit-{n}.duckdb"
    db.unlink(missing_ok=True)
    print(f"filled an audit table of {n:,} entries in {build(db, n):.1f} s "
          f"({db.stat().st_size / 2**20:,.0f} MiB)", flush=True)
    floor = measure([sys.executable, "-c", FLOOR, str(db), str(work / "copy.jsonl")], work / "copy.jsonl")
    export = measure([str(Path(sys.executable).with_name("credo")), "--db", str(db), "audit", "export",
                      "--out", str(work / "export.jsonl")], work / "export.jsonl")
    if export["lines"] != n:
        raise SystemExit(f"export wrote {export['lines']:,} lines for {n:,} entries")
    print(line("floor: DuckDB COPY to JSON", n, floor, None))
    print(line("credo audit export", n, export, floor), flush=True)
    for f in ("copy.jsonl", "export.jsonl"):
        (work / f).unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000", help="entries, comma-separated")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    os.environ.setdefault("CREDO_NOW", "2026-03-01T10:00:00+08:00")
    work = args.keep or Path(tempfile.mkdtemp(prefix="credo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            run(work, n)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
