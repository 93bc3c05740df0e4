"""All of Credo's SQL, in named statements, read from the ``.sql`` files beside this module.

A file holds statements each headed by ``-- name: NAME``; ``statements("score")``
returns them in order. Scoring is written once, in DuckDB's dialect, and
translated for Spark by ``credo.engines.dialect``; values always travel as
bound parameters or as tables, never spliced into the text.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_HEAD = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@cache
def statements(module: str) -> dict[str, str]:
    """Named statements of ``<module>.sql``, in file order."""
    text = (resources.files("credo.sql") / f"{module}.sql").read_text(encoding="utf-8")
    parts = _HEAD.split(text)
    return {name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def q(ref: str) -> str:
    """One statement by ``module.name``."""
    module, name = ref.split(".", 1)
    return statements(module)[name]
