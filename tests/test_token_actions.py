"""A provider token bound to actions (spec §7 ``--actions``): the only actions it may ask about.

Over a real ``credo serve``: a token made by the CLI with ``--actions rail.high_speed.book`` gets
its decisions on that action and a 403 on any other, single or batch, even one the policy does not
name (the token decides before the action is looked up); a token made without ``--actions`` asks
about every action, as before; one made through ``POST /v1/tokens`` with actions is bound the same.
Tokens list their actions; the CLI refuses ``--actions`` on another role and actions the policy does
not name, one line and exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import City, rid, running

CREDO = str(Path(sys.executable).with_name("credo"))
RAIL, ADMIN = "rail.high_speed.book", "admin.approval"
WHY = {"purpose": "scope test"}


def cli(city: City, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CREDO, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **city.env()})


def check(client: httpx.Client, action: str, who: str = "A") -> httpx.Response:
    return client.get("/v1/check", params={"resident_id": rid(who), "action": action, **WHY})


def test_a_provider_token_asks_only_about_its_actions(city: City) -> None:
    made = cli(city, "token", "create", "--role", "provider", "--provider", "rail", "--actions", RAIL)
    assert made.returncode == 0, made.stderr
    assert f"actions {RAIL}" in made.stderr
    rail = made.stdout.strip()
    with running(city) as live, live.client(token=rail) as client, live.client("provider") as everything:
        assert check(client, RAIL).json()["decision"] == "deny"
        refused = check(client, ADMIN)
        assert refused.status_code == 403
        assert refused.json()["error"]["details"]["actions"] == [RAIL]
        assert check(client, "no.such.action").status_code == 403
        assert client.post("/v1/check", json={"resident_id": rid("A"), "action": ADMIN, **WHY}).status_code == 403
        batch = {"action": ADMIN, "resident_ids": [rid("A"), rid("B")], **WHY}
        assert client.post("/v1/check/batch", json=batch).status_code == 403
        assert client.post("/v1/check/batch", json={**batch, "action": RAIL}).json()["denied"] == 1
        assert check(everything, ADMIN).status_code == 200  # no --actions: every action, as before
        assert check(everything, "no.such.action").status_code == 404
        with live.client("operator") as operator:
            posted = operator.post("/v1/tokens", json={"role": "provider", "provider": "gov", "actions": [ADMIN]})
            assert posted.status_code == 201, posted.text
            listed = {t["principal"]: t["actions"] for t in operator.get("/v1/tokens").json()["tokens"]}
        assert listed["provider:rail"] == [RAIL] and listed["provider:gov"] == [ADMIN]
        assert listed["provider:air"] is None
        with live.client(token=posted.json()["token"]) as gov:
            assert check(gov, ADMIN, "B").json()["benefits"] == ["green_channel"]
            assert check(gov, RAIL).status_code == 403


def test_actions_belong_to_providers_and_to_the_policy(city: City) -> None:
    for args, says in [(("--role", "agency", "--agency", "tax", "--actions", RAIL), "takes no --actions"),
                       (("--role", "provider", "--provider", "x", "--actions", "fly.to.moon"), "fly.to.moon"),
                       (("--role", "provider", "--provider", "x", "--actions", ","), "names no action")]:
        done = cli(city, "token", "create", *args)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
