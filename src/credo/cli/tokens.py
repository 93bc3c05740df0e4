"""``credo token``: API tokens created, listed and revoked (the last two through the server while it
holds the database)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from credo.cli.common import JsonOpt, emit, err, out, service
from credo.serving.client import here_or_served
from credo.times import iso

app = typer.Typer(no_args_is_help=True, help="API tokens.")


@app.command("create")
def token_create(role: Annotated[str, typer.Option()], agency: str | None = None, provider: str | None = None,
                 resident: str | None = None,
                 expires: Annotated[str | None, typer.Option(help="a duration from now (12h, 30d) or an ISO 8601 "
                                                             "date or date-time; default: never")] = None,
                 actions: Annotated[str | None, typer.Option(help="a provider's only actions, A,B (the checks it may "
                                                             "ask for, its feed); default: every action")] = None
                 ) -> None:
    """An API token, shown once."""
    credo = service()
    scope = None if actions is None else actions.split(",")
    token, made = credo.create_token(role, agency=agency, provider=provider, resident_id=resident, expires=expires,
                                     actions=scope)
    out.print(f"{token}", markup=False)
    until = f", expires {iso(made.expires_at, credo.policy.tz)}" if made.expires_at else ""
    if made.principal.actions is not None:
        until += f", actions {','.join(made.principal.actions)}"
    err.print(f"token {made.id} for {made.principal.name} (role {made.principal.role}{until}); it is shown only "
              f"this once", markup=False)


@app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """Every token by number, whom it names and its state (active, expired, revoked); never a secret. While
    `credo serve` holds the database, through the server (CREDO_HOST, CREDO_PORT; CREDO_TOKEN: an operator token)."""
    rows = here_or_served(lambda: {"tokens": service().tokens()}, "GET", "/v1/tokens")["tokens"]
    if as_json:
        emit(rows)
        return
    table = Table("id", "principal", "role", "actions", "created", "expires", "status")
    for t in rows:
        actions = ",".join(t["actions"]) if t.get("actions") else "-"
        table.add_row(str(t["id"]), t["principal"], t["role"], actions, t["created_at"], t["expires_at"] or "-",
                      t["status"] + (f" {t['revoked_at']} by {t['revoked_by']}" if t["revoked_at"] else ""))
    out.print(table)


@app.command("revoke")
def token_revoke(number: Annotated[int, typer.Argument(metavar="ID", help="the token's number (credo token list)")]
                 ) -> None:
    """Revoke a token: it, and every web session opened with it, stop working at once (through the server
    while it holds the database, as `token list`)."""
    done = here_or_served(lambda: {"principal": service().revoke_token(number).name}, "DELETE",
                          f"/v1/tokens/{number}")
    out.print(f"token {number} ({done['principal']}) revoked", markup=False)

