"""An agency feed whose rows name their subject without an 18-digit ID (spec §10), with the mistakes
hand-kept records make, and the truth to measure the matching against.

Half the rows name a resident born in the 1900s by the 15-digit ID of the first generation; the other
half by a description only (``subject_name``, ``subject_birth_date``, ``subject_district``), of which
``MISTAKES`` gives the kinds and shares: written right, a typo in the name (a letter replaced, or two
swapped), a transposed birth date (month and day, or two digits), or right but about a resident who has
a namesake in the same district. ``identity-truth.csv`` names, for every row, the resident it is about
and the kind, so the top candidate's precision and recall can be measured (tests/test_identity_synth.py).
Deterministic by seed, like the rest of the city; it never touches the store.
"""

from __future__ import annotations

import csv
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from credo.synth.city import _City
from credo.synth.rates import DISTRICTS
from credo.synth.writers import _names, population_rng

MISTAKES: tuple[tuple[str, float], ...] = (("exact", 0.55), ("name_typo", 0.15), ("transposed_birth", 0.15),
                                          ("namesake", 0.15))
"""The kinds of described rows and their shares."""
COLUMNS = ("record_id", "type", "subject", "occurred_at", "resolves", "attributes", "subject_name",
           "subject_birth_date", "subject_district")
_EPOCH = date(1970, 1, 1)
_Y2K = (date(2000, 1, 1) - _EPOCH).days


def _typo(name: str, rng: np.random.Generator) -> str:
    """One letter replaced by another, or two neighbours swapped: one edit, as a hurried clerk makes."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    i = int(rng.choice(letters[1:])) if len(letters) > 1 else letters[0]
    if rng.random() < 0.5 and i + 1 < len(name) and name[i + 1].isalpha() and name[i] != name[i + 1]:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    pool = [ch for ch in "aeiounghrsz" if ch != name[i].lower()]
    return name[:i] + str(rng.choice(pool)) + name[i + 1:]


def _transposed(born: date, today: date) -> date:
    """The birth date with month and day swapped, else the day's two digits, else the year's last two:
    the first of these that is another real date not after today (the date itself when none is)."""
    y, m, d = born.year, born.month, born.day
    for yy, mm, dd in ((y, d, m), (y, m, int(f"{d:02d}"[::-1])), (y - y % 100 + int(f"{y % 100:02d}"[::-1]), m, d)):
        try:
            other = date(yy, mm, dd)
        except ValueError:
            continue
        if other != born and date(1900, 1, 1) <= other <= today:
            return other
    return born


def identity_feed(c: _City, out: Path, agency: str, code: str, share: float, seed: int,
                  today: date) -> dict[str, Any]:
    """Write ``<agency>-identity.csv`` and ``identity-truth.csv``: ``share`` of the residents (at least
    one row each of a legacy ID and a description) as rows of type ``code``."""
    rng = np.random.default_rng([seed, 18])
    names = _names(c, population_rng(seed)).to_pylist()
    codes = [d[0] for d in DISTRICTS]
    eligible = np.flatnonzero(c.end >= c.start)
    total = max(2, math.ceil(share * c.n))
    legacy_pool = eligible[c.birth[eligible] < _Y2K]
    n_legacy = min(total // 2, len(legacy_pool))
    pairs = pa.table({"name": pa.array(names), "district": pa.array(c.district)})
    counts = pairs.group_by(["name", "district"]).aggregate([("name", "count")])
    shared = {(n, d) for n, d, k in zip(*(counts.column(x).to_pylist() for x in ("name", "district", "name_count")),
                                        strict=True) if k > 1}
    namesakes = np.array([i for i in eligible.tolist() if (names[i], int(c.district[i])) in shared], np.int64)
    rows: list[tuple[str, ...]] = []
    truth: list[tuple[str, str, str]] = []

    def occurred(i: int) -> str:
        return (_EPOCH + timedelta(days=int(rng.integers(c.start[i], c.end[i] + 1)))).isoformat()

    ids = c.ids.to_pylist() if hasattr(c.ids, "to_pylist") else list(c.ids)
    for k, i in enumerate(rng.choice(legacy_pool, n_legacy, replace=False).tolist() if n_legacy else []):
        rid = str(ids[i])
        record_id = f"{agency}-legacy-{k}"
        rows.append((record_id, code, rid[:6] + rid[8:17], occurred(i), "", "", "", "", ""))
        truth.append((record_id, rid, "legacy_id"))
    kinds = rng.choice(len(MISTAKES), total - n_legacy, p=[p for _, p in MISTAKES])
    for k, kind in enumerate(kinds.tolist()):
        name = MISTAKES[kind][0]
        pool = namesakes if name == "namesake" and len(namesakes) else eligible
        i = int(rng.choice(pool))
        born = _EPOCH + timedelta(days=int(c.birth[i]))
        given_name, given_born = names[i], born
        if name == "name_typo":
            given_name = _typo(given_name, rng)
        elif name == "transposed_birth":
            given_born = _transposed(born, today)
        record_id = f"{agency}-described-{k}"
        rows.append((record_id, code, "", occurred(i), "", "", given_name, given_born.isoformat(),
                     codes[int(c.district[i])]))
        truth.append((record_id, str(ids[i]), name if name != "namesake" or len(namesakes) else "exact"))
    path = out / f"{agency}-identity.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([COLUMNS, *rows])
    with (out / "identity-truth.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("record_id", "resident_id", "kind"), *truth])
    kinds_written = pc.value_counts(pa.array([t[2] for t in truth])).to_pylist()
    return {"file": path.name, "rows": len(rows), "dirty": 0,
            "kinds": {str(v["values"]): int(v["counts"]) for v in kinds_written}}
