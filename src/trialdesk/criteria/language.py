"""The criteria language: a small, typed, declarative form of eligibility criteria.

In the spirit of OHDSI Circe cohort definitions (concept sets, nested ALL/ANY groups,
day windows), but written to be read by a clinician in the protocol file. Each node is
a pydantic model tagged by ``kind``; the eligibility compiler turns a tree into Ibis
expressions and the evaluator returns one status per person.

Every node says what the truth of its own sentence is for a person:
``met``, ``not_met``, ``unknown`` (the data cannot decide) or ``needs_review``
(a person must judge or attest).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Anchor = Literal["as_of", "planned_first_infusion"]
Domain = Literal["condition", "drug", "procedure", "observation", "measurement"]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Node):
    """A span of time relative to a named reference date.

    ``start`` and ``end`` are offsets (negative = before the anchor). ``None`` means
    unbounded on that side ("ever before"). Both ends are inclusive: a record dated on
    the boundary day counts. Months are calendar months (``as_of`` minus 2 months on
    2024-03-31 is 2024-01-31; on 2024-03-30 for a 29-day February, the last day of the
    month), which is how a clinician counts "the previous 2 months".
    """

    anchor: Anchor = "as_of"
    start: int | None = None
    end: int | None = 0
    unit: Literal["days", "months"] = "days"

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(
                f"window start ({self.start} {self.unit}) is after its end ({self.end} {self.unit});"
                " put the earlier offset in 'start'"
            )
        return self


class Age(_Node):
    """Age in completed years at the anchor date, with explicit bound rules."""

    kind: Literal["age"]
    min: int | None = None
    min_inclusive: bool = True
    max: int | None = None
    max_inclusive: bool = True
    anchor: Anchor = "as_of"

    @model_validator(mode="after")
    def _bounds(self) -> Age:
        if self.min is None and self.max is None:
            raise ValueError("an age criterion needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"age min ({self.min}) is greater than max ({self.max}); swap them")
        return self


class Sex(_Node):
    """Administrative sex recorded for the person (OMOP gender_concept_id)."""

    kind: Literal["sex"]
    allowed: list[Literal["female", "male"]] = Field(min_length=1)


class Occurrence(_Node):
    """At least ``min_count`` records of a value set in a window.

    ``first_ever`` restricts to the person's first record of the value set ever (a
    "new diagnosis"): it is met only when that first record lies in the window.
    Absence within observed time means absence (the OMOP convention); outside observed
    time the result is ``unknown``.
    """

    kind: Literal["condition", "drug", "procedure", "observation"]
    value_set: str
    window: Window = Window()
    min_count: int = Field(default=1, ge=1)
    first_ever: bool = False


class Duration(_Node):
    """Time on a therapy: days from the first to the last record of the value set
    (drug exposures are joined through their end dates), compared with bounds.
    ``min_days`` inclusive, ``max_days`` exclusive ("at least 6 months but less than 24")."""

    kind: Literal["duration"]
    domain: Literal["drug", "condition"] = "drug"
    value_set: str
    window: Window = Window()
    min_days: int | None = Field(default=None, ge=0)
    max_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> Duration:
        if self.min_days is None and self.max_days is None:
            raise ValueError("a duration criterion needs 'min_days', 'max_days' or both")
        if self.min_days is not None and self.max_days is not None and self.min_days >= self.max_days:
            raise ValueError(f"duration min_days ({self.min_days}) must be below max_days ({self.max_days})")
        return self


class Compare(_Node):
    """A comparison of a measurement's value.

    Either against a number in ``unit`` (UCUM), or against the record's own reference
    range: ``ref: ULN`` (range_high) or ``ref: LLN`` (range_low), times ``factor``.
    """

    op: Literal["<", "<=", ">", ">=", "outside_range"]
    value: float | None = None
    unit: str | None = None
    ref: Literal["ULN", "LLN"] | None = None
    factor: float = 1.0

    @model_validator(mode="after")
    def _one_target(self) -> Compare:
        if self.op == "outside_range":
            if self.value is not None or self.ref is not None:
                raise ValueError("'outside_range' compares with the record's own range; drop 'value' and 'ref'")
            return self
        if (self.value is None) == (self.ref is None):
            raise ValueError("a comparison needs exactly one of 'value' (with 'unit') or 'ref' (ULN or LLN)")
        if self.value is not None and not self.unit:
            raise ValueError("a numeric comparison needs its 'unit' (UCUM, e.g. '%' or 'mg/dL')")
        return self


class Measurement(_Node):
    """The latest measurement of a value set in a window, compared.

    ``unknown`` when there is no measurement in the window, when its unit cannot be
    converted to the comparison's unit, or when a reference-range comparison has no
    range on the record.
    """

    kind: Literal["measurement"]
    value_set: str
    window: Window = Window(start=-30, end=0)
    compare: Compare


class Attestation(_Node):
    """An item only a person can answer; it is always ``needs_review`` until signed."""

    kind: Literal["attestation"]
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    question: str = Field(min_length=3)
    role: Literal["investigator", "coordinator", "participant"] = "investigator"


class All(_Node):
    kind: Literal["all"]
    items: list[Expression] = Field(min_length=1)


class AnyOf(_Node):
    kind: Literal["any"]
    items: list[Expression] = Field(min_length=1)


class Not(_Node):
    kind: Literal["not"]
    item: Expression


Expression = Annotated[
    Age | Sex | Occurrence | Duration | Measurement | Attestation | All | AnyOf | Not,
    Field(discriminator="kind"),
]

All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


def walk(expr: Expression) -> list[Expression]:
    """Every node of a tree, parents before children."""
    out: list[Expression] = [expr]
    if isinstance(expr, (All, AnyOf)):
        for item in expr.items:
            out.extend(walk(item))
    elif isinstance(expr, Not):
        out.extend(walk(expr.item))
    return out


def value_sets_used(expr: Expression) -> set[str]:
    return {n.value_set for n in walk(expr) if isinstance(n, (Occurrence, Duration, Measurement))}


def attestations(expr: Expression) -> list[Attestation]:
    return [n for n in walk(expr) if isinstance(n, Attestation)]
