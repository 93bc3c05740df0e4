"""The matching measured on a synthetic city (spec §10): `credo synth --identity-share` writes rows
that name their subject by a 15-digit ID or by a description with realistic mistakes (a typo in the
name, a transposed birth date, a namesake in the same district), and the truth; the top candidate of
each held row is held to a precision and a recall.

The figures of a larger run are in docs/identity.md; this city is small enough for the suite.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from credo import ids
from credo.service import Credo
from credo.synth import synth_city
from credo.synth.rates import DEFAULT_POLICY

TODAY = date(2024, 9, 1)


def measure(credo: Credo, truth: dict[str, tuple[str, str]]) -> dict[str, object]:
    """Precision and recall of the top candidate, overall and by kind of mistake."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    for item in credo.review_items():
        resident, kind = truth[item["record"].split(":", 1)[1]]
        rows[kind] += 1
        if item["candidates"]:
            (tp if item["candidates"][0]["resident_id"] == resident else fp)[kind] += 1
    kinds = sorted(rows)
    found, wrong, total = sum(tp.values()), sum(fp.values()), sum(rows.values())
    return {"rows": total, "precision": found / max(found + wrong, 1), "recall": found / max(total, 1),
            "by_kind": {k: {"rows": rows[k], "top_right": tp[k], "top_wrong": fp[k]} for k in kinds}}


def test_top_candidate_precision_and_recall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDO_NOW", "2024-09-01T10:00:00+08:00")
    summary = synth_city(3000, tmp_path / "city", seed=5, identity=0.1, today=TODAY)
    [(name, info)] = [(k, v) for k, v in summary.items() if k.endswith("-identity")]
    agency = name.removesuffix("-identity")
    credo = Credo.open(tmp_path / "city.duckdb")
    try:
        credo.apply_policy(DEFAULT_POLICY.read_text(encoding="utf-8"))
        credo.ingest_files("population", [tmp_path / "city" / summary["population"]["file"]])
        [result] = credo.ingest_files(agency, [tmp_path / "city" / info["file"]])
        with (tmp_path / "city" / "identity-truth.csv").open(encoding="utf-8") as f:
            truth = {r["record_id"]: (r["resident_id"], r["kind"]) for r in csv.DictReader(f)}
        legacy = {k: v for k, v in truth.items() if v[1] == "legacy_id"}
        assert result.accepted == len(legacy) and not result.rejected
        assert result.held == len(truth) - len(legacy) == info["rows"] - len(legacy)
        stored = dict(credo.con.execute("SELECT record_id, resident FROM ledger WHERE agency = ?", [agency]).fetchall())
        assert stored == {k: ids.resident_key(v[0]) for k, v in legacy.items()}
        figures = measure(credo, truth)
    finally:
        credo.close()
    print("identity matching on the synthetic city:", json.dumps(figures))
    assert set(figures["by_kind"]) == {"exact", "name_typo", "transposed_birth", "namesake"}  # type: ignore[arg-type]
    assert figures["precision"] >= 0.95 and figures["recall"] >= 0.95, figures
