"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis), as every role and as nobody.

A live ``credo serve`` on the tiny city publishes ``/openapi.json``; for every operation in it,
schemathesis generates requests that fit the schema (positive) and requests that break it (negative:
wrong types, missing fields, bodies that are not JSON), sends each with a role's token, and checks the
answer: never a 5xx, and the status, content type, headers and body all as the schema documents them
(every error status an operation can answer is documented, with the one error shape).

Bounded by default (a few examples per operation, role and mode: about a minute); CREDO_LONG=1 runs
many more. A failure names the operation, the role and a curl line that reproduces it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ROLES, Live, build_city, running

LONG = os.environ.get("CREDO_LONG") == "1"
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 100 if LONG else 10,
            schemathesis.GenerationMode.NEGATIVE: 60 if LONG else 5}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
CALLERS = (*ROLES, "no token")
CASES: dict[str, int] = {}
"""Requests sent per caller, for the closing figure (docs/reliability.md)."""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with running(build_city(tmp_path_factory.mktemp("fuzz"))) as server:
        yield server


@pytest.fixture(scope="module")
def schema(live: Live) -> Any:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


@pytest.mark.parametrize("caller", CALLERS)
def test_every_operation_answers_as_documented(live: Live, schema: Any, caller: str) -> None:
    headers = {"Authorization": f"Bearer {live.city.tokens[caller]}"} if caller in live.city.tokens else {}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the schema lost its operations"
    sent = sum(fuzz(live.url, operation, mode, examples, headers, failures)
               for operation in operations for mode, examples in EXAMPLES.items())
    CASES[caller] = sent
    print(f"\n{caller}: {sent} requests over {len(operations)} operations; {len(failures)} failing")
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def fuzz(url: str, operation: Any, mode: schemathesis.GenerationMode, examples: int, headers: dict[str, str],
         failures: dict[str, str]) -> int:
    """Up to ``examples`` generated requests to one operation; the first failure of each is kept."""
    sent = 0

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        try:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=30)
        except BaseException as exc:  # schemathesis raises a group of failures: keep it, go on fuzzing
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.setdefault(f"{operation.label} ({mode.value})", str(exc)[:1500])

    with contextlib.suppress(Unsatisfiable):  # nothing to break: GET /healthz takes no input
        run()
    return sent
