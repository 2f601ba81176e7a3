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
    ``lasting`` (conditions) reads a record as a state that goes on until it ends: one
    that began before the window is still present unless it ended before the window began
    (its end date, or a resolved / inactive / remission status, which ends it on its own
    start date when no end date is given). ``lasting: true`` counts such a state as present
    (a heart failure diagnosed a year ago and never resolved is present in the last six
    months); ``lasting: review`` asks a person (``needs_review``) whether a state that began
    before the window is still active (a cancer recorded years ago with no end date), while
    one that began inside the window counts. An acute event is not lasting.
    ``value`` names a value set of answers the record's value must be one of (a
    pregnancy-status observation counts only when its answer is "pregnant").
    Absence within observed time means absence (the OMOP convention); outside observed
    time the result is ``unknown``. A record of the value set with no usable date makes an
    absence ``unknown`` (it might lie in the window).
    """

    kind: Literal["condition", "drug", "procedure", "observation"]
    value_set: str
    window: Window = Window()
    min_count: int = Field(default=1, ge=1)
    first_ever: bool = False
    lasting: Literal[False, True, "review"] = False
    value: str | None = None

    @model_validator(mode="after")
    def _lasting_conditions(self) -> Occurrence:
        if self.lasting and self.kind != "condition":
            raise ValueError("'lasting' reads a condition as a state until it ends; drugs have their own periods,"
                             " use it on conditions only")
        if self.lasting and self.first_ever:
            raise ValueError("'lasting' and 'first_ever' ask different questions (is it present / is it new); use one")
        if self.value is not None and self.kind != "observation":
            raise ValueError("'value' (an answer value set) applies to observations, which carry a value; "
                             "for a measurement use kind: measurement with 'qualitative'")
        return self


class Duration(_Node):
    """Time on a therapy: days from the first to the last record of the value set
    (drug exposures are joined through their end dates), compared with bounds.
    ``min_days`` inclusive, ``max_days`` exclusive ("at least 6 months but less than 24").
    With ``current_within_days`` the therapy must also still be current: a course that
    ended long before screening (years-old methotrexate) is not "under therapy"."""

    kind: Literal["duration"]
    domain: Literal["drug", "condition"] = "drug"
    value_set: str
    window: Window = Window()
    min_days: int | None = Field(default=None, ge=0)
    max_days: int | None = Field(default=None, ge=1)
    current_within_days: int | None = Field(
        default=None, ge=0,
        description="the therapy is current: its last exposure ends on or after the window's end minus this many days "
                    "(an exposure that overlaps the screening date, or stopped shortly before it)",
    )

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
    #: the values that are physically possible, in ``unit`` (an oxygen saturation is 0–100 %): a value outside is a
    #: recording error (186 % typed for 86 %), so the result decides nothing and says why
    plausible: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Compare:
        if self.plausible is not None:
            if self.value is None:
                raise ValueError("'plausible' bounds a numeric comparison's values: give 'value' and 'unit' with it")
            low, high = self.plausible
            if not low <= self.value <= high:
                raise ValueError(f"'plausible' [{low:g}, {high:g}] must contain the value compared with ({self.value:g})")
        if self.op == "outside_range":
            if self.value is not None or self.ref is not None:
                raise ValueError("'outside_range' compares with the record's own range; drop 'value' and 'ref'")
            return self
        if (self.value is None) == (self.ref is None):
            raise ValueError("a comparison needs exactly one of 'value' (with 'unit') or 'ref' (ULN or LLN)")
        if self.value is not None and not self.unit:
            raise ValueError("a numeric comparison needs its 'unit' (UCUM, e.g. '%' or 'mg/dL')")
        return self


class Qualitative(_Node):
    """How a result reported as an answer decides: one of ``positive`` meets the
    criterion, one of ``negative`` does not, anything else (indeterminate, a comment) is
    ``unknown``. Both name value sets of answers (codes, and whole written answers)."""

    positive: str = "positive_result"
    negative: str = "negative_result"


class OxygenContext(_Node):
    """An oxygen saturation counts as a resting, room-air reading unless the record shows
    otherwise. Supplemental oxygen raises a reading and exertion lowers it, so a reading
    outside that setting decides only in one direction: on oxygen, a value below a
    threshold still shows it is below on room air, but a value at or above it shows
    nothing; during exertion, a value at or above a threshold shows the resting value is
    too, but a value below it shows nothing. On oxygen and during exertion at once, it
    decides nothing.

    A reading is on oxygen when a record of ``oxygen`` sits at the same moment (the same
    date and time, or the same date when a record has no time) with no value, a flow above
    0, or a concentration above 21 %; a flow of 0 or 21 % says room air. It is exertional
    when its own code is in ``exertional_readings``, when a record of ``exertion`` sits at
    the same moment, or when its source text names exertion (the ``names`` of
    ``exertion``). Both are looked for in the reading's own table."""

    oxygen: str = "supplemental_oxygen"
    exertion: str = "exertion_test"
    exertional_readings: str | None = "exertional_oxygen_saturation"
    unrecorded: Literal["at_rest_on_room_air", "unknown"] = Field(
        default="at_rest_on_room_air",
        description="a reading with no record of oxygen or exertion: read as taken at rest on room air (the clinic's usual "
                    "spot check), or unknown",
    )
    reason: str | None = None


class Measurement(_Node):
    """A result of a value set in a window, compared.

    ``select: latest`` (the default) lets the latest result that carries a value decide;
    ``select: any`` is met when any result in the window meets the comparison (a positive
    serology ever), not met when there are results and none does. ``compare`` compares a
    number; ``qualitative`` lets a result reported as an answer (positive / detected /
    reactive) decide too. ``absent: unknown`` (the default) makes "no result in the
    window" unknown; ``absent: not_met`` reads it like a missing diagnosis (not met within
    observed time). ``unknown`` also when the unit cannot be converted, a reference-range
    comparison has no range on the record, or the value cannot be read (text in a number).
    """

    kind: Literal["measurement"]
    domain: Literal["measurement", "observation"] = "measurement"
    value_set: str
    window: Window = Window(start=-30, end=0)
    compare: Compare | None = None
    qualitative: Qualitative | None = None
    select: Literal["latest", "any"] = "latest"
    absent: Literal["unknown", "not_met"] = "unknown"
    context: OxygenContext | None = None

    @model_validator(mode="after")
    def _decides(self) -> Measurement:
        if self.compare is None and self.qualitative is None:
            raise ValueError("a measurement needs 'compare' (a number), 'qualitative' (an answer) or both")
        if self.context is not None and self.compare is None:
            raise ValueError("an oxygen 'context' qualifies a numeric comparison; add 'compare'")
        if self.context is not None and self.compare is not None and self.compare.op == "outside_range":
            raise ValueError("an oxygen 'context' needs a one-sided comparison ('<', '<=', '>', '>='), not 'outside_range'")
        return self


class Attestation(_Node):
    """An item only a person can answer; it is always ``needs_review`` until signed.

    ``supporting`` lists what the records can show towards the answer (IPAF's serologic
    and clinical domains): each part is evaluated and its evidence shown beside the
    question, so the investigator sees what the chart holds, but it never decides the
    status. Candidates with supporting features are ranked first."""

    kind: Literal["attestation"]
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    question: str = Field(min_length=3)
    role: Literal["investigator", "coordinator", "participant"] = "investigator"
    supporting: list[Support] = []


class Support(_Node):
    """One feature the records can show towards an attested answer."""

    label: str = Field(min_length=1)
    item: Expression


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
Support.model_rebuild()
Attestation.model_rebuild()


def walk(expr: Expression, *, supporting: bool = True) -> list[Expression]:
    """Every node of a tree, parents before children (with the attestations' supporting
    parts unless ``supporting`` is false)."""
    out: list[Expression] = [expr]
    if isinstance(expr, (All, AnyOf)):
        for item in expr.items:
            out.extend(walk(item, supporting=supporting))
    elif isinstance(expr, Not):
        out.extend(walk(expr.item, supporting=supporting))
    elif isinstance(expr, Attestation) and supporting:
        for part in expr.supporting:
            out.extend(walk(part.item, supporting=supporting))
    return out


def value_sets_of(node: Expression) -> set[str]:
    """The value sets one node names itself (its children's are theirs)."""
    if isinstance(node, (Occurrence, Duration)):
        return {node.value_set} | ({node.value} if isinstance(node, Occurrence) and node.value else set())
    if isinstance(node, Measurement):
        out = {node.value_set}
        if node.qualitative is not None:
            out |= {node.qualitative.positive, node.qualitative.negative}
        if node.context is not None:
            out |= {node.context.oxygen, node.context.exertion}
            if node.context.exertional_readings:
                out.add(node.context.exertional_readings)
        return out
    return set()


def value_sets_used(expr: Expression) -> set[str]:
    return {v for n in walk(expr) for v in value_sets_of(n)}


def attestations(expr: Expression) -> list[Attestation]:
    return [n for n in walk(expr, supporting=False) if isinstance(n, Attestation)]
