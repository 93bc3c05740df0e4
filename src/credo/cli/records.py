"""The records of the ledger: ``credo ingest`` (feeds in), ``credo rejects`` (the rows refused and
why), ``credo revoke`` (a record withdrawn, kept in the ledger) and ``credo redress`` (the decisions
a withdrawal made wrong)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from credo import settings
from credo.cli import output
from credo.cli.common import JsonOpt, emit, err, out, service
from credo.errors import UnreadableFeed
from credo.ids import parse_resident_id


def ingest_cmd(agency: Annotated[str, typer.Option()], files: list[Path], as_json: JsonOpt = False,
               match_engine: Annotated[str | None, typer.Option(
                   envvar="CREDO_MATCH_ENGINE",
                   help="where described rows are matched: duckdb, or spark for a large backlog "
                        "(CREDO_SPARK_MASTER)")] = None) -> None:
    """Load feeds: exit 0 all accepted or duplicate, 1 some rejected, 2 a file unreadable.

    Each file is one batch (one transaction); an unreadable file is reported and the others still load.
    """
    if match_engine is not None:  # as --db does: the setting is the one place the choice is read
        os.environ["CREDO_MATCH_ENGINE"] = match_engine
        settings.current()
    credo = service()
    results: list[Any] = []
    unreadable: list[UnreadableFeed] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rows]:>12,} rows"),
                  output.RateColumn(), TimeElapsedColumn(), console=err, transient=True,
                  disable=as_json or not err.is_terminal) as bar:
        for path in files:
            try:
                results.append(credo.ingest_files(agency, [path], progress=output.rows_progress(bar, path))[0])
            except UnreadableFeed as exc:
                unreadable.append(exc)
                err.print(f"error: {exc.message}", markup=False, soft_wrap=True)
    for r in results:
        if as_json:
            continue
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.rejected.items()))
        held = f", {r.held} held for review" if r.held else ""
        over = f"; {r.overridden} rows gave a subject and a description: the subject was used" if r.overridden else ""
        out.print(f"{r.source}: {r.rows} rows, {r.accepted} accepted{held}, {r.duplicates} duplicates, "
                  f"{sum(r.rejected.values())} rejected" + (f" ({reasons})" if reasons else "") + over,
                  markup=False, soft_wrap=True)
    if as_json:
        emit([r.to_json() for r in results] + [{"error": e.code, "message": e.message} for e in unreadable])
    raise typer.Exit(2 if unreadable else 1 if any(r.rejected for r in results) else 0)


def rejects(agency: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False,
            limit: Annotated[int, typer.Option(min=1, max=100_000, help="rows in one page")] = 1000,
            after: Annotated[str | None, typer.Option(help="the next marker a previous page gave")] = None) -> None:
    """List rejected rows with their reasons, a page at a time (the total and the next page's marker)."""
    page = service().rejects(agency, limit, after)
    if as_json:
        emit(page)
        return
    for source, rows in itertools.groupby(page["rejects"], key=lambda r: (r["agency"], r["source"])):
        out.print(f"{source[0]}: {source[1]}", markup=False, highlight=False, soft_wrap=True)
        table = Table("line", "record", "reason", "later", "message")
        for r in rows:
            table.add_row(str(r["line"]), r["record"] or "-", r["reason"],
                          "accepted" if r["accepted_later"] else "", r["message"])
        out.print(table)
    shown = f"{len(page['rejects']):,} of {page['total']:,} rejected rows"
    more = (f"; the next page: credo rejects{f' --agency {agency}' if agency else ''} --after {page['next']}"
            if page["next"] else "")
    out.print(shown + more, markup=False, highlight=False, soft_wrap=True)



def revoke(agency: Annotated[str, typer.Option()], record_id: str, reason: Annotated[str, typer.Option()]) -> None:
    """Revoke a record (it stays in the ledger, marked revoked)."""
    service().revoke(agency, record_id, reason)
    out.print(f"revoked {agency}:{record_id}", markup=False)


def redress_cmd(as_json: JsonOpt = False,
                provider: Annotated[str | None, typer.Option(help="only what this provider was told")] = None,
                resident: Annotated[str | None, typer.Option(help="only this resident's decisions")] = None) -> None:
    """Logged decisions that a withdrawn record made worse for the resident (spec §8)."""
    rows = service().redress(provider=provider, resident_id=parse_resident_id(resident) if resident else None)
    if as_json:
        emit(rows)
        return
    table = Table("decision", "resident", "told", "action", "on", "said", "holds now", "withdrawn")
    for r in rows:
        withdrawn = "; ".join(f"{w['record']} ({w['reason']})" for w in r["withdrawn"])
        table.add_row(r["decision_id"], r["resident_id"], r["provider"] or r["principal"], r["action"],
                      r["decided_at"], _verdict(r["said"]), _verdict(r["holds"]), withdrawn)
    out.print(table)


def _verdict(d: dict[str, Any]) -> str:
    return str(d["decision"]) + (f" ({', '.join(d['benefits'])})" if d["benefits"] else "")
