"""``credo policy``: lint, apply and describe policy files."""

from __future__ import annotations

from pathlib import Path

import typer

from credo import policy as policies
from credo.cli.common import emit, err, out, read_text, service

app = typer.Typer(no_args_is_help=True, help="Check, apply and describe policies.")


@app.command("check")
def policy_check(file: Path) -> None:
    """Lint a policy: exit 0 when clean or with warnings only, 1 when refused."""
    _, problems = policies.check_text(read_text(file, "policy file"))
    for p in problems:
        (err if p.severity == "refuse" else out).print(f"{p.severity}: {p}", markup=False, highlight=False)
    refused = [p for p in problems if p.severity == "refuse"]
    out.print(f"{file}: {'refused' if refused else 'ok'} ({len(refused)} refusal(s), "
              f"{len(problems) - len(refused)} warning(s))", markup=False, highlight=False)
    raise typer.Exit(1 if refused else 0)


@app.command("apply")
def policy_apply(file: Path) -> None:
    """Lint then apply a policy as a new version, rescoring everyone."""
    text = read_text(file, "policy file")
    applied = service().apply_policy(text)
    for w in applied.warnings:
        out.print(f"warn: {w}", markup=False)
    out.print(f"applied {applied.label}", markup=False)


@app.command("schema")
def policy_schema() -> None:
    """The policy file's JSON Schema, for editors."""
    emit(policies.schema())

