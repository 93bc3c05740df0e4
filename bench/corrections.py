"""Corrections benchmark: replaying a logged decision, and a withdrawal that finds what needs redress.

Run ``python -m bench.corrections [--residents 1000000] [--decisions 200]``.

The city is the scoring benchmark's (``bench.scoring.build``: the Beijing policy, ~3.1 records per
resident), scored once. Decisions are then asked through the library, as the CLI asks them (each
logged with what it answered), and each is replayed (``credo audit replay``: the standing recomputed
at T = K = its time, from what was known before its audit entry, and compared with the log). The
floor is the part of a replay no implementation can skip: reading the resident's ledger rows and
the decision's audit entry back, in the same run. The withdrawals revoke one record of residents
who were each told a decision, so every revocation examines one decision for redress; beside them,
revocations of residents nobody asked about.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.scoring import AS_OF, KEY_BASE, Peak, build

ACTION = "flight.book"


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1e3:7.2f} ms  p95 {p95 * 1e3:7.2f} ms"


def measure(db: Path, n: int, decisions: int, seed: int = 5) -> dict[str, Any]:
    from credo.ids import ResidentId
    from credo.principals import Principal
    from credo.service import Credo

    os.environ["CREDO_NOW"] = AS_OF.isoformat()
    credo = Credo.open(db)
    peak, out = Peak(), dict[str, Any]()
    with peak.phase(out, "score"):
        credo.score(AS_OF)
    rng = np.random.default_rng(seed)
    listed = [int(k) for k, in credo.con.execute(
        "SELECT DISTINCT resident FROM standing_hits WHERE resident < ? ORDER BY resident LIMIT ?",
        [KEY_BASE + 30_000, decisions // 2]).fetchall()]
    # keys up to KEY_BASE + 30,000 read as IDs born 1980-01-01..30 (the generator's keys are not all dates)
    keys = listed + [int(k) for k in rng.choice(min(n, 30_000), decisions - len(listed), replace=False) + KEY_BASE]
    airline = Principal("provider:air", "provider", provider="air")
    made = [credo.check(ResidentId.of_key(k), ACTION, airline) for k in keys]
    out["denied"] = sum(d.decision == "deny" for d in made)
    floor, replay = [], []
    with peak.phase(out, "replays"):
        for key, d in zip(keys, made, strict=True):
            t0 = time.perf_counter()
            credo.con.execute("SELECT * FROM ledger WHERE resident = ?", [key]).fetchall()
            credo.con.execute("SELECT * FROM audit WHERE decision_id = ?", [d.decision_id]).fetchall()
            floor.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            again = credo.replay(d.decision_id)
            replay.append(time.perf_counter() - t0)
            assert again["same"], again
    out["floor"], out["replay"] = floor, replay
    told = [(a, r, k) for k in listed for a, r in credo.con.execute(
        "SELECT agency, record_id FROM standing_hits WHERE resident = ? LIMIT 1", [k]).fetchall()]
    untold = [(a, r) for a, r in credo.con.execute(
        "SELECT l.agency, l.record_id FROM ledger l ANTI JOIN audit d ON d.resident = l.resident "
        "ANTI JOIN revocations v USING (agency, record_id) LIMIT ?", [len(told)]).fetchall()]
    withdraw, plain = [], []
    with peak.phase(out, "withdrawals"):
        for agency, record_id, _ in told:
            t0 = time.perf_counter()
            credo.revoke(agency, record_id, "bench: withdrawn")
            withdraw.append(time.perf_counter() - t0)
        for agency, record_id in untold:
            t0 = time.perf_counter()
            credo.revoke(agency, record_id, "bench: withdrawn")
            plain.append(time.perf_counter() - t0)
    out["withdraw"], out["plain"] = withdraw, plain
    out["redress"] = len(credo.redress())
    credo.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=200_000)
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="credo-bench-") as tmp:
        db = Path(tmp) / "city.duckdb"
        built = build(db, args.residents)
        out = measure(db, args.residents, args.decisions)
    print(f"city: {built['residents']:,} residents, {built['records']:,} records; "
          f"full score {out['score_s']} s, peak {out['score_peak_rss_mib']} MiB")
    print(f"replay of one decision ({len(out['replay'])}, {out['denied']} denials), every one the same:")
    print(f"  credo audit replay       {_ms(out['replay'])}")
    print(f"  floor (ledger rows + the audit entry read back) {_ms(out['floor'])}")
    ratio = statistics.median(out["replay"]) / statistics.median(out["floor"])
    print(f"  ratio {ratio:.1f}x, peak {out['replays_peak_rss_mib']} MiB")
    print(f"withdrawal (revoke, rescore, notices, redress), {len(out['withdraw'])} of each:")
    print(f"  of a record a provider was told about  {_ms(out['withdraw'])}")
    print(f"  of a record nobody was told about      {_ms(out['plain'])}")
    print(f"  decisions found to need redress: {out['redress']}, peak {out['withdrawals_peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
