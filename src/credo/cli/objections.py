"""``credo objection``: a resident's objection against a record, opened, answered and listed (spec §5)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from credo.cli.common import JsonOpt, emit, out, service
from credo.errors import CredoError
from credo.ids import parse_resident_id

app = typer.Typer(no_args_is_help=True, help="Objections against records (spec §5).")


@app.command("open")
def objection_open(resident_id: str, record_ref: str, reason: Annotated[str, typer.Option()]) -> None:
    number = service().open_objection(parse_resident_id(resident_id), record_ref, reason)
    out.print(f"objection {number} opened against {record_ref}", markup=False)


@app.command("resolve")
def objection_resolve(number: int, answer: Annotated[str, typer.Option()],
                      uphold: Annotated[bool, typer.Option("--uphold", help="the record is withdrawn")] = False,
                      reject: Annotated[bool, typer.Option("--reject", help="the record stands")] = False) -> None:
    """Answer an objection: exactly one of --uphold or --reject, never a default."""
    if uphold == reject:
        raise CredoError("give exactly one of --uphold or --reject", code="bad_usage")
    service().resolve_objection(number, uphold=uphold, answer=answer)
    out.print(f"objection {number} {'upheld' if uphold else 'rejected'}", markup=False)


@app.command("list")
def objection_list(as_json: JsonOpt = False, overdue: bool = False, agency: str | None = None,
                   resident: str | None = None) -> None:
    rows = service().objections(resident_id=parse_resident_id(resident) if resident else None, agency=agency,
                                overdue=overdue)
    if as_json:
        emit(rows)
        return
    table = Table("id", "resident", "record", "status", "opened", "deadline")
    for o in rows:
        table.add_row(str(o["id"]), o["resident_id"], o["record"], o["status"], o["opened_at"],
                      o["deadline"] + (" (estimated)" if o["deadline_estimated"] else ""))
    out.print(table)

