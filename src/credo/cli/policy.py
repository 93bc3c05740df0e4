"""``credo policy``: lint, apply and describe policy files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credo import jurisdictions
from credo import policy as policies
from credo.cli.common import JsonOpt, emit, err, out, read_text, service
from credo.policydoc import Problem

app = typer.Typer(no_args_is_help=True, help="Check, apply and describe policies.")


@app.command("check")
def policy_check(files: Annotated[list[Path], typer.Argument(help="one policy, or several to be in force together")]
                 ) -> None:
    """Lint policies, each alone and (several given) together as jurisdictions of one deployment
    (spec §9): exit 0 when clean or with warnings only, 1 when any is refused."""
    refused_any = False
    loaded: list[tuple[str, policies.Policy]] = []
    for file in files:
        policy, problems = policies.check_text(read_text(file, "policy file"))
        refused = _report(problems)
        if policy is not None and not refused:
            loaded.append((str(file), policy))
        out.print(f"{file}: {'refused' if refused else 'ok'} ({refused} refusal(s), "
                  f"{len(problems) - refused} warning(s))", markup=False, highlight=False)
        refused_any = refused_any or bool(refused)
    if len(files) > 1:
        together = _report(jurisdictions.check_together(loaded))
        out.print(f"together: {'refused' if together else 'ok'} ({together} refusal(s))", markup=False,
                  highlight=False)
        refused_any = refused_any or bool(together)
    raise typer.Exit(1 if refused_any else 0)


def _report(problems: list[Problem]) -> int:
    """Print each problem (refusals to stderr); how many were refusals."""
    for p in problems:
        (err if p.severity == "refuse" else out).print(f"{p.severity}: {p}", markup=False, highlight=False)
    return sum(p.severity == "refuse" for p in problems)


@app.command("apply")
def policy_apply(file: Path) -> None:
    """Lint then apply a policy as a new version of its own jurisdiction (the others stay in force),
    checked beside the policies in force, rescoring everyone."""
    text = read_text(file, "policy file")
    applied = service().apply_policy(text)
    for w in applied.warnings:
        out.print(f"warn: {w}", markup=False)
    out.print(f"applied {applied.label}", markup=False)


@app.command("list")
def policy_list(as_json: JsonOpt = False) -> None:
    """The jurisdictions in force, each with its policy and every version it had."""
    listed = service().policy_list()
    if as_json:
        emit(listed)
        return
    for j in listed:
        regions = ", ".join(j["regions"]) if j["regions"] else "everyone"
        out.print(f"{j['jurisdiction']} ({regions}): {j['policy']}", markup=False, highlight=False)
        for v in j["versions"]:
            mark = "*" if v["in_force"] else " "
            out.print(f"  {mark} {v['policy']}  {v['applied_at']}  {v['applied_by']}  {v['sha256'][:12]}",
                      markup=False, highlight=False)


@app.command("schema")
def policy_schema() -> None:
    """The policy file's JSON Schema, for editors."""
    emit(policies.schema())

