"""``python -m bench`` (``make bench``): every benchmark at its default size, one after another.

Each prints its figures beside a floor measured in the same run, plus peak memory.
Larger runs: ``python -m bench.scoring --sizes 1000000,5000000,22000000`` and the like.
"""

from __future__ import annotations

import subprocess
import sys

SUITES = ("bench.ingest", "bench.scoring", "bench.api", "bench.feed", "bench.governance", "bench.audit_export",
          "bench.identity", "bench.corrections")


def main() -> int:
    failed = 0
    for module in SUITES:
        print(f"\n=== {module} ===", flush=True)
        failed += subprocess.run([sys.executable, "-m", module], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
