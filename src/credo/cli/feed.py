"""``credo feed``: the providers' change feed, seen from the operator's side (through the server while
it holds the database)."""

from __future__ import annotations

import typer
from rich.table import Table

from credo.cli.common import JsonOpt, emit, out, service
from credo.serving.client import here_or_served

app = typer.Typer(no_args_is_help=True, help="The providers' change feed.")


@app.command("status")
def feed_status(as_json: JsonOpt = False) -> None:
    """Each provider's acknowledged position in its feed, its lag and the changes overdue (not acknowledged
    within the policy's correction_deadline). While `credo serve` holds the database, through the server
    (CREDO_HOST, CREDO_PORT; CREDO_TOKEN: an operator token)."""
    found = here_or_served(lambda: service().feed_status(), "GET", "/v1/feed/status")
    if as_json:
        emit(found)
        return
    table = Table("provider", "actions", "acknowledged", "head", "lag", "overdue", "oldest unacknowledged")
    for p in found["providers"]:
        overdue = f"{p['overdue']}" + (" (estimated)" if p["deadline_estimated"] else "")
        table.add_row(p["provider"], ",".join(p["actions"]) if p["actions"] else "every action",
                      str(p["acknowledged"]), str(p["head"]), str(p["lag"]), overdue, p["oldest_unacknowledged"] or "-")
    out.print(table)
    out.print(f"feed head {found['head']}; a change is overdue {found['deadline']} after it was recorded",
              markup=False)
