"""A synthetic city: one feed file per agency, written the way real agencies would send them.

The city goes into Credo through ingest like any other data, so synth never touches the store. It
reads the policy only to learn which agencies exist and which types each may submit; how often each
type happens is fixed in ``synth.rates`` (``RATES``), tuned so that the default policy (Beijing) gives a plausible
grade distribution: most residents in grade A, a few percent on the dishonest-debtor list.

Everything is vectorised (numpy for the numbers, Arrow compute for the strings) and deterministic by
seed: the same arguments give byte-identical CSV and JSON Lines files. Records of one agency are
generated as numbers for the whole window, sorted by time, and only turned into text chunk by chunk,
so a 22-million-resident city fits in memory. With ``dirty`` > 0 every feed also carries that share
of extra malformed rows, each of a kind that ingest must reject (``DIRTY_KINDS``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from credo.synth.city import _make_city
from credo.synth.dirty import _dirty_records
from credo.synth.rates import (
    CIVIC_SHARE,
    DEFAULT_POLICY,
    DEFAULT_RATE,
    DEFAULT_RESOLVE_SHARE,
    DIRTY_KINDS,
    POPULATION_COLUMNS,
    POPULATION_DIRTY,
    RATES,
    RECORD_COLUMNS,
    RESOLVE_DELAY,
    TELECOM_COLUMNS,
    TELECOM_DIRTY,
)
from credo.synth.records import _generate, _materialise
from credo.synth.writers import _file, _population, _telecom, _write_chunks

__all__ = ["CIVIC_SHARE", "DEFAULT_RATE", "DEFAULT_RESOLVE_SHARE", "DIRTY_KINDS", "POPULATION_COLUMNS",
           "POPULATION_DIRTY", "RATES", "RECORD_COLUMNS", "RESOLVE_DELAY", "TELECOM_COLUMNS", "TELECOM_DIRTY",
           "synth_city"]


def synth_city(
    residents: int,
    out: Path,
    *,
    seed: int = 1,
    years: int = 5,
    dirty: float = 0.0,
    identity: float = 0.0,
    policy_file: Path | None = None,
    today: date | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Write a synthetic city into ``out``: ``population``, ``telecom`` and one feed per agency of
    the policy. Returns ``{agency: {"file", "rows", "dirty"}}`` (rows include the dirty ones). With
    ``identity`` > 0, that share of the residents also appear in ``<agency>-identity.csv`` (the first
    agency's) by a 15-digit ID or a description with realistic mistakes (``synth.identity``)."""
    if residents < 1:
        raise ValueError("residents must be at least 1")
    if years < 1:
        raise ValueError("years must be at least 1")
    if not 0.0 <= dirty <= 1.0:
        raise ValueError("dirty must be a share between 0 and 1")
    if not 0.0 <= identity <= 1.0:
        raise ValueError("identity must be a share between 0 and 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    today = today or date.today()
    doc = yaml.safe_load(Path(policy_file or DEFAULT_POLICY).read_text(encoding="utf-8"))
    types: dict[str, Any] = doc["record_types"]
    agencies = sorted({str(t["agency"]) for t in types.values()} - {"population", "telecom"})

    city = _make_city(residents, seed, years, today)
    summary: dict[str, Any] = {
        "population": _population(city, out, dirty, seed, progress),
        "telecom": _telecom(city, out, dirty, seed, progress),
    }
    for salt, agency in enumerate(agencies, start=1):
        codes = sorted(code for code, t in types.items() if t["agency"] == agency)
        others = sorted(code for code, t in types.items() if t["agency"] != agency)
        recs = _generate(city, agency, codes, types, seed, salt, years)
        bad, before = _dirty_records(city, recs, others, dirty, seed)
        path = _file(out, agency)
        total = _write_chunks(path, RECORD_COLUMNS, recs.n, partial(_materialise, city, recs),
                              bad, before, agency, progress)
        summary[agency] = {"file": path.name, "rows": total, "dirty": bad.num_rows}
        del recs, bad
    if identity > 0 and agencies:
        from credo.synth.identity import identity_feed

        agency = agencies[0]
        code = sorted(k for k, t in types.items() if t["agency"] == agency and not t.get("resolves"))[0]
        summary[f"{agency}-identity"] = identity_feed(city, out, agency, code, identity, seed, today)
    return summary
