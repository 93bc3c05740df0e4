"""Settings are typed constants read from ``CREDO_*`` (``credo.settings``): each value parsed once, a
bad one refused by name. The CLI case runs the real ``credo`` script against the tiny city."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from credo import settings
from credo.errors import CredoError
from tests.conftest import NOW, City

CREDO = str(Path(sys.executable).with_name("credo"))


def test_the_defaults_are_typed() -> None:
    s = settings.Settings.from_env({})
    assert (s.db, s.host, s.port, s.workers, s.max_body, s.rate_limit) == (
        Path("credo.duckdb"), "127.0.0.1", 8700, 1, 16 * 1024 * 1024, 2000.0)
    assert (s.now, s.memory_limit, s.threads, s.spark_lake, s.token, s.backup_dir, s.audit_key) == (
        "", None, None, None, None, None, None)


def test_values_are_parsed_and_an_empty_one_is_its_default() -> None:
    s = settings.Settings.from_env({"CREDO_PORT": "9001", "CREDO_THREADS": "3", "CREDO_RATE_LIMIT": "0.5",
                                    "CREDO_BACKUP_DIR": "/srv/b", "CREDO_WORKERS": ""})
    assert (s.port, s.threads, s.rate_limit, s.backup_dir, s.workers) == (9001, 3, 0.5, Path("/srv/b"), 1)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("CREDO_PORT", "abc", "CREDO_PORT=abc: not a port number (1 to 65535)"),
    ("CREDO_PORT", "70000", "CREDO_PORT=70000: not a port number"),
    ("CREDO_WORKERS", "0", "CREDO_WORKERS=0: not a whole number of at least 1"),
    ("CREDO_MAX_BODY", "16MB", "CREDO_MAX_BODY=16MB: not a whole number"),
    ("CREDO_THREADS", "2.5", "CREDO_THREADS=2.5: not a whole number"),
    ("CREDO_RATE_LIMIT", "-1", "CREDO_RATE_LIMIT=-1: not a number of requests per second"),
    ("CREDO_NOW", "yesterday", "CREDO_NOW=yesterday: not an ISO 8601 date or date-time"),
])
def test_a_bad_value_is_refused_by_name(name: str, value: str, says: str) -> None:
    with pytest.raises(CredoError, match="^" + says.replace("(", r"\(").replace(")", r"\)")) as caught:
        settings.Settings.from_env({name: value})
    assert caught.value.code == "bad_setting"


def test_current_is_parsed_once_and_follows_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDO_PORT", "9002")
    first = settings.current()
    assert first.port == 9002 and settings.current() is first  # the same constants while nothing changes
    monkeypatch.setenv("CREDO_PORT", "9003")
    assert settings.current().port == 9003


def test_the_cli_says_a_bad_setting_in_one_line_and_exits_2(city: City) -> None:
    """Before any command runs: `credo serve` does not get as far as starting (it used to end in a
    traceback from int())."""
    for args in (["serve"], ["standing", "x"]):
        done = subprocess.run([CREDO, "--db", str(city.db), *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "CREDO_NOW": NOW, "CREDO_PORT": "abc"})
        assert (done.returncode, done.stderr) == (2, "error: CREDO_PORT=abc: not a port number (1 to 65535)\n")
