"""A policy weighed before it is applied: ``credo whatif`` and ``credo fairness`` (the reports are
drawn by ``credo.cli.output``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from credo.cli import output
from credo.cli.common import AsOf, Engine, JsonOpt, as_of_time, emit, out, read_text, service


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
