"""``credo review``: identity matches waiting for a person, listed, confirmed or declined (spec §10)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from credo.cli.common import JsonOpt, emit, out, service
from credo.ids import parse_resident_id

app = typer.Typer(no_args_is_help=True, help="Identity matches waiting for a person (spec §10).")


def _best(item: dict[str, Any]) -> str:
    if not item["candidates"]:
        return "no candidate"
    best = item["candidates"][0]
    levels = ", ".join(c["level"] for c in best["comparisons"].values())
    return f"{best['resident_id']} p={best['probability']:.4f} ({levels})"


@app.command("list")
def review_list(as_json: JsonOpt = False) -> None:
    """Items, pending ones first (overdue before the rest), with the row as received and the ranked
    candidates (--json: every candidate with its comparisons)."""
    items = service().review_items()
    if as_json:
        emit(items)
        return
    table = Table("id", "record", "status", "subject", "candidates", "best candidate", "deadline")
    for i in items:
        s = i["subject"]
        table.add_row(str(i["id"]), i["record"], i["status"], f"{s['name']}, {s['birth_date']}, {s['district']}",
                      str(len(i["candidates"])), _best(i), i["deadline"])
    out.print(table)


@app.command("confirm")
def review_confirm(number: int, resident_id: str, reason: Annotated[str, typer.Option()]) -> None:
    """Item N is about RESIDENT_ID (one of its candidates): its record enters the ledger and counts."""
    item = service().confirm_review(number, parse_resident_id(resident_id), reason)
    out.print(f"review item {number} confirmed: {item['record']} is about {item['judgement']['resident_id']}",
              markup=False)


@app.command("decline")
def review_decline(number: int, reason: Annotated[str, typer.Option()]) -> None:
    """None of item N's candidates is the person: the row becomes an identity_declined reject."""
    item = service().decline_review(number, reason)
    out.print(f"review item {number} declined: {item['record']} is kept as a reject (identity_declined)",
              markup=False)
