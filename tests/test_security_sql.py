"""SQL is built only with bound parameters: an AST scan of every module under src/credo.

Every ``.execute(`` / ``.executemany(`` / ``.sql(`` call must get as its SQL one of:

* a string literal;
* a statement from the package's ``.sql`` files: ``q(...)`` (``to_spark(x)`` of
  such a text is its translation);
* an f-string whose every interpolation is one of the above or a name in ``ALLOWED`` below: internal
  identifiers (table, view, column and step names from code constants) and variables holding SQL text
  from the ``.sql`` files, each allowed in one module only and with the reason written beside it;
* such an allowed name on its own.

Besides, no SQL-looking text anywhere in the package may be built with ``%``, ``.format(`` or ``+``
from anything but literals, and every SQL-looking f-string follows the rule above. Values (ids,
times, paths, user text) therefore always travel as bound parameters or as registered tables; a
violation fails naming file:line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import credo

SRC = Path(credo.__file__).parent
SQL_SOURCES = {"q"}
"""Functions returning SQL text read from ``src/credo/sql/*.sql`` (by name; never built from values)."""
TRANSLATORS = {"to_spark"}
"""Functions turning SQL text into other SQL text (safe when their argument is)."""
SQL_LIKE = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|FROM|WHERE|SET|COPY|EXPORT|IMPORT|"
                      r"ATTACH|PRAGMA|CASE|WHEN|VALUES|JOIN|ORDER BY)\b")

ALLOWED: dict[str, dict[str, str]] = {
    "audit.py": {
        "COLUMN_LIST": "the audit table's columns, joined from the constant COLUMNS",
    },
    "backup.py": {
        "table": "a table name from the store's catalogue (information_schema), an identifier",
    },
    "engines/base.py": {
        "output": "an output view of the pipeline (scored, hits, explained), from code",
        "order": "an ORDER BY clause given as a literal by credo.scoring",
    },
    "engines/duckdb.py": {
        "DUCKDB_MACROS": "a module constant: the ADD_DURATION macro's SQL",
        "name": "a pipeline step's name: a key of statements('score'), an input or a governance step",
        "kept": "the kept table of a pipeline step (_kept(name))",
        "sql": "a step's SQL text from the .sql files (statements / q), passed by credo.engines.base",
        "target": "gov_NAME: the temporary table of a governance capture, NAME from code",
    },
    "engines/spark.py": {
        "name": "a pipeline step's name: a key of statements('score'), an input or a governance step",
        "sql": "a step's SQL text from the .sql files, translated, passed by credo.engines.base",
        "output": "an output view of the pipeline (scored, hits), from credo.scoring.OUTPUTS",
    },
    "index.py": {
        "where": "'r.resident IN (SELECT resident FROM scope_in) AND' or '' (scope as a registered table)",
        "HIT_COLUMNS": "the standing_hits columns of Hit's fields, a constant",
    },
    "ingest/verdicts.py": {
        "statement": "one statement of a named script, q(ref).split(';')",
    },
    "ingest/rejects.py": {
        "sql": "q('ingest.rejects_append') with $row_text/$got replaced by SQL over the feed's fixed columns",
        "c": "a column of the feed's fixed column set (checked against the header), never data",
        "pairs": "json_object arguments over the feed's fixed columns",
        "whens": "CASE branches over the feed's fixed columns",
    },
    "ledger.py": {
        "where": "' AND l.agency = ?' or '' (the agency is a bound parameter)",
    },
    "notices.py": {
        "statement": "one statement of a named script, q(ref).split(';')",
    },
    "providerfeed.py": {
        "statement": "one statement of a named script, q(ref).split(';')",
    },
    "matching.py": {
        "sql": "a statement q(...) of review.sql, passed by the module's own callers of _arrow",
    },
    "scoring.py": {
        "output": "an output of the pipeline (OUTPUTS keys), from code",
    },
    "store.py": {
        "MIGRATIONS": "the numbered schema migrations, module constants",
        "table": "a table name given by code (asserted to be an identifier)",
        "column": "a column name given by code (asserted to be an identifier)",
    },
}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        yield rel, ast.parse(path.read_text(encoding="utf-8"), rel)


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def safe(node: ast.expr, allowed: dict[str, str]) -> bool:
    """Is this expression SQL text made only of literals, .sql-file statements and allowed names?"""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Name):
        return node.id in allowed
    if isinstance(node, ast.Subscript):
        return isinstance(node.value, ast.Name) and node.value.id in allowed
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if isinstance(node.func, ast.Name) and name in SQL_SOURCES:
            return True
        if isinstance(node.func, ast.Name) and name in TRANSLATORS:
            return len(node.args) == 1 and safe(node.args[0], allowed)
        return False
    if isinstance(node, ast.JoinedStr):
        return all(safe(v.value, allowed) for v in node.values if isinstance(v, ast.FormattedValue))
    return False


def _sql_like(node: ast.expr) -> bool:
    texts = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return any(SQL_LIKE.search(t) for t in texts)


def _literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) or (isinstance(node, ast.BinOp) and _literal(node.left)
                                               and _literal(node.right))


def offenders() -> list[str]:
    found = []
    for rel, tree in modules():
        allowed = ALLOWED.get(rel, {})
        for node in ast.walk(tree):
            where = f"src/credo/{rel}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("execute", "executemany", "sql"):
                sql = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "query"), None)
                if sql is not None and not safe(sql, allowed):
                    found.append(f"{where}: .{node.func.attr}() of SQL not from literals, .sql files or allowed "
                                 f"identifiers: {ast.unparse(sql)[:120]}")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add) and _sql_like(node) \
                    and not _literal(node):
                found.append(f"{where}: SQL built with {'%' if isinstance(node.op, ast.Mod) else '+'}: "
                             f"{ast.unparse(node)[:120]}")
            elif isinstance(node, ast.Call) and _call_name(node) == "format" \
                    and isinstance(node.func, ast.Attribute) and _sql_like(node.func.value):
                found.append(f"{where}: SQL built with .format(): {ast.unparse(node)[:120]}")
            elif isinstance(node, ast.JoinedStr) and _sql_like(node) and not safe(node, allowed):
                found.append(f"{where}: an SQL f-string interpolating more than allowed identifiers: "
                             f"{ast.unparse(node)[:120]}")
    return found


def test_sql_is_built_only_with_bound_parameters() -> None:
    bad = offenders()
    assert not bad, "SQL built from values (bind them as parameters instead):\n" + "\n".join(bad)


def test_the_allowlist_names_real_modules() -> None:
    names = {rel for rel, _ in modules()}
    assert set(ALLOWED) <= names, set(ALLOWED) - names


def test_the_scan_catches_what_it_should() -> None:
    """The checker itself: each way of splicing a value is caught; each allowed form passes."""
    bad = ['con.execute(f"SELECT * FROM t WHERE id = {value}")', 'con.execute("SELECT %s" % value)',
           'con.execute("SELECT * FROM t WHERE a = " + value)', 'con.sql("SELECT {}".format(value))',
           'con.execute(text)', 'con.execute(f"SELECT {q(x)} {value}")', 'x = "DELETE FROM t WHERE a = " + v']
    good = ['con.execute("SELECT * FROM t WHERE id = ?", [value])', 'con.execute(q("inputs.ledger_all"))',
            'con.execute(f"CREATE VIEW {name} AS {sql}")', 'con.execute(f"{q(ref)} LIMIT ?", [n])']
    allowed = {"name": "test", "sql": "test"}

    def flagged(code: str) -> bool:
        node = ast.parse(code).body[0]
        value = node.value if isinstance(node, ast.Expr | ast.Assign) else None
        assert value is not None
        if isinstance(value, ast.Call) and _call_name(value) in ("execute", "sql"):
            return not safe(value.args[0], allowed) or any(
                isinstance(n, ast.BinOp) and _sql_like(n) and not _literal(n) for n in ast.walk(value))
        return isinstance(value, ast.BinOp) and _sql_like(value) and not _literal(value)

    assert [c for c in bad if not flagged(c)] == []
    assert [c for c in good if flagged(c)] == []
