"""The ``credo`` command line (spec §7): parse, call ``credo.service``, render.

Exit codes: 0 done; 1 done with a refusal (rejected rows, a refused policy,
a broken audit chain); 2 nothing could be done (unreadable input, bad usage,
an error). Errors go to stderr; ``--json`` output goes to stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

try:  # typer 0.29 carries its own copy of click, whose exceptions are not click's
    from typer._click import exceptions as click_errors
except ImportError:
    from click import exceptions as click_errors  # type: ignore[no-redef]

from credo import settings
from credo.cli import audit, feed, governance, objections, operations, policy, records, residents, review, tokens
from credo.cli.common import close_services, err
from credo.errors import CredoError, UnreadableFeed
from credo.ids import IdError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)
app.add_typer(policy.app, name="policy")
app.add_typer(objections.app, name="objection")
app.add_typer(review.app, name="review")
app.add_typer(audit.app, name="audit")
app.add_typer(tokens.app, name="token")
app.add_typer(feed.app, name="feed")
COMMANDS: list[tuple[str, Callable[..., None]]] = [
    ("init", operations.init), ("synth", operations.synth), ("ingest", records.ingest_cmd),
    ("rejects", records.rejects), ("score", operations.score), ("standing", residents.standing_cmd),
    ("explain", residents.explain_cmd), ("check", residents.check_cmd), ("revoke", records.revoke),
    ("redress", records.redress_cmd),
    ("whatif", governance.whatif), ("fairness", governance.fairness), ("backup", operations.backup_cmd),
    ("restore", operations.restore_cmd), ("serve", operations.serve), ("demo", operations.demo)]
"""The top-level commands, in the order `credo --help` lists them; each lives in the module of its theme."""
for name, command in COMMANDS:
    app.command(name)(command)


@app.callback()
def _global(ctx: typer.Context,
            db: Annotated[Path | None, typer.Option("--db", envvar="CREDO_DB", help="database file")] = None) -> None:
    if db is not None:
        os.environ["CREDO_DB"] = str(db)
    settings.current()  # a bad CREDO_* value is said now, before the command does anything
    ctx.call_on_close(close_services)


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

