"""Misuse of the ``credo`` command line (spec §7): each case is one line on stderr naming the problem,
exit 2, never a traceback, and nothing created on the way.

Every case runs the real ``credo`` script in a subprocess, against a real database file: the tiny
city, a path holding nothing, a file that is no DuckDB database, an empty DuckDB file, or the tiny
city while ``credo serve`` holds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.cityfactory import POLICY
from tests.conftest import NOW, City, build_city, rid, running

CREDO = str(Path(sys.executable).with_name("credo"))

# (case id, where --db points, arguments, what the one line must say)
CASES: list[tuple[str, str, list[str], str]] = [
    *[(f"standing as-of {bad}", "city", ["standing", rid("A"), "--as-of", bad], f"--as-of {bad}: not an ISO 8601")
      for bad in ("2025/01/01", "yesterday", "2025-02-30")],
    ("explain as-of", "city", ["explain", rid("A"), "--as-of", "yesterday"], "--as-of yesterday"),
    ("score as-of", "city", ["score", "--as-of", "2025-02-30"], "day is out of range for month"),
    ("fairness as-of", "city", ["fairness", "--as-of", "2025/01/01"], "--as-of 2025/01/01"),
    ("whatif as-of", "city", ["whatif", "{policy}", "--as-of", "yesterday"], "--as-of yesterday"),
    ("init missing policy", "nothing", ["init", "--policy", "{missing}"], "policy file {missing}: No such file"),
    ("policy check missing", "city", ["policy", "check", "{missing}"], "policy file {missing}: No such file"),
    ("policy apply missing", "city", ["policy", "apply", "{missing}"], "policy file {missing}: No such file"),
    ("whatif missing", "city", ["whatif", "{missing}"], "policy file {missing}: No such file"),
    ("not duckdb: standing", "text", ["standing", rid("A")], "{db} is not a DuckDB database"),
    ("not duckdb: init", "text", ["init"], "{db} is not a DuckDB database"),
    ("empty duckdb", "empty", ["standing", rid("A")], "{db} is a DuckDB file but holds no Credo database"),
    ("no database: standing", "nothing", ["standing", rid("A")], "no Credo database at {db}"),
    ("no database: ingest", "nothing", ["ingest", "--agency", "tax", "{policy}"], "no Credo database at {db}"),
    ("no database: audit export", "nothing", ["audit", "export"], "no Credo database at {db}"),
    ("no database: token", "nothing", ["token", "create", "--role", "operator"], "no Credo database at {db}"),
    ("no database: serve", "nothing", ["serve", "--port", "1"], "no Credo database at {db}"),
    ("held: standing", "held", ["standing", rid("A")], "the database {db} is held by `credo serve` (PID"),
    ("held: score", "held", ["score"], "is held by `credo serve`"),
    ("held: audit export", "held", ["audit", "export"], "is held by `credo serve`"),
    ("held: policy apply", "held", ["policy", "apply", "{policy}"], "is held by `credo serve`"),
    ("held: init", "held", ["init"], "is held by `credo serve`"),
    ("resolve without a verdict", "city", ["objection", "resolve", "1", "--answer", "no"],
     "exactly one of --uphold or --reject"),
    ("resolve with both verdicts", "city", ["objection", "resolve", "1", "--answer", "no", "--uphold", "--reject"],
     "exactly one of --uphold or --reject"),
    ("missing argument", "city", ["standing"], "Missing argument 'resident_id'"),
    ("unknown option", "city", ["score", "--when", "now"], "No such option: --when"),
]


def credo(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CREDO, "--db", str(db), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CREDO_NOW": NOW, **(env or {})})


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Where --db points for each kind of case; 'held' is a city of its own, served meanwhile."""
    root = tmp_path_factory.mktemp("misuse")
    (root / "policy.yaml").write_text(POLICY, encoding="utf-8")
    (root / "notes.duckdb").write_text("not a database\n", encoding="utf-8")
    duckdb.connect(str(root / "empty.duckdb")).close()
    held = build_city(root / "held")
    with running(held):
        yield {"root": root, "city": build_city(root / "city").db, "text": root / "notes.duckdb",
               "empty": root / "empty.duckdb", "nothing": root / "missing" / "deeper" / "city.duckdb",
               "held": held.db}


def files(root: Path) -> list[Path]:
    """What the cases could have made: all but the served city, whose files the server changes."""
    return sorted(p for p in root.rglob("*") if (root / "held") not in p.parents)


@pytest.mark.parametrize(("where", "args", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_misuse_is_one_line_and_exit_2(places: dict[str, Path], where: str, args: list[str], says: str) -> None:
    db, root = places[where], places["root"]
    names = {"db": str(db), "policy": str(root / "policy.yaml"), "missing": str(root / "nope.yaml")}
    before = files(root)
    done = credo(db, *[a.format(**names) for a in args])
    assert "Traceback" not in done.stderr + done.stdout
    assert (done.returncode, done.stderr.count("\n")) == (2, 1), done.stderr
    assert done.stderr.startswith("error: ")
    assert says.format(**names) in done.stderr
    assert files(root) == before  # nothing made, not even the missing folders


def test_init_refusing_a_policy_leaves_no_file(tmp_path: Path) -> None:
    """A refused policy makes no database, no draft and no WAL; the same path then initialises."""
    db, bad = tmp_path / "city.duckdb", tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("base_score: 1000", "base_score: lots"), encoding="utf-8")
    refused = credo(db, "init", "--policy", str(bad))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
    assert credo(db, "standing", rid("A")).returncode == 2  # still no database there
    good = tmp_path / "good.yaml"
    good.write_text(POLICY, encoding="utf-8")
    made = credo(db, "init", "--policy", str(good))
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "city.duckdb", "good.yaml"]
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    again = credo(db, "init", "--policy", str(good))
    assert (again.returncode, again.stderr) == (2, "error: the database already has a policy: use `credo policy "
                                                   "apply`\n")
    assert "under tiny-1@1" in credo(db, "score").stdout


@pytest.mark.parametrize(("flag", "status"), [("--uphold", "upheld"), ("--reject", "rejected")])
def test_resolve_takes_the_verdict_given(city: City, flag: str, status: str) -> None:
    opened = credo(city.db, "objection", "open", rid("E"), "tax:x3", "--reason", "paid in June")
    assert opened.returncode == 0, opened.stderr
    number = opened.stdout.split()[1]
    for wrong in ([], ["--uphold", "--reject"]):
        assert credo(city.db, "objection", "resolve", number, "--answer", "checked", *wrong).returncode == 2
    assert '"status": "open"' in credo(city.db, "objection", "list", "--json").stdout  # neither resolved it
    done = credo(city.db, "objection", "resolve", number, "--answer", "checked", flag)
    assert (done.returncode, done.stdout.strip()) == (0, f"objection {number} {status}"), done.stderr
    assert f'"status": "{status}"' in credo(city.db, "objection", "list", "--json").stdout
