"""The policy document's schema: typed models of the YAML file, and the problems a check finds.

Kept apart from the checks (``credo.lint``) and from the compiled policy (``credo.policy``) so that
each can import it without importing the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from credo.times import DEFAULT_TZ

CODE = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
NAME = r"^[a-z][a-z0-9-]*$"

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DurationText = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,4}[dmy]$", description="<n>d, <n>m or <n>y")]
DeadlineText = Annotated[str, Field(pattern=r"^([1-9][0-9]{0,4}[dmy]|[1-9][0-9]{0,3}wd)$",
                                    description="<n>d, <n>m, <n>y or <n>wd (working days, credo.deadlines)")]
DEADLINES = ("objection_deadline", "correction_deadline", "review_deadline")
"""The policy's deadline settings, each a ``DeadlineText``."""


class Grade(_Strict):
    grade: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9+-]*$")
    min: StrictInt


class RecordType(_Strict):
    agency: str = Field(pattern=NAME, description="the only agency that may submit this type")
    category: str
    points: StrictInt | None = Field(None, description="required in a policy that scores; absent in one that "
                                     "gives lists only")
    valid_for: DurationText | None = None
    cap_per_year: Annotated[int, Field(strict=True, gt=0)] | None = None
    lists: list[str] = []
    resolves: list[str] = []
    basis: str = Field(min_length=3, description="the legal basis under which the agency submits it")


ActionPattern = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$",
                                     description="an action code, or a prefix ending in .* (flight.*)")]


class ListDef(_Strict):
    title: str
    kind: Literal["red", "black"]
    grace: DurationText | None = None
    restricts: list[ActionPattern] | None = Field(
        None, description="a black list's purpose: the actions its legal basis lets it restrict")

    def may_restrict(self, action: str) -> bool:
        """Whether ``action`` is within the list's purpose: named, or under a ``prefix.*`` it names."""
        return any(action == p or (p.endswith(".*") and action.startswith(p[:-1])) for p in self.restricts or ())


Names = list[str]  # a plain alias: inside Measure the field `list` shadows the builtin


class Measure(_Strict):
    list: str | None = None
    grades: Names | None = None
    action: str
    effect: Literal["deny", "green_channel", "deposit_waiver", "discount", "fast_track"]


Region = Annotated[str, Field(pattern=r"^[0-9]{1,6}$", description="a prefix of registered district codes")]


class JurisdictionDoc(_Strict):
    """Where a policy is in force (spec §9): its name and the district-code prefixes it holds."""

    name: str = Field(pattern=NAME)
    regions: list[Region] | None = Field(None, description="district-code prefixes; omitted: every resident")


class PolicyDoc(_Strict):
    """The policy file's schema; ``credo policy schema`` prints it as JSON Schema."""

    policy: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    jurisdiction: JurisdictionDoc | None = Field(None, description="omitted: a jurisdiction named after the "
                                                 "policy that holds every resident")
    timezone: str = DEFAULT_TZ
    base_score: StrictInt | None = Field(None, description="with score_bounds and grades: a policy that scores; "
                                         "all three left out: lists only (spec §9)")
    score_bounds: tuple[StrictInt, StrictInt] | None = None
    disputed: Literal["suspend", "count"] = "suspend"
    objection_deadline: DeadlineText = "15d"
    correction_deadline: DeadlineText = Field("3wd", description="a change on a provider's feed not acknowledged "
                                              "by then is overdue for that provider")
    review_deadline: DeadlineText = "14d"
    grades: list[Grade] | None = Field(None, min_length=1)
    record_types: dict[str, RecordType]
    lists: dict[str, ListDef] = {}
    actions: dict[str, str]
    measures: list[Measure] = []

    @property
    def scores(self) -> bool:
        """Whether the policy scores (else its jurisdiction gives lists only, and its standings no score or grade)."""
        return self.base_score is not None or self.score_bounds is not None or self.grades is not None

    @field_validator("record_types", "lists", "actions")
    @classmethod
    def _codes(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not re.match(CODE, k)]
        if bad:
            raise ValueError(f"codes must be dotted lowercase words: {', '.join(bad)}")
        return value


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: Literal["refuse", "warn"] = "refuse"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
