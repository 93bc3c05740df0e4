"""The decision index is one immutable snapshot: an answer never mixes two policies.

Decisions are made from several threads, through the check route's own code
(``checks.judge``) and through a manifest's read path, while a new policy is
applied whose measures turn most outcomes round. Every answer must be wholly the
old policy's (its label and that policy's own outcome for the resident) or
wholly the new one's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from credo import ids, index
from credo.api.routes import checks
from credo.ids import parse_resident_id
from credo.principals import OPERATOR_CLI
from credo.service import Credo
from credo.serving.core import Core
from credo.serving.runtime import Runtime
from tests.conftest import PEOPLE, POLICY, City, rid

ACTION = "rail.high_speed.book"
OLD, NEW = "tiny-1@1", "tiny-2@2"
# The new policy lets the listed through and stops grade A (C and J, who have no records).
TURNED = POLICY.replace("policy: tiny-1", "policy: tiny-2").replace(
    "- {list: tax_defaulter, action: rail.high_speed.book, effect: deny}",
    "- {grades: [A], action: rail.high_speed.book, effect: deny}")


@pytest.fixture
def rt(city: City) -> Iterator[Runtime]:
    runtime = Runtime(Core(city.db))
    yield runtime
    runtime.close()


def store_outcomes(rt: Runtime) -> dict[str, str]:
    """Each resident's outcome as the store decides it under the policy in force (no index)."""
    return {letter: rt.hub.service(Credo.check, parse_resident_id(rid(letter)), ACTION, OPERATOR_CLI, "test").decision
            for letter in PEOPLE}


def singles(rt: Runtime, stop: threading.Event, seen: list[tuple[str, str, str]]) -> None:
    async def run() -> None:
        while not stop.is_set():
            for letter in PEOPLE:
                _, _, d, _ = await checks.judge(rt, OPERATOR_CLI, rid(letter), ACTION, "test")
                seen.append((letter, d.policy, d.decision))

    asyncio.run(run())


def manifests(rt: Runtime, stop: threading.Event, seen: list[tuple[str, str, str]]) -> None:
    letters = list(PEOPLE)
    keys = np.array([ids.resident_key(rid(p)) for p in letters], np.int64)
    while not stop.is_set():
        if rt.behind():
            rt.sync()
        idx = rt.index
        made = idx.decide_many(keys, ACTION, idx.now())
        seen.extend((p, idx.policy.label, verdict) for p, (_, verdict, _, _) in zip(letters, made, strict=True))


def test_every_answer_is_wholly_one_policys_while_a_policy_is_applied(rt: Runtime) -> None:
    expected = {OLD: store_outcomes(rt)}
    stop = threading.Event()
    seen: list[list[tuple[str, str, str]]] = [[] for _ in range(4)]
    workers = [threading.Thread(target=fn, args=(rt, stop, out))
               for fn, out in zip((singles, singles, manifests, manifests), seen, strict=True)]
    for w in workers:
        w.start()
    try:
        while sum(map(len, seen)) < 2000:
            stop.wait(0.01)
        rt.hub.apply_policy(TURNED, OPERATOR_CLI)
        rt.sync()
        counted = sum(map(len, seen))
        while sum(map(len, seen)) < counted + 2000:
            stop.wait(0.01)
    finally:
        stop.set()
        for w in workers:
            w.join()
    expected[NEW] = store_outcomes(rt)
    assert rt.index.policy.label == NEW
    differ = {p for p in PEOPLE if expected[OLD][p] != expected[NEW][p]}
    assert differ >= {"A", "C", "E", "J"}  # the new policy does turn outcomes round
    answers = [a for out in seen for a in out]
    labels = {label for _, label, _ in answers}
    assert labels == {OLD, NEW}  # answers came from both sides of the swap
    mixed = [(p, label, got) for p, label, got in answers if got != expected[label][p]]
    assert mixed == []


@pytest.mark.parametrize("compact_at", [0, index.COMPACT_AT])
def test_a_write_makes_a_new_snapshot_and_leaves_the_old_one_as_it_was(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch, compact_at: int) -> None:
    monkeypatch.setattr(index, "COMPACT_AT", compact_at)  # 0: every apply folds into new arrays
    key = ids.resident_key(rid("C"))
    old = rt.index
    row = {"record_id": "n1", "type": "tax.arrears", "subject": rid("C"), "occurred_at": "2024-08-01"}
    rt.hub.ingest_rows("tax", [row], OPERATOR_CLI, "test")
    rt.sync()
    new = rt.index
    assert new is not old and new.generation > old.generation
    assert old.decide(key, ACTION, old.now()).decision == "allow"
    assert new.decide(key, ACTION, new.now()).decision == "deny"
    assert (old.measured, new.measured) == (len(PEOPLE) - 2, len(PEOPLE) - 1)
    assert list(new.positions(np.array([key]))[1]) != list(old.positions(np.array([key]))[1])
