"""The ``credo`` command line (spec §7): parse, call ``credo.service``, render.

Exit codes: 0 done; 1 done with a refusal (rejected rows, a refused policy,
a broken audit chain); 2 nothing could be done (unreadable input, bad usage,
an error). Errors go to stderr; ``--json`` output goes to stdout.
"""

from __future__ import annotations

import itertools
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

try:  # typer 0.29 carries its own copy of click, whose exceptions are not click's
    from typer._click import exceptions as click_errors
except ImportError:
    from click import exceptions as click_errors  # type: ignore[no-redef]

from credo import cli_output as output
from credo import policy as policies
from credo import settings
from credo.api.client import here_or_served
from credo.audit import Verdict
from credo.errors import CredoError, UnreadableFeed
from credo.ids import IdError, named_by_id
from credo.service import Credo
from credo.store import creating
from credo.times import iso

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)
policy_app = typer.Typer(no_args_is_help=True, help="Check, apply and describe policies.")
objection_app = typer.Typer(no_args_is_help=True, help="Objections against records (spec §5).")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
app.add_typer(policy_app, name="policy")
app.add_typer(objection_app, name="objection")
app.add_typer(audit_app, name="audit")
app.add_typer(token_app, name="token")
out = Console(width=None if sys.stdout.isatty() else 10_000)
"""Piped to a file or another program, nothing is wrapped or cut to a terminal's width."""
err = Console(stderr=True, width=None if sys.stderr.isatty() else 10_000)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Engine = Annotated[str, typer.Option(help="duckdb, or spark (CREDO_SPARK_MASTER, CREDO_SPARK_LAKE)")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="ISO 8601 time; a bare date is local midnight")]


@app.callback()
def _global(ctx: typer.Context,
            db: Annotated[Path | None, typer.Option("--db", envvar="CREDO_DB", help="database file")] = None) -> None:
    if db is not None:
        os.environ["CREDO_DB"] = str(db)
    ctx.call_on_close(_close_services)


def emit(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


_opened: list[Credo] = []


def service() -> Credo:
    """The database of --db, which must exist (only `credo init`, `restore` and `demo` make one),
    closed when the command ends: a command that appended audit entries signs the
    log's head then (a checkpoint, when a key is configured)."""
    credo = Credo.open(create=False)
    _opened.append(credo)
    return credo


def _close_services() -> None:
    while _opened:
        _opened.pop().close()


def read_text(path: Path, what: str) -> str:
    """A file given on the command line, or a one-line error naming it and why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredoError(f"{what} {path}: {exc.strerror or exc}", code="unreadable_file") from None
    except UnicodeDecodeError:
        raise CredoError(f"{what} {path}: not UTF-8 text", code="unreadable_file") from None


def as_of_time(credo: Credo, text: str | None) -> datetime:
    """--as-of in the city's time (now when not given), or a one-line error saying what is wrong."""
    try:
        return credo.when(text)
    except ValueError as exc:
        raise CredoError(f"--as-of {text}: not an ISO 8601 date or date-time such as 2025-01-01 or "
                         f"2025-01-01T09:00:00+08:00 ({exc})", code="bad_time") from None


@policy_app.command("check")
def policy_check(file: Path) -> None:
    """Lint a policy: exit 0 when clean or with warnings only, 1 when refused."""
    _, problems = policies.check_text(read_text(file, "policy file"))
    for p in problems:
        (err if p.severity == "refuse" else out).print(f"{p.severity}: {p}", markup=False, highlight=False)
    refused = [p for p in problems if p.severity == "refuse"]
    out.print(f"{file}: {'refused' if refused else 'ok'} ({len(refused)} refusal(s), "
              f"{len(problems) - len(refused)} warning(s))", markup=False, highlight=False)
    raise typer.Exit(1 if refused else 0)


@policy_app.command("apply")
def policy_apply(file: Path) -> None:
    """Lint then apply a policy as a new version, rescoring everyone."""
    text = read_text(file, "policy file")
    applied = service().apply_policy(text)
    for w in applied.warnings:
        out.print(f"warn: {w}", markup=False)
    out.print(f"applied {applied.label}", markup=False)


@policy_app.command("schema")
def policy_schema() -> None:
    """The policy file's JSON Schema, for editors."""
    emit(policies.schema())


@app.command()
def init(policy: Annotated[Path | None, typer.Option(help="policy file (default: shipped beijing)")] = None) -> None:
    """Create the database with a policy: whole, or (the policy refused) not at all."""
    text = read_text(policy or policies.shipped("beijing"), "policy file")
    path = settings.db_path()
    if path.exists():  # a Credo database without a policy yet (made by the library) takes one
        credo = service()
        if credo.initialised():
            raise CredoError("the database already has a policy: use `credo policy apply`",
                             code="already_initialised")
        applied = credo.apply_policy(text)
    else:
        with creating(path) as draft:
            credo = Credo.open(draft)
            try:
                applied = credo.apply_policy(text)
                credo.con.execute("CHECKPOINT")
            finally:
                credo.close()
    out.print(f"initialised {path} with policy {applied.label}", markup=False)


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
    """Load feeds: exit 0 all accepted or duplicate, 1 some rejected, 2 a file unreadable.

    Each file is one batch (one transaction); an unreadable file is reported and the others still load.
    """
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
        out.print(f"{r.source}: {r.rows} rows, {r.accepted} accepted, {r.duplicates} duplicates, "
                  f"{sum(r.rejected.values())} rejected" + (f" ({reasons})" if reasons else ""), markup=False,
                  soft_wrap=True)
    if as_json:
        emit([r.to_json() for r in results] + [{"error": e.code, "message": e.message} for e in unreadable])
    raise typer.Exit(2 if unreadable else 1 if any(r.rejected for r in results) else 0)


@app.command()
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


@app.command()
def score(as_of: AsOf = None, engine: Engine = "duckdb") -> None:
    """Recompute every standing."""
    credo = service()
    when = as_of_time(credo, as_of)
    if engine == "spark":
        from credo.scoring import score_with_spark

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
    s = credo.standing(resident_id, as_of_time(credo, as_of) if as_of else None).to_json(credo.policy.tz)
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
    x = credo.explain(resident_id, as_of_time(credo, as_of) if as_of else None)
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
    """A decision, as a provider would get it, with the receipt of its audit entry."""
    decision, receipt = service().check_receipted(resident_id, action, purpose=purpose)
    d = {**decision.to_json(), "receipt": receipt}
    if as_json:
        emit(d)
        return
    out.print(f"{d['decision'].upper()}  {d['resident_id']} {d['action']}  ({d['decision_id']}, {d['policy']})",
              markup=False)
    for r in d["reasons"]:
        out.print(f"  {r['code']}: {len(r['records'])} record(s); ends {r['ends']}", markup=False)
    out.print(f"  receipt {receipt['seq']}:{receipt['hash']}", markup=False)


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
                      uphold: Annotated[bool, typer.Option("--uphold", help="the record is withdrawn")] = False,
                      reject: Annotated[bool, typer.Option("--reject", help="the record stands")] = False) -> None:
    """Answer an objection: exactly one of --uphold or --reject, never a default."""
    if uphold == reject:
        raise CredoError("give exactly one of --uphold or --reject", code="bad_usage")
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
def audit_verify(as_json: JsonOpt = False,
                 public_key: Annotated[str | None, typer.Option(
                     "--public-key", help="the auditor's public key, text or file (default: the key's .pub)")] = None,
                 receipts: Annotated[list[str] | None, typer.Option(
                     "--receipt", help="SEQ:HASH of a decision's receipt the log must hold (repeatable)")] = None,
                 ) -> None:
    """Check the hash chain against every signed checkpoint and the receipts given; exit 1 naming
    the first bad entry."""
    from credo.checkpoints import parse_receipt

    try:
        wanted = [parse_receipt(r) for r in receipts or []]
    except ValueError as exc:
        raise CredoError(f"--receipt: {exc}", code="bad_receipt") from None
    v = service().verify_audit(public_key, wanted)
    if as_json:
        emit(v.to_json())
        raise typer.Exit(0 if v.ok else 1)
    if v.ok:
        out.print(f"audit log intact: {v.entries} entries; {_signing_line(v)}", markup=False)
        for r in v.receipts:
            out.print(f"receipt {r['seq']}:{r['hash']} holds", markup=False)
        return
    err.print(f"audit log BROKEN at entry {v.first_bad}: {v.problem}", markup=False)
    for f in v.findings:
        if f["problem"] != v.problem:
            err.print(f"  also: {f['problem']}", markup=False)
    raise typer.Exit(1)


def _signing_line(v: Verdict) -> str:
    if v.signing == "unsigned":
        return "unsigned (no checkpoint yet; without a key nothing is signed: `credo audit key` makes one)"
    last = v.last_checkpoint
    assert last is not None  # a signed log that verifies has a checkpoint that holds
    return (f"signed: {v.checkpoints} checkpoint(s) hold, the last of entry {last['seq']} at {last['signed_at']}; "
            f"{v.unsigned_entries} entries after it not signed yet")


@audit_app.command("key")
def audit_key() -> None:
    """Make the Ed25519 key that signs checkpoints and backups; print its public half for the auditor."""
    from credo import settings, signing

    path = signing.key_path(settings.db_path())
    public = signing.make_key(path)
    out.print(public, markup=False)
    err.print(f"private key written to {path} (mode 0600; keep it apart from the database and its backups); "
              f"public key in {signing.public_path(path)}: give it to the auditor", markup=False)


@audit_app.command("export")
def audit_export(output: Annotated[Path | None, typer.Option("--out")] = None) -> None:
    """Write the log out as JSON Lines (stdout by default), streamed: memory stays bounded at any size."""
    credo = service()
    try:
        with output.open("wb") if output else open(sys.stdout.fileno(), "wb", closefd=False) as sink:
            for entry in credo.export_audit():
                sink.write(orjson.dumps(named_by_id(entry), default=str) + b"\n")
    finally:
        credo.close()


@token_app.command("create")
def token_create(role: Annotated[str, typer.Option()], agency: str | None = None, provider: str | None = None,
                 resident: str | None = None,
                 expires: Annotated[str | None, typer.Option(help="a duration from now (12h, 30d) or an ISO 8601 "
                                                             "date or date-time; default: never")] = None) -> None:
    """An API token, shown once."""
    credo = service()
    token, made = credo.create_token(role, agency=agency, provider=provider, resident_id=resident, expires=expires)
    out.print(f"{token}", markup=False)
    until = f", expires {iso(made.expires_at, credo.policy.tz)}" if made.expires_at else ""
    err.print(f"token {made.id} for {made.principal.name} (role {made.principal.role}{until}); it is shown only "
              f"this once", markup=False)


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """Every token by number, whom it names and its state (active, expired, revoked); never a secret. While
    `credo serve` holds the database, through the server (CREDO_HOST, CREDO_PORT; CREDO_TOKEN: an operator token)."""
    rows = here_or_served(lambda: {"tokens": service().tokens()}, "GET", "/v1/tokens")["tokens"]
    if as_json:
        emit(rows)
        return
    table = Table("id", "principal", "role", "created", "expires", "status")
    for t in rows:
        table.add_row(str(t["id"]), t["principal"], t["role"], t["created_at"], t["expires_at"] or "-",
                      t["status"] + (f" {t['revoked_at']} by {t['revoked_by']}" if t["revoked_at"] else ""))
    out.print(table)


@token_app.command("revoke")
def token_revoke(number: Annotated[int, typer.Argument(metavar="ID", help="the token's number (credo token list)")]
                 ) -> None:
    """Revoke a token: it, and every web session opened with it, stop working at once (through the server
    while it holds the database, as `token list`)."""
    done = here_or_served(lambda: {"principal": service().revoke_token(number).name}, "DELETE",
                          f"/v1/tokens/{number}")
    out.print(f"token {number} ({done['principal']}) revoked", markup=False)


@app.command()
def whatif(policy_file: Annotated[Path, typer.Argument(help="proposed policy")],
           as_of: AsOf = None, as_json: JsonOpt = False,
           sample: Annotated[int, typer.Option(help="resident IDs shown per list join/leave")] = 5,
           engine: Engine = "duckdb") -> None:
    """The impact of a proposed policy on the current ledger; nothing is applied or stored."""
    text = read_text(policy_file, "policy file")
    credo = service()
    w = credo.whatif(text, as_of_time(credo, as_of), sample=sample, engine=engine)
    if as_json:
        emit(w)
        return
    output.print_whatif(out, w)

@app.command()
def fairness(as_of: AsOf = None, as_json: JsonOpt = False,
             min_group: Annotated[int, typer.Option(help="smaller groups: shown, not judged")] = 30,
             engine: Engine = "duckdb") -> None:
    """Outcomes by district, sex and age band, flagging groups below four-fifths of the best."""
    credo = service()
    f = credo.fairness(as_of_time(credo, as_of), min_group=min_group, engine=engine)
    if as_json:
        emit(f)
        return
    output.print_fairness(out, f, min_group)

@app.command("backup")
def backup_cmd(directory: Path) -> None:
    """A consistent snapshot of the database into DIR (Parquet files and a manifest of their digests, signed
    with the signing key when there is one), also while serving: when `credo serve` holds the database, the
    server takes it (CREDO_HOST, CREDO_PORT; CREDO_TOKEN: an operator token)."""
    manifest = here_or_served(lambda: service().backup(directory), "POST", "/v1/admin/backup",
                              {"dir": str(directory.resolve())})
    signed = f"; manifest signed by {manifest['signed_by']}" if manifest.get("signed_by") else ""
    out.print(f"backup in {directory}: {manifest['counts']['ledger']:,} records, "
              f"{manifest['counts']['audit']:,} audit entries{signed}", markup=False, soft_wrap=True)
    if not signed:
        err.print("warning: the manifest is NOT signed (no signing key: `credo audit key` makes one); "
                  "restoring it will need --unsigned", markup=False, soft_wrap=True)


@app.command("restore")
def restore_cmd(directory: Path,
                public_key: Annotated[str | None, typer.Option(
                    "--public-key", help="the public key (base64 text, or a file holding it) the manifest must be "
                    "signed with; default: the .pub of CREDO_AUDIT_KEY, else of <db>.audit-key")] = None,
                unsigned: Annotated[bool, typer.Option(
                    "--unsigned", help="restore a backup with no signature, or none that can be checked, on its "
                    "digests alone (a wrong signature is refused even so)")] = False) -> None:
    """Rebuild the database (--db, which must not exist yet) from a backup, once its signature and every
    file's digest are checked; exit 2, nothing written, when they do not match."""
    from credo import backup, signing

    trusted = signing.load_public(public_key) if public_key else None
    done = backup.restore(directory, settings.db_path(), public_key=trusted, unsigned=unsigned)
    proof = ("manifest NOT signed or its signature not checked (--unsigned)" if not done["signed_by"]
             else f"manifest signed by {done['signed_by']}")
    files = "every file matches its digest" if done["format"] == backup.FORMAT else "format 2: no digests"
    out.print(f"restored {settings.db_path()}: {done['counts']['ledger']:,} records; {files}, {proof}; "
              f"audit chain verified ({done['audit_entries']:,} entries)", markup=False, soft_wrap=True)


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="address (default CREDO_HOST)")] = None,
          port: Annotated[int | None, typer.Option(help="port (default CREDO_PORT)")] = None,
          workers: Annotated[int | None, typer.Option(help="worker processes (default CREDO_WORKERS)")] = None
          ) -> None:
    """The HTTP API under /v1 (OpenAPI at /docs), holding the database until interrupted."""
    from credo.api.server import run

    service().close()  # a missing, foreign or held database is said here, before the workers start
    host = host or settings.get("CREDO_HOST")
    port = port or int(settings.get("CREDO_PORT"))
    workers = workers or int(settings.get("CREDO_WORKERS"))
    err.print(f"serving http://{host}:{port}/v1 with {workers} worker(s); OpenAPI at /docs", markup=False)
    run(host, port, workers)


@app.command()
def demo(residents: Annotated[int, typer.Option(help="size of the synthetic city")] = 100_000,
         seed: int = 1,
         city: Annotated[Path, typer.Option("--out", help="where the feed files go")] = Path("demo-city"),
         host: str | None = None, port: int | None = None,
         serve_it: Annotated[bool, typer.Option("--serve/--no-serve", help="end by serving the city")] = True) -> None:
    """Synthetic city -> ingest -> score -> serve, in one command (needs an empty --db)."""
    import time

    from credo.synth import synth_city

    started = time.perf_counter()
    err.print(f"writing a synthetic city of {residents:,} residents into {city}/", markup=False)
    files = synth_city(residents, city, seed=seed)
    credo = Credo.open()  # created when new, as the demo's own city
    if not credo.initialised():
        credo.apply_policy(policies.shipped("beijing").read_text(encoding="utf-8"))
    order = ["population", "telecom", *sorted(a for a in files if a not in ("population", "telecom"))]
    for agency in order:
        t0 = time.perf_counter()
        [r] = credo.ingest_files(agency, [city / files[agency]["file"]])
        err.print(f"  {agency:20} {r.accepted:>10,} accepted {sum(r.rejected.values()):>6,} rejected "
                  f"({time.perf_counter() - t0:.1f} s)", markup=False)
    t0 = time.perf_counter()
    n = credo.score()
    err.print(f"scored {n:,} residents in {time.perf_counter() - t0:.1f} s under {credo.policy.label}", markup=False)
    sample = credo.con.execute(
        "SELECT resident FROM standing_hits WHERE list = 'dishonest_debtor' ORDER BY resident LIMIT 1"
    ).fetchall() or credo.con.execute("SELECT resident FROM standings ORDER BY resident LIMIT 1").fetchall()
    from credo.ids import resident_id_from_key

    resident_id = resident_id_from_key(int(sample[0][0]))
    operator, _ = credo.create_token("operator")
    resident, _ = credo.create_token("resident", resident_id=resident_id)
    provider, _ = credo.create_token("provider", provider="airline")
    credo.close()
    host = host or settings.get("CREDO_HOST")
    port = port or int(settings.get("CREDO_PORT"))
    say = [f"\nCredo demo ready in {time.perf_counter() - started:.0f} s: {residents:,} residents",
           f"  dashboard   http://{host}:{port}/  (sign in with the operator token)",
           f"  operator    {operator}",
           f"  resident    {resident}  ({resident_id})",
           f"  provider    {provider}",
           f"  try: curl -H 'Authorization: Bearer {provider}' "
           f"'http://{host}:{port}/v1/check?resident_id={resident_id}&action=flight.book&purpose=booking'"]
    for line in say:
        out.print(line, markup=False, soft_wrap=True)
    if serve_it:
        serve(host=host, port=port, workers=1)


def main() -> None:
    """Run the CLI: every failure that is not a refusal is one line on stderr and exit 2 (spec §7)."""
    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError:
        sys.exit(2)  # the help is printed already
    except click_errors.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        fail(f"error: {exc.format_message()}{where}")
    except click_errors.ClickException as exc:
        fail(f"error: {exc.format_message()}", exc.exit_code)
    except typer.Abort:
        fail("aborted", 1)
    except UnreadableFeed as exc:
        fail(f"error: {exc.message}")
    except (CredoError, IdError) as exc:
        details = getattr(exc, "details", None)
        fail(f"error: {exc}", lines=[f"  {d}" for d in details] if isinstance(details, list) else [])
    sys.exit(code if isinstance(code, int) else 0)


def fail(message: str, code: int = 2, lines: list[str] | None = None) -> None:
    """Say what went wrong (soft-wrapped: one line however wide) and exit."""
    for line in [message, *(lines or [])]:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
