"""The second clock, K: what Credo knew, and when (spec §4 "Two clocks").

Every write that can change a standing (a batch, a revocation, an objection step, a policy
applied) leaves one row in ``known``: the time it became known and the sequence number of its
own audit entry, written in the write's transaction just before it commits. So a write is known
at K from the moment its transaction commits, never before, and a crash leaves neither the
write nor its row.

A time alone cannot order a decision and a write made at the same instant (a fixed clock makes
that the rule, not the exception), so a decision is replayed against what was known *before
its own audit entry*: ``Known(at, before)`` holds a write when it was known by ``at`` and its
entry precedes entry ``before``. Both a write and a decision get their place in one chain, the
audit log, so the order is total. ``--known-at K`` from a user is ``Known(K)``: every entry.

A row written before this table existed (or straight into the tables, as tests do) has no
``known`` row and is taken as known from its own time: the batch's ``received_at`` (a record with no batch
row, loaded straight into the ledger: its ``occurred_at``), the revocation's ``revoked_at``, the step's
``happened_at``, the policy's ``applied_at``.

Population and telecom feeds are batches too. A record's resident was resolved (by ID, or by
the phone's holder at ``occurred_at``) when its batch was accepted, from what Credo held then,
so telecom changes reach a standing at K only through the records known by K. The population
register keeps each resident's latest row only, so a resident registered after K still reads
at K as registered, with no records known then (docs/corrections.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import duckdb
import pyarrow as pa

from credo import policy as policies
from credo.errors import NotFound
from credo.policy import Policy
from credo.sql import q

EVERY = 2**62
"""The bound ``before`` of a user's K: after every audit entry there will ever be."""


class Known(NamedTuple):
    """What Credo knew: every write known by ``at`` whose audit entry comes before entry ``before``."""

    at: datetime
    before: int = EVERY

    def table(self) -> pa.Table:
        """``known_in``: the one row the pipeline's known inputs read."""
        return pa.table({"known_at": pa.array([self.at], pa.timestamp("us")),
                         "seq": pa.array([self.before], pa.int64())})


def note(con: duckdb.DuckDBPyConnection, seq: int, at: datetime, kind: str, *, batch: int | None = None,
         agency: str | None = None, record_id: str | None = None, objection: int | None = None,
         step: str | None = None, policy: int | None = None) -> None:
    """Record, inside the write's transaction, that a write (its audit entry ``seq``) is known from ``at``."""
    con.execute(q("known.note"), {"seq": seq, "at": at, "kind": kind, "batch": batch, "agency": agency,
                                  "record_id": record_id, "objection": objection, "step": step,
                                  "policy": policy})


def last(con: duckdb.DuckDBPyConnection) -> int:
    """The audit entry of the last write committed (0: none noted): what a decision index read from
    ``con`` now reflects (``credo.serving``)."""
    row = con.execute(q("known.last")).fetchone()
    return int(row[0]) if row else 0


def policy_at(con: duckdb.DuckDBPyConnection, known: Known) -> Policy:
    """The policy in force at K: the latest version applied and known by then."""
    rows = con.execute(q("known.policy_at"), {"at": known.at, "before": known.before}).fetchall()
    if not rows:
        raise NotFound("no policy was in force at that known-at time", code="no_policy_then")
    policy = policies.load(rows[0][1])
    policy.version = int(rows[0][0])
    return policy


def policies_at(con: duckdb.DuckDBPyConnection, known: Known) -> list[Policy]:
    """The policy of each jurisdiction in force at K (credo.jurisdictions), oldest applied first."""
    rows = con.execute(q("known.policies_at"), {"at": known.at, "before": known.before}).fetchall()
    if not rows:
        raise NotFound("no policy was in force at that known-at time", code="no_policy_then")
    out = []
    for version, document in rows:
        policy = policies.load(document)
        policy.version = int(version)
        out.append(policy)
    return out
