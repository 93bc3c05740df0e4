"""Per-row verdicts of one feed: the reasons a row may fail, the first rule each row fails, and the
small helpers every loader uses to hand a batch's rows to its SQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from credo import ids
from credo.sql import q
from credo.text import _I64, UNSAFE_TEXT, _Bools, _np

REASONS: dict[str, tuple[str, str]] = {
    "malformed_row": ("(row)", "the row could not be split into the feed's columns"),
    "missing_record_id": ("record_id", "is required"),
    "record_id_too_long": ("record_id", "must be 1 to 64 characters"),
    UNSAFE_TEXT: ("record_id", "holds a control or bidirectional-formatting character"),
    "missing_type": ("type", "is required"),
    "unknown_type": ("type", "is not a record type of the policy"),
    "type_not_allowed": ("type", "belongs to another agency under the policy"),
    "missing_subject": ("subject", "is required"),
    "missing_date": ("occurred_at", "is required"),
    "bad_date": ("occurred_at", "is not an ISO 8601 date or date-time, like 2024-08-01 or 2024-08-01T09:30"),
    "date_too_early": ("occurred_at", "is before 1900"),
    "future_date": ("occurred_at", "is more than one day in the future"),
    "bad_attributes": ("attributes", "must be a JSON object"),
    "attributes_too_large": ("attributes", "must be at most 4 KiB"),
    "unresolved_phone": ("subject", "no resident held this phone at occurred_at"),
    "unknown_resident": ("subject", "is not a registered resident"),
    "conflict": ("record_id", "already used by this agency for a record with different content"),
    "unknown_resolves": ("resolves", "names no record of this agency in the ledger or earlier in the batch"),
    "bad_resolves": ("resolves", "names a record this type may not resolve, or another resident's"),
    "missing_name": ("name", "is required"),
    "bad_district": ("district", "must be a 6-digit region code"),
    "bad_status": ("status", "must be active, deceased or moved_out"),
    "bad_period": ("valid_to", "is before valid_from"),
    "overlapping_holder": ("phone", "overlaps another holder's period for this number"),
    "incomplete_description": ("subject_name",
                               "is required: a row without a subject names its person by subject_name, "
                               "subject_birth_date and subject_district"),
    "bad_birth_date": ("subject_birth_date", "must be a calendar date YYYY-MM-DD from 1900-01-01 to today"),
    "described_resolves": ("resolves", "a row that resolves another must name its subject by ID or phone"),
}
"""Reason code -> (usual field, explanation). Identity reasons (``credo.ids``: id_length, id_format,
id_province, id_date, id_future, id_check, bad_phone) take their message from credo.ids, and so does
``unsafe_characters`` (naming the character; the value is quoted with it escaped); ``duplicate`` is
counted, not rejected."""

ID_REASONS = (ids.BAD_LENGTH, ids.BAD_FORMAT, ids.BAD_PROVINCE, ids.BAD_DATE, ids.FUTURE_DATE, ids.BAD_CHECK,
              ids.BAD_PHONE)
DUPLICATE = "duplicate"
STATUSES = ("active", "deceased", "moved_out")

@dataclass
class BatchResult:
    """What became of one feed: counted, never silent."""

    source: str
    agency: str
    batch: int
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    held: int = 0
    """Rows about a described person, matched and held for review (spec §10): not in the ledger."""
    overridden: int = 0
    """Rows with both a subject and a description: the subject was used."""
    model_estimated: bool = False
    residents: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "agency": self.agency, "batch": self.batch, "rows": self.rows,
                "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": sum(self.rejected.values()), "reasons": dict(sorted(self.rejected.items())),
                "held_for_review": self.held, "subject_over_description": self.overridden}


Check = Callable[[float], None]
"""Reports how far the checks of a batch have got (0..1), for the progress bar."""


class Verdicts:
    """Per row, the first failed rule as a small int (0 = passes), with a detail for some rejects.

    Rules are applied in precedence order and a row keeps the first one it fails, so the order of
    ``fail`` calls is the order in which problems are reported.
    """

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, np.int16)
        self.rules: list[tuple[str, str]] = [("", "")]
        self.detail: dict[int, str] = {}

    @property
    def ok(self) -> _Bools:
        ok: _Bools = self.code == 0
        return ok

    def fail(self, mask: npt.ArrayLike, reason: str, field: str) -> None:
        mask = np.asarray(mask, dtype=np.bool_)
        if not mask.any():
            return
        rule = (reason, field)
        if rule not in self.rules:
            self.rules.append(rule)
        self.code[mask & (self.code == 0)] = self.rules.index(rule)

    def fail_at(self, positions: npt.ArrayLike, reason: str, field: str) -> None:
        mask = np.zeros(len(self.code), np.bool_)
        mask[np.asarray(positions, dtype=np.int64)] = True
        self.fail(mask, reason, field)

    def fail_codes(self, reasons: pa.Array, field: str) -> None:
        """Reasons computed elsewhere (credo.ids), null where the value is fine."""
        for reason in pc.unique(reasons.drop_null()).to_pylist():
            self.fail(_np(pc.equal(reasons, reason)), str(reason), field)

    def reasons(self) -> tuple[pa.Array, pa.Array]:
        """(reason, field) per row as Arrow strings, null where the row passes."""
        table = pa.array([r or None for r, _ in self.rules], pa.string())
        fields = pa.array([f or None for _, f in self.rules], pa.string())
        codes = pa.array(self.code.astype(np.int32))
        return pc.take(table, codes), pc.take(fields, codes)


class _Rows:
    """The batch's cleaned columns; ``at(rows)`` is the table of those rows (no copy when all)."""

    def __init__(self, columns: dict[str, pa.Array]) -> None:
        self.columns = columns
        self.n = len(next(iter(columns.values())))

    def at(self, rows: _I64, names: tuple[str, ...] | None = None) -> pa.Table:
        names = names or tuple(self.columns)
        every = len(rows) == self.n
        take = pa.array(rows, pa.int64())
        return pa.table({"pos": pa.array(rows, pa.int64()),
                         **{c: self.columns[c] if every else self.columns[c].take(take) for c in names}})


def _check_json(con: duckdb.DuckDBPyConnection, values: pa.Array, v: Verdicts, reason: str,
                field: str) -> None:
    """JSON objects only; parsed by DuckDB, on the rows that have a value and are still standing."""
    rows = np.flatnonzero(v.ok & _np(pc.is_valid(values)))
    if not len(rows):
        return
    _register(con, "json_in", pa.table({"pos": rows, "value": values.take(pa.array(rows))}))
    bad = con.execute(q("ingest.json_not_object")).fetchnumpy()["pos"]
    v.fail_at(bad, reason, field)


def _unknown_residents(con: duckdb.DuckDBPyConnection, resident: _I64, v: Verdicts, field: str,
                       among: _Bools | None = None) -> None:
    """Rows still standing (of ``among``) whose resident the registry does not hold."""
    rows = np.flatnonzero(v.ok if among is None else v.ok & among)
    _register(con, "residents_probe", pa.table({"pos": rows, "resident": resident[rows]}))
    unknown = con.execute(q("ingest.unknown_residents")).fetchnumpy()["pos"]
    v.fail_at(unknown, "unknown_resident", field)


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Register a batch's input for SQL, cut into slices of DuckDB's row-group size (no copy): DuckDB
    scans an Arrow table one record batch per thread, so one huge batch would be read by one thread."""
    con.register(name, pa.Table.from_batches(table.to_batches(max_chunksize=_SLICE), table.schema))


_SLICE = 122_880


def _run(con: duckdb.DuckDBPyConnection, ref: str, params: dict[str, Any]) -> None:
    """A named script of several statements, each given only the parameters it names."""
    for statement in q(ref).split(";"):
        con.execute(statement, {k: val for k, val in params.items() if f"${k}" in statement})

