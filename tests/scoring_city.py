"""Small random cities for the scoring tests: a test policy, hypothesis strategies, and the glue
that writes a ``reference.City`` into a real store and reads an engine's answer back.

The store is a DuckDB file made by ``credo.store.connect``; rows go straight into ``residents``,
``ledger``, ``revocations`` and ``objection_events`` (no ingest), so these tests depend on the
store's tables and the scoring pipeline only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import strategies as st

from credo import policy as policies
from credo.standing import Hit
from credo.standing import Standing as AppStanding
from tests.fixtures import POLICIES
from tests.reference import City, ObjectionStep, Record, RecordPart, Revocation, Standing, event_instants

POLICY = (POLICIES / "props.yaml").read_text(encoding="utf-8")
"""Caps, expiry in days and months, grace in days, months and years, two resolvers (one that
also counts), list overlap, and bounds near enough to the base that a few records clamp."""

SUSPEND = policies.load(POLICY)
COUNT = policies.load(POLICY.replace("disputed: suspend", "disputed: count").replace("props-1", "props-2"))
GONE = "a.retired"
"""A type the policy no longer has: its records show as not in the policy."""
AGENCY = {code: t.agency for code, t in SUSPEND.doc.record_types.items()} | {GONE: "a"}
RESIDENT0 = 11010519800101001

EDGES = [datetime(2023, 12, 31, 23, 30), datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 31),
         datetime(2024, 2, 29), datetime(2024, 2, 29, 12), datetime(2024, 3, 10),
         datetime(2024, 12, 31, 23, 59),
         datetime(2025, 1, 1), datetime(2025, 2, 28), datetime(2023, 1, 31)]
"""Instants where calendar rules bite: month ends, a leap day, both sides of a new year."""


def instants() -> st.SearchStrategy[datetime]:
    minutes = st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 6, 30)).map(
        lambda d: d.replace(second=0, microsecond=0))
    return st.one_of(st.sampled_from(EDGES), minutes)


@st.composite
def cities(draw: st.DrawFn, max_records: int = 14) -> City:
    residents = [RESIDENT0 + i for i in range(draw(st.integers(1, 3)))]
    city = City(residents)
    for i in range(draw(st.integers(0, max_records))):
        code = draw(st.sampled_from([*sorted(SUSPEND.doc.record_types), GONE]))
        agency, resident = AGENCY[code], draw(st.sampled_from(residents))
        resolves = None
        mine = [r for r in city.records if r.agency == agency and r.resident == resident]
        if code in ("a.fix", "b.fix") and mine and draw(st.integers(0, 9)) < 8:
            resolves = draw(st.sampled_from(mine)).record_id
        city.records.append(Record(agency, f"r{i}", code, resident, draw(instants()), resolves))
    number = 0
    for r in city.records:
        if draw(st.integers(0, 9)) < 2:
            city.revocations.append(Revocation(r.agency, r.record_id, draw(instants())))
        if draw(st.integers(0, 9)) < 2:
            number += 1
            opened = draw(instants())
            city.objections.append(ObjectionStep(number, "opened", r.agency, r.record_id, opened))
            outcome = draw(st.sampled_from(["open", "upheld", "rejected"]))
            if outcome != "open":
                closed = opened + timedelta(minutes=draw(st.integers(1, 90 * 24 * 60)))
                city.objections.append(ObjectionStep(number, outcome, r.agency, r.record_id, closed))
                if outcome == "upheld":
                    city.revocations.append(Revocation(r.agency, r.record_id, closed))
    return city


@st.composite
def cases(draw: st.DrawFn, max_records: int = 14) -> tuple[City, datetime]:
    """A city and a time: any instant, or exactly one at which some rule switches."""
    city = draw(cities(max_records))
    edges = event_instants(SUSPEND, city)
    t = draw(st.one_of(instants(), st.sampled_from(edges))) if edges else draw(instants())
    return city, t


# -- the store -------------------------------------------------------------------------------------
TABLES = ("residents", "ledger", "revocations", "objection_events", "standings", "standing_hits")


def write(con: duckdb.DuckDBPyConnection, city: City, *, clear: bool = True) -> None:
    """Put ``city`` into the store's tables (replacing what they held, unless ``clear`` is False)."""
    if clear:
        for table in TABLES:
            con.execute(f"DELETE FROM {table}")
    _insert(con, pa.table({"resident": pa.array(city.residents, pa.int64())}),
            "INSERT INTO residents (resident, status) SELECT resident, 'active' FROM w_rows "
            "WHERE resident NOT IN (SELECT resident FROM residents)")
    add_records(con, city.records)
    add_revocations(con, city.revocations)
    add_objections(con, city.objections, {(r.agency, r.record_id): r.resident for r in city.records})


def _insert(con: duckdb.DuckDBPyConnection, rows: pa.Table, sql: str) -> None:
    """Run ``sql``, an INSERT reading ``w_rows``, over ``rows``."""
    con.register("w_rows", rows)
    try:
        con.execute(sql)
    finally:
        con.unregister("w_rows")


def add_objections(con: duckdb.DuckDBPyConnection, steps: list[ObjectionStep],
                   residents: dict[tuple[str, str], int]) -> None:
    """Objection steps; ``residents`` names the resident of each record they are about."""
    _insert(con, pa.table({
        "objection": pa.array([o.objection for o in steps], pa.int32()),
        "step": pa.array([o.step for o in steps], pa.string()),
        "resident": pa.array([residents[(o.agency, o.record_id)] for o in steps], pa.int64()),
        "agency": pa.array([o.agency for o in steps], pa.string()),
        "record_id": pa.array([o.record_id for o in steps], pa.string()),
        "happened_at": pa.array([o.at for o in steps], pa.timestamp("us")),
    }), "INSERT INTO objection_events (objection, step, resident, agency, record_id, text, "
            "principal, happened_at) SELECT objection, step, resident, agency, record_id, 'test', "
            "'test', happened_at FROM w_rows")


def add_records(con: duckdb.DuckDBPyConnection, records: Iterable[Record]) -> None:
    rows = list(records)
    _insert(con, pa.table({
        "agency": pa.array([r.agency for r in rows], pa.string()),
        "record_id": pa.array([r.record_id for r in rows], pa.string()),
        "type": pa.array([r.type for r in rows], pa.string()),
        "resident": pa.array([r.resident for r in rows], pa.int64()),
        "occurred_at": pa.array([r.occurred_at for r in rows], pa.timestamp("us")),
        "resolves": pa.array([r.resolves for r in rows], pa.string()),
    }), "INSERT INTO ledger (agency, record_id, type, resident, subject, occurred_at, resolves, "
            "batch) SELECT agency, record_id, type, resident, CAST(resident AS VARCHAR), occurred_at, "
            "resolves, 0 FROM w_rows")


def add_revocations(con: duckdb.DuckDBPyConnection, revocations: Iterable[Revocation]) -> None:
    rows = list(revocations)
    _insert(con, pa.table({
        "agency": pa.array([v.agency for v in rows], pa.string()),
        "record_id": pa.array([v.record_id for v in rows], pa.string()),
        "revoked_at": pa.array([v.revoked_at for v in rows], pa.timestamp("us")),
    }), "INSERT INTO revocations (agency, record_id, revoked_at, reason, principal) "
            "SELECT agency, record_id, revoked_at, 'test', 'test' FROM w_rows")


# -- engine answers as reference standings ---------------------------------------------------------
def _rows(table: pa.Table | None, resident: int) -> list[dict[str, Any]]:
    return [] if table is None else [r for r in table.to_pylist() if r["resident"] == resident]


def answers(t: datetime, scored: pa.Table, hits: pa.Table, explained: pa.Table | None = None
            ) -> dict[int, Standing]:
    """An engine's outputs (``scored``, ``hits``, optionally ``explained``), resident by resident,
    in the reference's shape; lists in force and pending come from the app's own ``Standing``."""
    out = {}
    for s in scored.to_pylist():
        resident = s["resident"]
        mine = _rows(hits, resident)
        app = AppStanding(resident, s["score"], s["grade"], s["changes_at"], t, "test",
                          [Hit(h["list"], h["agency"], h["record_id"], h["type"], h["occurred_at"],
                               h["takes_effect"], h["expires_at"]) for h in mine])
        records = tuple(RecordPart(r["agency"], r["record_id"], r["status"], r["points"], r["expires_at"])
                        for r in sorted(_rows(explained, resident),
                                        key=lambda r: (r["occurred_at"], r["agency"], r["record_id"])))
        out[resident] = Standing(
            s["score"], s["grade"], tuple(app.in_force()), tuple(app.pending()), s["changes_at"],
            tuple(sorted((h["list"], h["agency"], h["record_id"], h["takes_effect"]) for h in mine)), records)
    return out


def expected(policy: policies.Policy, city: City, t: datetime, *,
             records: bool = True) -> dict[int, Standing]:
    """The reference's standings of every resident (without the per-record part unless ``records``)."""
    from tests.reference import standing

    out = {}
    for resident in city.residents:
        s = standing(policy, city, resident, t)
        out[resident] = s if records else Standing(s.score, s.grade, s.lists, s.pending, s.changes_at,
                                                   s.hits, ())
    return out
