"""Running a city: ``credo init``, ``synth``, ``score``, ``backup``, ``restore``, ``serve`` and ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credo import policy as policies
from credo import settings
from credo.cli.common import AsOf, Engine, as_of_time, err, out, read_text, service
from credo.errors import CredoError
from credo.service import Credo
from credo.serving.client import here_or_served
from credo.store import creating

PolicyFiles = Annotated[list[Path] | None, typer.Option(
    "--policy", help="policy file, once per jurisdiction (default: shipped beijing)")]


def init(policy: PolicyFiles = None) -> None:
    """Create the database with one policy per jurisdiction: whole, or (a policy refused) not at all."""
    texts = [read_text(file, "policy file") for file in policy or [policies.shipped("beijing")]]
    path = settings.db_path()
    if path.exists():  # a Credo database without a policy yet (made by the library) takes one
        credo = service()
        if credo.initialised():
            raise CredoError("the database already has a policy: use `credo policy apply`",
                             code="already_initialised")
        applied = credo.apply_policies(texts)
    else:
        with creating(path) as draft:
            credo = Credo.open(draft)
            try:
                applied = credo.apply_policies(texts)
                credo.con.execute("CHECKPOINT")
            finally:
                credo.close()
    out.print(f"initialised {path} with policy {', '.join(p.label for p in applied)}", markup=False)


def synth(residents: Annotated[int, typer.Option()], out_dir: Annotated[Path, typer.Option("--out")],
          seed: int = 1, years: int = 5, dirty: float = 0.0,
          identity_share: Annotated[float, typer.Option(
              help="share of residents also named by a 15-digit ID or a description (docs/identity.md)")] = 0.0,
          ) -> None:
    """Write a synthetic city: one feed file per agency."""
    from credo.synth import synth_city

    summary = synth_city(residents, out_dir, seed=seed, years=years, dirty=dirty, identity=identity_share)
    for agency, info in summary.items():
        out.print(f"{agency:20} {info['rows']:>12,} rows  {info['file']}", markup=False)



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
    labels = ", ".join(p.label for p in credo.in_force)
    out.print(f"scored {n:,} residents at {when.isoformat()} under {labels} ({engine})", markup=False)



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


def serve(host: Annotated[str | None, typer.Option(help="address (default CREDO_HOST)")] = None,
          port: Annotated[int | None, typer.Option(help="port (default CREDO_PORT)")] = None,
          workers: Annotated[int | None, typer.Option(help="worker processes (default CREDO_WORKERS)")] = None
          ) -> None:
    """The HTTP API under /v1 (OpenAPI at /docs), holding the database until interrupted."""
    from credo.serving.server import run

    service().close()  # a missing, foreign or held database is said here, before the workers start
    configured = settings.current()
    host, port, workers = host or configured.host, port or configured.port, workers or configured.workers
    err.print(f"serving http://{host}:{port}/v1 with {workers} worker(s); OpenAPI at /docs", markup=False)
    run(host, port, workers)


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
    configured = settings.current()
    host, port = host or configured.host, port or configured.port
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

