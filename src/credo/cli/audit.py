"""``credo audit``: verify the tamper-evident log against its checkpoints and receipts, make the key
that signs it, and export it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from credo.audit import Verdict
from credo.cli.common import JsonOpt, emit, err, out, service
from credo.errors import CredoError
from credo.ids import named_by_id

app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")


@app.command("verify")
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


@app.command("replay")
def audit_replay(decision_id: str, as_json: JsonOpt = False) -> None:
    """Recompute a logged decision at T = K = its time and compare it with the log: outcome, benefits,
    reason codes and records (exit 0 the same, 1 different, printing the difference)."""
    r = service().replay(decision_id)
    if as_json:
        emit(r)
        raise typer.Exit(0 if r["same"] else 1)
    head = f"decision {r['decision_id']} ({r['resident_id']} {r['action']}, at {r['at']})"
    if r["same"]:
        codes = ", ".join(r["logged"]["codes"]) or "no reasons"
        out.print(f"{head} replays the same: {r['logged']['decision']}, {codes}", markup=False)
        return
    err.print(f"{head} replays DIFFERENTLY:", markup=False)
    for d in r["differences"]:
        err.print(f"  {d['field']}: logged {d['logged']}, replayed {d['replayed']}", markup=False)
    raise typer.Exit(1)


@app.command("key")
def audit_key() -> None:
    """Make the Ed25519 key that signs checkpoints and backups; print its public half for the auditor."""
    from credo import settings, signing

    path = signing.key_path(settings.db_path())
    public = signing.make_key(path)
    out.print(public, markup=False)
    err.print(f"private key written to {path} (mode 0600; keep it apart from the database and its backups); "
              f"public key in {signing.public_path(path)}: give it to the auditor", markup=False)


@app.command("export")
def audit_export(output: Annotated[Path | None, typer.Option("--out")] = None) -> None:
    """Write the log out as JSON Lines (stdout by default), streamed: memory stays bounded at any size."""
    credo = service()
    try:
        with output.open("wb") if output else open(sys.stdout.fileno(), "wb", closefd=False) as sink:
            for entry in credo.export_audit():
                sink.write(orjson.dumps(named_by_id(entry), default=str) + b"\n")
    finally:
        credo.close()

