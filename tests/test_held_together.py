"""Places that compute the same thing twice, held to each other so that they cannot drift apart.

* The governance reports decide in SQL (``governance.sql``: ``denials`` and the benefits of
  ``whatif_benefits``) what ``decisions.decide`` decides in Python for one resident: on random
  cities, at random times, both must give every resident the same outcome for every action.
* The statuses a record can have in ``score.sql``'s ``state`` step are exactly the reasons the
  explanation knows how to say (``standing.WHY``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from credo import decisions, governance, scoring, standing
from credo import policy as policies
from credo.engines.duckdb import DuckDBGovernance
from credo.sql import statements
from credo.store import connect
from tests.reference import City
from tests.scoring_city import POLICY, cases, write

_DOC = yaml.safe_load(POLICY)
_DOC["policy"] = "held-1"
_DOC["actions"] = {"x.do": "Do a thing", "y.go": "Go somewhere", "z.ask": "Ask for something"}
_DOC["lists"]["black1"]["restricts"] = ["x.*", "z.*"]
_DOC["lists"]["black2"]["restricts"] = ["y.*"]
_DOC["measures"] = [
    {"list": "black1", "action": "x.do", "effect": "deny"},
    {"list": "black2", "action": "y.go", "effect": "deny"},
    {"grades": ["B", "D"], "action": "y.go", "effect": "deny"},
    {"list": "red1", "action": "y.go", "effect": "fast_track"},
    {"grades": ["AAA", "A"], "action": "z.ask", "effect": "green_channel"},
    {"list": "red2", "action": "z.ask", "effect": "deposit_waiver"},
    {"list": "black1", "action": "z.ask", "effect": "deny"},
]
POLICY_MEASURED = policies.load(yaml.safe_dump(_DOC, sort_keys=False))
"""The scoring test policy with measures of every kind: deny by list and by grade, benefits by list
and by grade, and an action where a deny and benefits meet."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(tmp_path_factory.mktemp("held") / "credo.duckdb")
    yield con
    con.close()


def _sql_outcomes(con: duckdb.DuckDBPyConnection, t: datetime) -> dict[tuple[int, str], tuple[str, tuple[str, ...]]]:
    """(resident, action) -> (decision, benefits) as the governance SQL sees them."""
    with governance._session(con) as cur:
        seam = DuckDBGovernance(cur, governance.Params().table())
        seam.capture(governance.policy_tables(POLICY_MEASURED), t, 0, governance.WHATIF_CAPTURES)
        seam.steps(["denials"])
        denied = {(r, a) for r, a in cur.execute("SELECT resident, action FROM denials WHERE side = 0").fetchall()}
        granted = cur.execute(
            "SELECT h.resident, m.action, m.effect FROM gov_held h JOIN gov_measures m ON m.list = h.list "
            "WHERE m.effect <> 'deny' UNION SELECT s.resident, m.action, m.effect FROM gov_standings s "
            "JOIN gov_measures m ON m.grade = s.grade WHERE m.effect <> 'deny'").fetchall()
        residents = [r for (r,) in cur.execute("SELECT resident FROM gov_standings WHERE side = 0").fetchall()]
    benefits: dict[tuple[int, str], set[str]] = {}
    for resident, action, effect in granted:
        benefits.setdefault((resident, action), set()).add(effect)
    return {(r, a): ("deny", ()) if (r, a) in denied else ("allow", tuple(sorted(benefits.get((r, a), set()))))
            for r in residents for a in POLICY_MEASURED.doc.actions}


def _python_outcomes(con: duckdb.DuckDBPyConnection, city: City, t: datetime
                     ) -> dict[tuple[int, str], tuple[str, tuple[str, ...]]]:
    out = scoring.compute(con, POLICY_MEASURED, t, city.residents)
    found = {}
    for resident in city.residents:
        s = standing.from_tables(out, resident, t, POLICY_MEASURED)
        for action in POLICY_MEASURED.doc.actions:
            d = decisions.decide(POLICY_MEASURED, s, action, t)
            found[(resident, action)] = (d.decision, tuple(d.benefits))
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_the_reports_decide_as_decisions_decide(store: duckdb.DuckDBPyConnection, case: tuple[City, datetime]) -> None:
    city, t = case
    write(store, city)
    assert _sql_outcomes(store, t) == _python_outcomes(store, city, t)


def test_the_record_statuses_are_the_reasons_the_explanation_knows() -> None:
    state = statements("score")["state"]
    statuses = set(re.findall(r"(?:THEN|ELSE) '([a-z_]+)'", state.split(" AS status")[0]))
    assert statuses == set(standing.WHY)
