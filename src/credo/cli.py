"""The ``credo`` command line (spec §7): parse, call ``credo.service``, render.

Exit codes: 0 done; 1 done with a refusal (rejected rows, a refused policy,
a broken audit chain); 2 nothing could be done (unreadable input, bad usage,
an error). Errors go to stderr; ``--json`` output goes to stdout.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from credo import policy as policies
from credo.api.client import here_or_served
from credo.audit import Verdict
from credo.errors import CredoError, UnreadableFeed
from credo.ids import IdError, named_by_id
from credo.service import Credo
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
    """The database, closed when the command ends: a command that appended audit entries signs the
    log's head then (a checkpoint, when a key is configured)."""
    credo = Credo.open()
    _opened.append(credo)
    return credo


def _close_services() -> None:
    while _opened:
        _opened.pop().close()


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
    """Load feeds: exit 0 all accepted or duplicate, 1 some rejected, 2 a file unreadable.

    Each file is one batch (one transaction); an unreadable file is reported and the others still load.
    """
    credo = service()
    results: list[Any] = []
    unreadable: list[UnreadableFeed] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rows]:>12,} rows"),
                  _RateColumn(), TimeElapsedColumn(), console=err, transient=True,
                  disable=as_json or not err.is_terminal) as bar:
        for path in files:
            try:
                results.append(credo.ingest_files(agency, [path], progress=_rows_progress(bar, path))[0])
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


_PHASES = {"read": (0.0, 0.15), "check": (0.15, 0.5), "store": (0.5, 0.7), "score": (0.7, 1.0)}
"""Share of the bar each phase of one file takes (roughly its share of the time on a large file)."""


class _RateColumn(ProgressColumn):
    """Rows of the file per second so far (recomputed at each refresh, so it moves between updates)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.fields['rows'] / max(task.elapsed or 0.0, 1e-6):>10,.0f} rows/s")


def _rows_progress(bar: Progress, path: Path) -> Any:
    """A progress callback for one file: the bar moves through its phases and shows rows and rows/s."""
    task = bar.add_task(f"{path.name}: read", total=1.0, rows=0)

    def tick(phase: str, done: int, total: int) -> None:
        lo, hi = _PHASES.get(phase, (0.0, 1.0))
        bar.update(task, completed=lo + (hi - lo) * (done / total if total else 1.0),
                   description=f"{path.name}: {phase}", rows=done if phase == "read" else total)

    return tick


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
    when = credo.when(as_of)
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
    """Write the log out as JSON Lines (stdout by default)."""
    rows = service().export_audit()
    text = b"".join(orjson.dumps(named_by_id(r), default=str) + b"\n" for r in rows)
    if output:
        output.write_bytes(text)
    else:
        sys.stdout.buffer.write(text)


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
def whatif(policy_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="proposed policy")],
           as_of: AsOf = None, as_json: JsonOpt = False,
           sample: Annotated[int, typer.Option(help="resident IDs shown per list join/leave")] = 5,
           engine: Engine = "duckdb") -> None:
    """The impact of a proposed policy on the current ledger; nothing is applied or stored."""
    credo = service()
    w = credo.whatif(policy_file.read_text(encoding="utf-8"), credo.when(as_of), sample=sample, engine=engine)
    if as_json:
        emit(w)
        return
    n = "{:,}".format
    out.print(f"{w['proposed']['policy']} instead of {w['policy']} at {w['as_of']}: {n(w['residents'])} "
              f"residents, {n(w['residents_changed_grade'])} change grade", markup=False, highlight=False)
    for warning in w["proposed"]["warnings"]:
        out.print(f"warn: {warning}", markup=False)
    after = list(w["grades"]["after"])
    matrix = Table("before \\ after", *after, title="grade transitions")
    for g, row in w["matrix"].items():
        matrix.add_row(g, *[n(row[a]) if row.get(a) else "" for a in after])
    lists = Table("list", "kind", "before", "after", "joined", "left", "e.g. joined", "e.g. left",
                  title="lists in force")
    for name, x in w["lists"].items():
        lists.add_row(name, x["kind"], *[n(x[k]) for k in ("before", "after", "joined", "left")],
                      " ".join(x["sample_joined"][:2]), " ".join(x["sample_left"][:2]))
    measures = Table("action", "denied before", "after", "newly", "no longer", "benefits before->after",
                     title="residents denied")
    for action, x in w["measures"].items():
        benefits = ", ".join(f"{e} {n(b['before'])}->{n(b['after'])}" for e, b in x["benefits"].items())
        measures.add_row(action, *[n(x[k]) for k in ("denied_before", "denied_after", "newly_denied",
                                                      "no_longer_denied")], benefits)
    districts = Table("district", "residents", "change grade", "score up", "score down", "list joins",
                      "list leaves", "denials before", "after", title="by district")
    for code, d in w["by_district"].items():
        lists_, denied = d["lists"].values(), d["denied"].values()
        districts.add_row(code, *[n(d[k]) for k in ("residents", "changed_grade", "score_up", "score_down")],
                          n(sum(x["joined"] for x in lists_)), n(sum(x["left"] for x in lists_)),
                          n(sum(x["before"] for x in denied)), n(sum(x["after"] for x in denied)))
    for table in (matrix, lists, measures, districts):
        out.print(table)


@app.command()
def fairness(as_of: AsOf = None, as_json: JsonOpt = False,
             min_group: Annotated[int, typer.Option(help="smaller groups: shown, not judged")] = 30,
             engine: Engine = "duckdb") -> None:
    """Outcomes by district, sex and age band, flagging groups below four-fifths of the best."""
    credo = service()
    f = credo.fairness(credo.when(as_of), min_group=min_group, engine=engine)
    if as_json:
        emit(f)
        return
    out.print(f"fairness under {f['policy']} at {f['as_of']}: {f['residents']:,} residents; flagged: a rate "
              f"below {f['rule']['threshold']:.0%} of the best group's (groups under {min_group} not judged)",
              markup=False, highlight=False)
    pct = "{:.1%}".format
    for dim, groups in f["dimensions"].items():
        table = Table(dim, "residents", "grades", "black-listed", "denied", "ratio: not listed",
                      "ratio: not denied", "flag", title=f"by {dim.replace('_', ' ')}")
        for g in groups:
            ratios = [g["impact_ratio"].get(o) for o in f["rule"]["outcomes"]]
            table.add_row(g["group"], f"{g['residents']:,}",
                          " ".join(f"{k} {pct(v / g['residents'])}" for k, v in g["grades"].items()),
                          pct(g["black_list_rate"]), pct(g["denial_rate"]),
                          *["-" if r is None else f"{r:.2f}" for r in ratios],
                          "small" if g["small"] else ("FLAG" if g["flagged"] else ""))
        out.print(table)
    for x in f["flags"]:
        drivers = "; ".join(f"{d['type']} {pct(d['group_rate'])} vs {pct(d['best_rate'])}"
                            for d in x["drivers"])
        out.print(f"FLAG {x['dimension']} {x['group']}: {x['outcome']} {pct(x['rate'])} vs "
                  f"{pct(x['best_rate'])} in {x['best_group']} (ratio {x['impact_ratio']:.2f}); "
                  f"driven by: {drivers or '-'}", markup=False, highlight=False)


@app.command("backup")
def backup_cmd(directory: Path) -> None:
    """A consistent snapshot of the database into DIR (Parquet files and a manifest of their digests, signed
    with the signing key when there is one), also while serving: when `credo serve` holds the database, the
    server takes it (CREDO_HOST, CREDO_PORT; CREDO_TOKEN: an operator token)."""
    import duckdb

    try:
        credo = service()
    except duckdb.IOException as exc:
        if "lock" not in str(exc):
            raise
        from credo.api import client

        manifest = client.backup(directory)
    else:
        manifest = credo.backup(directory)
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
    from credo import backup, settings, signing

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
    from credo import settings
    from credo.api.server import run

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

    from credo import settings
    from credo.synth import synth_city

    started = time.perf_counter()
    err.print(f"writing a synthetic city of {residents:,} residents into {city}/", markup=False)
    files = synth_city(residents, city, seed=seed)
    credo = service()
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
if __name__ == "__main__":
    main()
