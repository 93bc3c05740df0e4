"""The providers' change feed at city scale: what writing it costs, and reading it over HTTP.

Run ``python -m bench.feed [--residents N]`` (default 100,000; 1,000,000 takes a few minutes). It builds the
scoring benchmark's city (``bench.scoring.build``: the Beijing policy, ~3.1 records a resident),
then measures:

* the first full scoring, which puts every decision that is not a plain allow in the feed;
* two policies applied, each with the feed's own share of the call (``before`` and ``append`` in
  ``credo.providerfeed``) and the rows it appended, all in the same call: one that changes some
  30,000 decisions at a million residents (dishonest debtors may fly again), then one that changes
  most of the city's (a green channel on ``admin.approval`` for grade A as well);
* a provider reading the whole feed over HTTP (``credo serve``, one worker) in pages of 50,000:
  changes per second, against the target of 100,000 (spec issue 16), both with the client's own
  parsing of each page (orjson) and served (the requests alone).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.conftest import fixed_clock

from bench import api, scoring
from credo import policy as policies
from credo import providerfeed
from credo.service import Credo

NARROWER = "  - {list: dishonest_debtor, action: flight.book, effect: deny}\n"
"""The first policy change: dishonest debtors may fly again (some 30,000 decisions in a city of a million)."""
WIDER = ("  - {grades: [AAA, AA], action: admin.approval, effect: green_channel}",
         "  - {grades: [AAA, AA, A], action: admin.approval, effect: green_channel}")
"""The second: grade A gets the green channel too (most of the city)."""
CLOCK = scoring.AS_OF.isoformat() + "+08:00"
"""The city's clock: the day the scoring benchmark's ledger ends."""


def timed(calls: dict[str, float], fn: Callable[..., None]) -> Callable[..., None]:
    def wrapper(*args: Any, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        calls[fn.__name__] = calls.get(fn.__name__, 0.0) + time.perf_counter() - t0
    return wrapper


def write_side(db: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    shares: dict[str, float] = {}
    before, append = providerfeed.before, providerfeed.append
    providerfeed.before, providerfeed.append = timed(shares, before), timed(shares, append)  # type: ignore[assignment]
    try:
        with fixed_clock(CLOCK):
            credo = Credo.open(db)
            try:
                t0 = time.perf_counter()
                credo.score()
                out["first_score_s"] = round(time.perf_counter() - t0, 2)
                out["first_feed_s"] = round(sum(shares.values()), 2)
                out["first_rows"] = providerfeed.head(credo.con)
                text = policies.shipped("beijing").read_text(encoding="utf-8")
                assert NARROWER in text and WIDER[0] in text
                for name, changed in (("narrower", text.replace(NARROWER, "")),
                                      ("wider", text.replace(NARROWER, "").replace(*WIDER))):
                    shares.clear()
                    head = providerfeed.head(credo.con)
                    t0 = time.perf_counter()
                    credo.apply_policy(changed)
                    out[f"{name}_s"] = round(time.perf_counter() - t0, 2)
                    out[f"{name}_feed_s"] = round(sum(shares.values()), 2)
                    out[f"{name}_rows"] = providerfeed.head(credo.con) - head
                out["token"] = credo.create_token("provider", provider="bench-rail")[0]
            finally:
                credo.close()
    finally:
        providerfeed.before, providerfeed.append = before, append  # type: ignore[assignment]
    return out


def serve(db: Path) -> api.Server:
    """``credo serve`` (one worker) on the city, its clock at ``CLOCK``."""
    port = api.free_port()
    env = dict(os.environ, CREDO_DB=str(db), CREDO_NOW=CLOCK, CREDO_RATE_LIMIT="0")
    proc = subprocess.Popen([sys.executable, "-c", "from credo.cli import main; main()", "serve", "--port",
                             str(port)], env=env)
    return api.wait_ready(proc, f"http://127.0.0.1:{port}", seconds=300)


def read_side(db: Path, token: str) -> dict[str, Any]:
    server = serve(db)
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            after, changes, pages, parsing = 0, 0, 0, 0.0
            t0 = time.perf_counter()
            while True:
                page = client.get("/v1/feed", params={"after": after, "limit": 50_000})
                page.raise_for_status()
                t1 = time.perf_counter()
                body = orjson.loads(page.content)
                parsing += time.perf_counter() - t1
                changes += len(body["changes"])
                pages += 1
                if body["next"] == after:
                    break
                after = body["next"]
            seconds = time.perf_counter() - t0
    finally:
        server.stop()
    return {"read_changes": changes, "read_pages": pages, "read_s": round(seconds, 2),
            "changes_per_s": round(changes / seconds), "served_per_s": round(changes / (seconds - parsing))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="credo-bench-feed-") as tmp:
        db = Path(tmp) / "city.duckdb"
        built = scoring.build(db, args.residents)
        wrote = write_side(db)
        read = read_side(db, wrote.pop("token"))
    print("| residents | records | first score s (feed s, rows) | narrower policy s (feed s, rows) | "
          "wider policy s (feed s, rows) | feed read over HTTP |")
    print("|---|---|---|---|---|---|")
    print(f"| {built['residents']:,} | {built['records']:,} | {wrote['first_score_s']} ({wrote['first_feed_s']}, "
          f"{wrote['first_rows']:,}) | {wrote['narrower_s']} ({wrote['narrower_feed_s']}, "
          f"{wrote['narrower_rows']:,}) | {wrote['wider_s']} ({wrote['wider_feed_s']}, {wrote['wider_rows']:,}) | "
          f"{read['changes_per_s']:,} changes/s parsed by the client, {read['served_per_s']:,} served "
          f"({read['read_changes']:,} in {read['read_s']} s, {read['read_pages']} pages) |")


if __name__ == "__main__":
    main()
