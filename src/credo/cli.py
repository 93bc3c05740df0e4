"""The ``credo`` command line (spec §7): parse, call ``credo.service``, render.

Exit codes: 0 done; 1 done with a refusal (rejected rows, a refused policy,
a broken audit chain); 2 nothing could be done (unreadable input, bad usage,
an error). Errors go to stderr; ``--json`` output goes to stdout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from credo import policy as policies
from credo.errors import CredoError, UnreadableFeed
from credo.ids import IdError
from credo.service import Credo

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)
policy_app = typer.Typer(no_args_is_help=True, help="Check, apply and describe policies.")
objection_app = typer.Typer(no_args_is_help=True, help="Objections against records (spec §5).")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
app.add_typer(policy_app, name="policy")
app.add_typer(objection_app, name="objection")
app.add_typer(audit_app, name="audit")
app.add_typer(token_app, name="token")
out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="ISO 8601 time; a bare date is local midnight")]


@app.callback()
def _global(db: Annotated[Path | None, typer.Option("--db", envvar="CREDO_DB", help="database file")] = None) -> None:
    if db is not None:
        os.environ["CREDO_DB"] = str(db)


def emit(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def service() -> Credo:
    return Credo.open()


@policy_app.command("check")
def policy_check(file: Path) -> None:
    """Lint a policy: exit 0 when clean or with warnings only, 1 when refused."""
    _, problems = policies.check_text(file.read_text(encoding="utf-8"))
    for p in problems:
        (err if p.severity == "refuse" else out).print(f"{p.severity}: {p}", markup=False, highlight=False)
    refused = [p for p in problems if p.severity == "refuse"]
    out.print(f"{file}: {'refused' if refused else 'ok'} ({len(refused)} refusal(s), "
              f"{len(problems) - len(refused)} warning(s))", markup=False, highlight=False)
    raise typer.Exit(1 if refused else 0)


@policy_app.command("apply")
def policy_apply(file: Path) -> None:
    """Lint then apply a policy as a new version, rescoring everyone."""
    applied = service().apply_policy(file.read_text(encoding="utf-8"))
    for w in applied.warnings:
        out.print(f"warn: {w}", markup=False)
    out.print(f"applied {applied.label}", markup=False)


@policy_app.command("schema")
def policy_schema() -> None:
    """The policy file's JSON Schema, for editors."""
    emit(policies.schema())


@app.command()
def init(policy: Annotated[Path | None, typer.Option(help="policy file (default: shipped beijing)")] = None) -> None:
    """Create the database with a policy."""
    credo = service()
    if credo.initialised():
        raise CredoError("the database already has a policy: use `credo policy apply`", code="already_initialised")
    applied = credo.apply_policy((policy or policies.shipped("beijing")).read_text(encoding="utf-8"))
    out.print(f"initialised {os.environ.get('CREDO_DB', 'credo.duckdb')} with policy {applied.label}", markup=False)


@app.command()
def synth(residents: Annotated[int, typer.Option()], out_dir: Annotated[Path, typer.Option("--out")],
          seed: int = 1, years: int = 5, dirty: float = 0.0) -> None:
    """Write a synthetic city: one feed file per agency."""
    from credo.synth import synth_city

    summary = synth_city(residents, out_dir, seed=seed, years=years, dirty=dirty)
    for agency, info in summary.items():
        out.print(f"{agency:20} {info['rows']:>12,} rows  {info['file']}", markup=False)


@app.command("ingest")
def ingest_cmd(agency: Annotated[str, typer.Option()], files: list[Path], as_json: JsonOpt = False) -> None:
    """Load feeds: exit 0 all accepted or duplicate, 1 some rejected, 2 a file unreadable."""
    credo = service()
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} files"),
                  TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task(f"ingest {agency}", total=len(files))
        for path in files:
            results.append(credo.ingest_files(agency, [path])[0])
            bar.advance(task)
    for r in results:
        if as_json:
            continue
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.rejected.items()))
        out.print(f"{r.source}: {r.rows} rows, {r.accepted} accepted, {r.duplicates} duplicates, "
                  f"{sum(r.rejected.values())} rejected" + (f" ({reasons})" if reasons else ""), markup=False)
    if as_json:
        emit([r.to_json() for r in results])
    raise typer.Exit(1 if any(r.rejected for r in results) else 0)


@app.command()
def rejects(agency: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False,
            limit: int = 1000) -> None:
    """List rejected rows with their reasons."""
    rows = service().rejects(agency, limit)
    if as_json:
        emit(rows)
        return
    table = Table("agency", "source", "line", "reason", "message")
    for r in rows:
        table.add_row(r["agency"], r["source"], str(r["line"]), r["reason"], r["message"])
    out.print(table)


@app.command()
def score(as_of: AsOf = None, engine: str = "duckdb") -> None:
    """Recompute every standing."""
    credo = service()
    when = credo.when(as_of)
    if engine == "spark":
        from credo.engines.spark import score_with_spark

        n = score_with_spark(credo, when)
    elif engine == "duckdb":
        n = credo.score(when)
    else:
        raise CredoError("engine must be duckdb or spark", code="bad_engine")
    out.print(f"scored {n:,} residents at {when.isoformat()} under {credo.policy.label} ({engine})", markup=False)


@app.command("standing")
def standing_cmd(resident_id: str, as_of: AsOf = None, as_json: JsonOpt = False) -> None:
    """One resident's standing."""
    credo = service()
    s = credo.standing(resident_id, credo.when(as_of) if as_of else None).to_json(credo.policy.tz)
    if as_json:
        emit(s)
        return
    out.print(f"{s['resident_id']}  score {s['score']}  grade {s['grade']}  lists {', '.join(s['lists']) or '-'}",
              markup=False)
    for p in s["pending"]:
        out.print(f"  pending {p['list']} from {p['takes_effect']}", markup=False)
    out.print(f"  changes at {s['changes_at'] or 'never by itself'}; policy {s['policy']}", markup=False)


@app.command("explain")
def explain_cmd(resident_id: str, as_of: AsOf = None, as_json: JsonOpt = False) -> None:
    """One resident's records and how each counts."""
    credo = service()
    x = credo.explain(resident_id, credo.when(as_of) if as_of else None)
    if as_json:
        emit(x)
        return
    out.print(f"{x['resident_id']}  score {x['score']}  grade {x['grade']}", markup=False)
    table = Table("record", "type", "occurred", "points", "why")
    for r in x["records"]:
        table.add_row(f"{r['agency']}:{r['record_id']}", r["type"], r["occurred_at"][:10], f"{r['points']:+d}",
                      r["why"])
    out.print(table)


@app.command("check")
def check_cmd(resident_id: str, action: str, as_json: JsonOpt = False,
              purpose: Annotated[str, typer.Option(help="why the operator asks")] = "operator console") -> None:
    """A decision, as a provider would get it."""
    d = service().check(resident_id, action, purpose=purpose).to_json()
    if as_json:
        emit(d)
        return
    out.print(f"{d['decision'].upper()}  {d['resident_id']} {d['action']}  ({d['decision_id']}, {d['policy']})",
              markup=False)
    for r in d["reasons"]:
        out.print(f"  {r['code']}: {len(r['records'])} record(s); ends {r['ends']}", markup=False)


@app.command()
def revoke(agency: Annotated[str, typer.Option()], record_id: str, reason: Annotated[str, typer.Option()]) -> None:
    """Revoke a record (it stays in the ledger, marked revoked)."""
    service().revoke(agency, record_id, reason)
    out.print(f"revoked {agency}:{record_id}", markup=False)


@objection_app.command("open")
def objection_open(resident_id: str, record_ref: str, reason: Annotated[str, typer.Option()]) -> None:
    number = service().open_objection(resident_id, record_ref, reason)
    out.print(f"objection {number} opened against {record_ref}", markup=False)


@objection_app.command("resolve")
def objection_resolve(number: int, answer: Annotated[str, typer.Option()],
                      uphold: Annotated[bool, typer.Option("--uphold/--reject")] = False) -> None:
    service().resolve_objection(number, uphold=uphold, answer=answer)
    out.print(f"objection {number} {'upheld' if uphold else 'rejected'}", markup=False)


@objection_app.command("list")
def objection_list(as_json: JsonOpt = False, overdue: bool = False, agency: str | None = None,
                   resident: str | None = None) -> None:
    rows = service().objections(resident_id=resident, agency=agency, overdue=overdue)
    if as_json:
        emit(rows)
        return
    table = Table("id", "resident", "record", "status", "opened", "deadline")
    for o in rows:
        table.add_row(str(o["id"]), o["resident_id"], o["record"], o["status"], o["opened_at"], o["deadline"])
    out.print(table)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain; exit 1 naming the first bad entry."""
    v = service().verify_audit()
    if v.ok:
        out.print(f"audit log intact: {v.entries} entries", markup=False)
        return
    err.print(f"audit log BROKEN at entry {v.first_bad}: {v.problem}", markup=False)
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(output: Annotated[Path | None, typer.Option("--out")] = None) -> None:
    """Write the log out as JSON Lines (stdout by default)."""
    rows = service().export_audit()
    text = b"".join(orjson.dumps(r, default=str) + b"\n" for r in rows)
    if output:
        output.write_bytes(text)
    else:
        sys.stdout.buffer.write(text)


@token_app.command("create")
def token_create(role: Annotated[str, typer.Option()], agency: str | None = None, provider: str | None = None,
                 resident: str | None = None) -> None:
    """An API token, shown once."""
    token, who = service().create_token(role, agency=agency, provider=provider, resident_id=resident)
    out.print(f"{token}", markup=False)
    err.print(f"token for {who.name} (role {who.role}); it is shown only this once", markup=False)


def main() -> None:
    try:
        app(standalone_mode=True)
    except UnreadableFeed as exc:
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(2)
    except (CredoError, IdError) as exc:
        err.print(f"error: {exc}", markup=False)
        details = getattr(exc, "details", None)
        if isinstance(details, list):
            for d in details:
                err.print(f"  {d}", markup=False)
        sys.exit(2)
