"""The seam both engines share: the scoring pipeline's inputs and steps, named and bound in one order.

What the pipeline reads and in which order it is built is the same on every engine, so it is
written here once: the policy's tables and the clock (and, for a scoped run, the scope) are
registered as tables, then the input steps (``sql/inputs.sql``) and the scoring steps
(``sql/score.sql``) are created in file order, each under its own name. An engine supplies only
its primitives: register a table, create a view, keep a step computed once, run a query to
Arrow or to rows, and translate the SQL to its dialect. It knows no domain: a policy reaches it
as tables, a store as tables or Parquet sources.

The governance reports are the same pipeline run twice and compared in SQL (``sql/governance.sql``);
``Reports`` is what they need of an engine, written once over the same primitives plus one: keep
a run's capture beside the other side's.

When a step fails, the error names it and shows the SQL the engine ran (splink's rule): a
broken step is found by its name in the ``.sql`` files, not by reading an engine's stack trace.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from credo.errors import CredoError
from credo.sql import q, statements

SOURCES = ("residents", "ledger", "revocations", "objection_events", "batches", "known")
"""The store's tables the pipeline reads (on Spark, Parquet sources of these names; the last two
only for a run at a known-at time K)."""
INPUTS = ("residents_in", "ledger_in", "revocations_in", "disputes_in")
"""The input steps, in order: each is ``inputs.NAME_all`` for a full run, ``inputs.NAME_scoped``
for a scoped one (``revocations_scoped`` reads ``ledger_in``, so the order matters), and at a
known-at time ``inputs.NAME_known_all`` or ``_known_scoped`` where the input has one (the
residents have none: ``credo.known``)."""
KNOWN = frozenset({"ledger_in", "revocations_in", "disputes_in"})
"""The inputs that a known-at time K filters."""

T = TypeVar("T")


class EngineError(CredoError):
    """A pipeline step (or a query of its outputs) that an engine could not run.

    Not the caller's input: a fault of the SQL, the engine or its inputs, so 500. ``step`` is the
    step's name in the ``.sql`` files and ``sql`` the text the engine ran (translated on Spark);
    the message carries both, and the engine's own error is the cause.
    """

    status = 500
    code = "engine_failed"

    def __init__(self, engine: str, step: str, sql: str, cause: BaseException) -> None:
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(f"{engine} failed at step {step}: {reason}\n{sql}")
        self.engine, self.step, self.sql, self.cause = engine, step, sql, cause


def pipeline(scoped: bool, known: bool = False) -> list[tuple[str, str]]:
    """The steps to create, in order, each with its SQL (DuckDB's dialect, as in the ``.sql`` files)."""
    which = "scoped" if scoped else "all"
    inputs = [(name, q(f"inputs.{name.removesuffix('_in')}_{'known_' if known and name in KNOWN else ''}{which}"))
              for name in INPUTS]
    return [*inputs, *statements("score").items()]


def clock(as_of: datetime) -> pa.Table:
    """``clock_in``: the one time T the pipeline scores at, as naive city wall-clock time."""
    return pa.table({"t": pa.array([as_of], pa.timestamp("us"))})


class Engine(ABC):
    """Binds the pipeline on one engine, then serves its outputs by name; subclasses add primitives."""

    name = "engine"

    def bind(self, tables: Mapping[str, pa.Table], as_of: datetime, scope: np.ndarray | None = None,
             known: pa.Table | None = None) -> None:
        """Register ``tables`` (the policy's, and any others the caller's SQL reads), the clock and
        the scope, then create every step; the steps the engine shares are computed once and kept.
        ``known`` (``credo.known.Known.table``) limits the inputs to what was known at K."""
        self.release()
        self._prepare()
        inputs = {**tables, "clock_in": clock(as_of)}
        if scope is not None:
            inputs["scope_in"] = pa.table({"resident": pa.array(scope, pa.int64())})
        if known is not None:
            inputs["known_in"] = known
        for name, table in inputs.items():
            self._register(name, table)
        kept = self.kept(scope is not None)
        for name, sql in pipeline(scope is not None, known is not None):
            self.step(name, sql, keep=name in kept)

    def step(self, name: str, sql: str, *, keep: bool = False) -> None:
        """Create ``name`` from ``sql``: a view, or (``keep``) computed once and kept behind one."""
        self.attempt(name, sql, lambda text: self._keep(name, text) if keep else self._view(name, text))

    def arrow(self, output: str, order: str = "") -> pa.Table:
        """An output read whole (``order``: an ORDER BY clause from code, or nothing)."""
        return self.attempt(output, f"SELECT * FROM {output} {order}".strip(), self._fetch)

    def attempt(self, step: str, sql: str, action: Callable[[str], T]) -> T:
        """Run ``action`` on ``sql`` in the engine's dialect; any failure becomes an ``EngineError``
        naming ``step`` and showing the SQL (the source text when the translation itself failed)."""
        text = sql
        try:
            text = self.translate(sql)
            return action(text)
        except Exception as exc:
            raise EngineError(self.name, step, text, exc) from exc

    def translate(self, sql: str) -> str:
        """The pipeline's SQL (DuckDB's dialect) in this engine's."""
        return sql

    @abstractmethod
    def _prepare(self) -> None:
        """What the engine needs before the inputs are registered (DuckDB's macro, Spark's sources)."""

    @abstractmethod
    def kept(self, scoped: bool) -> tuple[str, ...]:
        """The steps this engine computes once and keeps, for a full or a scoped run."""

    @abstractmethod
    def release(self) -> None:
        """Free what the last bind kept."""

    @abstractmethod
    def _register(self, name: str, table: pa.Table) -> None: ...

    @abstractmethod
    def _view(self, name: str, sql: str) -> None: ...

    @abstractmethod
    def _keep(self, name: str, sql: str) -> None: ...

    @abstractmethod
    def _fetch(self, sql: str) -> pa.Table: ...

    @abstractmethod
    def _rows(self, sql: str) -> list[dict[str, Any]]: ...


class Reports(Engine):
    """The governance reports' seam: capture scoring runs side by side, build steps, read reports.

    A capture's ``tables`` are the policy's plus ``p_lists``; the reports' knobs are the one-row
    table ``params_in``, registered by the engine's constructor. An engine adds ``_capture``.
    """

    def capture(self, tables: Mapping[str, pa.Table], as_of: datetime, side: int, names: Sequence[str]) -> None:
        """Bind the scoring pipeline with ``tables`` at ``as_of`` and keep its outputs under ``side``."""
        self.bind(tables, as_of)
        for name in names:
            self.attempt(f"capture_{name}", q(f"governance.capture_{name}"), partial(self._capture, name, side=side))

    def steps(self, names: Sequence[str]) -> None:
        """Build the named steps in order, each kept: each is read by several reports."""
        for name in names:
            self.step(name, q(f"governance.{name}"), keep=True)

    def rows(self, report: str) -> list[dict[str, Any]]:
        """A report's rows as dicts."""
        return self.attempt(report, q(f"governance.{report}"), self._rows)

    @abstractmethod
    def _capture(self, name: str, sql: str, side: int) -> None:
        """Keep the rows of ``sql`` as ``gov_NAME``, with a first column ``side``, after any earlier side's."""
