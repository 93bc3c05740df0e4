"""A tiny city built through the real service, for tests that need residents and records.

IDs are made valid with credo.ids; feeds go in through ingest like any other.
"""

from __future__ import annotations

import csv
from pathlib import Path

from credo import ids
from credo.service import Credo
from tests.fixtures import POLICIES

POLICY = (POLICIES / "tiny.yaml").read_text(encoding="utf-8")

LI = ids.make_resident_id("110112", __import__("datetime").date(1987, 6, 12), 101)
WANG = ids.make_resident_id("110115", __import__("datetime").date(1993, 3, 18), 202)
RECORD_COLUMNS = ("record_id", "type", "subject", "occurred_at", "resolves", "attributes")


def write_csv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def tiny_city(tmp: Path, monkeypatch: object) -> Credo:
    """Two residents; Li owes tax since 2024-08-01 (on the list from 08-06); Wang donated blood."""
    monkeypatch.setenv("CREDO_NOW", "2024-09-01T10:00:00+08:00")  # type: ignore[attr-defined]
    credo = Credo.open(tmp / "city.duckdb")
    credo.apply_policy(POLICY)
    credo.ingest_files("population", [write_csv(tmp / "population.csv", [
        ("resident_id", "name", "district", "status", "status_date"),
        (LI, "Li Wei", "110112", "", ""), (WANG, "Wang Fang", "110115", "", "")])])
    credo.ingest_files("telecom", [write_csv(tmp / "telecom.csv", [
        ("phone", "resident_id", "valid_from", "valid_to"), ("13512345678", WANG, "2018-01-01", "")])])
    credo.ingest_files("tax", [write_csv(tmp / "tax.csv", [
        RECORD_COLUMNS, ("x1", "tax.arrears", LI, "2024-08-01", "", '{"amount": 12000}')])])
    credo.ingest_files("blood-centre", [write_csv(tmp / "blood.csv", [
        RECORD_COLUMNS, ("d1", "civic.donation", "13512345678", "2024-03-03", "", "")])])
    return credo
