"""One resident at a time: ``credo standing``, ``credo explain`` and ``credo check`` (a decision
with the receipt of its audit entry)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from credo.cli.common import AsOf, JsonOpt, KnownAt, emit, optional_time, out, service
from credo.ids import parse_resident_id


def standing_cmd(resident_id: str, as_of: AsOf = None, known_at: KnownAt = None, as_json: JsonOpt = False) -> None:
    """One resident's standing at T (--as-of) from what Credo held at K (--known-at)."""
    credo = service()
    s = credo.standing(parse_resident_id(resident_id), optional_time(credo, as_of, "--as-of"),
                       known_at=optional_time(credo, known_at, "--known-at")).to_json(credo.policy.tz)
    if as_json:
        emit(s)
        return
    out.print(f"{s['resident_id']}  score {s['score']}  grade {s['grade']}  lists {', '.join(s['lists']) or '-'}",
              markup=False)
    for p in s["pending"]:
        out.print(f"  pending {p['list']} from {p['takes_effect']}", markup=False)
    out.print(f"  changes at {s['changes_at'] or 'never by itself'}; policy {s['policy']}", markup=False)


def explain_cmd(resident_id: str, as_of: AsOf = None, known_at: KnownAt = None, as_json: JsonOpt = False) -> None:
    """One resident's records and how each counts, at T (--as-of) from what Credo held at K (--known-at)."""
    credo = service()
    x = credo.explain(parse_resident_id(resident_id), optional_time(credo, as_of, "--as-of"),
                      known_at=optional_time(credo, known_at, "--known-at"))
    if as_json:
        emit(x)
        return
    out.print(f"{x['resident_id']}  score {x['score']}  grade {x['grade']}", markup=False)
    table = Table("record", "type", "occurred", "points", "why")
    for r in x["records"]:
        table.add_row(f"{r['agency']}:{r['record_id']}", r["type"], r["occurred_at"][:10], f"{r['points']:+d}",
                      r["why"])
    out.print(table)


def check_cmd(resident_id: str, action: str, as_of: AsOf = None, known_at: KnownAt = None, as_json: JsonOpt = False,
              purpose: Annotated[str, typer.Option(help="why the operator asks")] = "operator console") -> None:
    """A decision, as a provider would get it, with the receipt of its audit entry (at T, --as-of, from
    what Credo held at K, --known-at: as it would have been given then)."""
    credo = service()
    decision, receipt = credo.check_receipted(parse_resident_id(resident_id), action, purpose=purpose,
                                              as_of=optional_time(credo, as_of, "--as-of"),
                                              known_at=optional_time(credo, known_at, "--known-at"))
    d = {**decision.to_json(), "receipt": receipt}
    if as_json:
        emit(d)
        return
    out.print(f"{d['decision'].upper()}  {d['resident_id']} {d['action']}  ({d['decision_id']}, {d['policy']})",
              markup=False)
    for r in d["reasons"]:
        out.print(f"  {r['code']}: {len(r['records'])} record(s); ends {r['ends']}", markup=False)
    out.print(f"  receipt {receipt['seq']}:{receipt['hash']}", markup=False)

