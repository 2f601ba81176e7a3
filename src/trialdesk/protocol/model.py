"""The protocol as data: every field of the registry record plus the settings a site
needs to run the trial (infusions, visit schedule, safety rules).

Field names follow ClinicalTrials.gov API v2 where the registry has the field, in
snake_case; enumerations use API v2's spellings (``PHASE1``, ``SINGLE_GROUP``) so the
round trip is lossless. Settings the registry does not hold carry a ``reason`` so the
reading of the protocol is documented next to the value.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trialdesk.criteria.language import Expression, attestations, value_sets_used
from trialdesk.criteria.status import Role


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- identity and status -------------------------------------------------------------

DateType = Literal["ACTUAL", "ESTIMATED"]


class StudyDate(_Model):
    date: dt.date
    type: DateType = "ACTUAL"


class Identification(_Model):
    nct_id: str = Field(pattern=r"^NCT\d{8}$")
    org_study_id: str | None = None
    brief_title: str = Field(min_length=1)
    official_title: str = Field(min_length=1)
    acronym: str | None = None
    #: the FDA Investigational New Drug application number. Not in the registry record (ClinicalTrials.gov
    #: does not publish it, so the API v2 import and export leave it alone): the sponsor's regulatory staff
    #: set it in the protocol file. The MedWatch 3500A summary prints it in block G5 and lists it as missing
    #: while it is unset.
    ind_number: str | None = Field(default=None, min_length=1, pattern=r"^\S(.*\S)?$")


OverallStatus = Literal[
    "NOT_YET_RECRUITING", "RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING",
    "SUSPENDED", "TERMINATED", "COMPLETED", "WITHDRAWN", "UNKNOWN",
]


class Status(_Model):
    overall_status: OverallStatus
    start_date: StudyDate
    primary_completion_date: StudyDate | None = None
    completion_date: StudyDate | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Status:
        start = self.start_date.date
        pcd = self.primary_completion_date.date if self.primary_completion_date else None
        cd = self.completion_date.date if self.completion_date else None
        if pcd and pcd < start:
            raise ValueError(f"primary_completion_date {pcd} is before start_date {start}; correct one of them")
        if cd and pcd and cd < pcd:
            raise ValueError(f"completion_date {cd} is before primary_completion_date {pcd}; correct one of them")
        if cd and cd < start:
            raise ValueError(f"completion_date {cd} is before start_date {start}; correct one of them")
        return self


class Sponsor(_Model):
    name: str
    class_: Literal["INDUSTRY", "NIH", "FED", "OTHER_GOV", "INDIV", "NETWORK", "OTHER", "AMBIG", "UNKNOWN"] = Field(
        "OTHER", alias="class"
    )
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ResponsibleParty(_Model):
    type: Literal["SPONSOR", "PRINCIPAL_INVESTIGATOR", "SPONSOR_INVESTIGATOR"]
    investigator_full_name: str | None = None
    investigator_title: str | None = None
    investigator_affiliation: str | None = None


class Official(_Model):
    name: str
    affiliation: str | None = None
    role: Literal["STUDY_CHAIR", "STUDY_DIRECTOR", "PRINCIPAL_INVESTIGATOR", "SUB_INVESTIGATOR"]


class Sponsorship(_Model):
    lead_sponsor: Sponsor
    collaborators: list[Sponsor] = []
    responsible_party: ResponsibleParty


class Description(_Model):
    brief_summary: str = Field(min_length=1)
    detailed_description: str | None = None
    plain_language_summary: str | None = None


# --- design, arms and interventions --------------------------------------------------

Phase = Literal["EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA"]


class Enrollment(_Model):
    count: int = Field(ge=1)
    type: DateType = "ACTUAL"


class Design(_Model):
    study_type: Literal["INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS"]
    phases: list[Phase] = Field(min_length=1)
    allocation: Literal["RANDOMIZED", "NON_RANDOMIZED", "NA"] = "NA"
    intervention_model: Literal["SINGLE_GROUP", "PARALLEL", "CROSSOVER", "FACTORIAL", "SEQUENTIAL"]
    primary_purpose: Literal[
        "TREATMENT", "PREVENTION", "DIAGNOSTIC", "ECT", "SUPPORTIVE_CARE", "SCREENING",
        "HEALTH_SERVICES_RESEARCH", "BASIC_SCIENCE", "DEVICE_FEASIBILITY", "OTHER",
    ]
    masking: Literal["NONE", "SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE"] = "NONE"
    enrollment: Enrollment


class Arm(_Model):
    label: str
    type: Literal["EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION", "OTHER"]
    description: str
    intervention_names: list[str] = Field(min_length=1)
    #: the short code of the arm in the SDTM (ARMCD, at most 20 characters); ``ARM1``, ``ARM2``... when not given
    code: str | None = Field(default=None, pattern=r"^[A-Z0-9_]{1,20}$")


class DoseRange(_Model):
    """Dose per kilogram of body weight, in ``unit`` (cells/kg for a cell product)."""

    min: float = Field(gt=0)
    max: float = Field(gt=0)
    unit: str = "cells/kg"
    #: doses given within the range are grouped for tables to this step, in ``unit`` (the precision at which the
    #: protocol states its range); without it each dose as shown is its own group
    group_step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> DoseRange:
        if self.min > self.max:
            raise ValueError(f"dose min ({self.min:,.0f}) is greater than max ({self.max:,.0f}); swap them")
        return self

    def contains(self, dose_per_kg: float) -> bool:
        return self.min <= dose_per_kg <= self.max


class InfusionPlan(_Model):
    """How many infusions each participant receives and how far apart. Not in the
    registry: a protocol setting whose reading is documented in ``reason``."""

    count: int = Field(ge=1)
    interval_days: int = Field(ge=0)
    window_days: int = Field(default=0, ge=0)
    reason: str = Field(min_length=1)


DoseBasis = Literal["per_kg", "per_m2", "total"]


class DoseLevel(_Model):
    """One dose level of a dose-finding design, in the dose's ``unit``."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    amount: float = Field(gt=0)
    label: str | None = None


class Dose(_Model):
    """The dose as the protocol states it: per kilogram, per square metre of body surface, or a
    total; either a list of ``levels`` (a dose-finding design) or a range ``min``–``max``.

    ``unit`` is shown exactly as the protocol writes it ("× 10⁶ cells", "cells/kg");
    ``per_unit`` is how many of the counted items (cells) one unit is, so a recorded cell
    count converts to it. ``tolerance`` is the relative deviation from a level the product
    release may have (0.1 = ±10%), with its ``reason``."""

    basis: DoseBasis
    unit: str = Field(min_length=1)
    per_unit: float = Field(default=1, gt=0)
    levels: list[DoseLevel] = []
    min: float | None = Field(default=None, gt=0)
    max: float | None = Field(default=None, gt=0)
    tolerance: float = Field(default=0, ge=0, lt=1)
    #: a range's doses are grouped for tables to this step, in ``unit`` (e.g. 0.1 for 0.5–1.0 × 10⁶ cells/kg); without
    #: it each dose as shown is its own group; levels are their own groups
    group_step: float | None = Field(default=None, gt=0)
    reason: str | None = None

    @model_validator(mode="after")
    def _levels_or_range(self) -> Dose:
        has_range = self.min is not None or self.max is not None
        if bool(self.levels) == has_range:
            raise ValueError("give either levels (a list of dose levels) or a range (min and max), not both and not neither")
        if has_range and (self.min is None or self.max is None):
            raise ValueError("a dose range needs both min and max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"dose min ({self.min:g}) is greater than max ({self.max:g}); swap them")
        if self.levels and self.group_step is not None:
            raise ValueError("group_step groups the doses of a range; dose levels are their own groups: remove group_step")
        ids = [lv.id for lv in self.levels]
        for i, lv_id in enumerate(ids):
            if lv_id in ids[:i]:
                raise ValueError(f"levels[{i}].id: dose level {lv_id!r} appears twice")
        amounts = [lv.amount for lv in self.levels]
        if amounts != sorted(amounts) or len(set(amounts)) != len(amounts):
            raise ValueError(f"levels must be listed from lowest to highest dose, each once; got {amounts}")
        return self

    def level(self, level_id: str) -> DoseLevel:
        for lv in self.levels:
            if lv.id == level_id:
                return lv
        raise KeyError(level_id)


class Intervention(_Model):
    type: Literal[
        "DRUG", "DEVICE", "BIOLOGICAL", "PROCEDURE", "RADIATION", "BEHAVIORAL",
        "GENETIC", "DIETARY_SUPPLEMENT", "COMBINATION_PRODUCT", "DIAGNOSTIC_TEST", "OTHER",
    ]
    name: str
    description: str | None = None
    arm_group_labels: list[str] = []
    other_names: list[str] = []
    route: Literal["INTRAVENOUS", "ORAL", "SUBCUTANEOUS", "INTRAMUSCULAR", "INHALED", "TOPICAL", "OTHER"] | None = None
    dose: DoseRange | None = None
    #: the dose as data (per kg, per m² or total; levels or a range); ``dose`` (per kg range) still works
    dosing: Dose | None = None
    infusions: InfusionPlan | None = None

    @model_validator(mode="after")
    def _one_dose(self) -> Intervention:
        if self.dose is not None and self.dosing is not None:
            raise ValueError("give the dose once: 'dosing' (per kg, per m² or total) or the older per-kg 'dose', not both")
        return self

    @property
    def dose_spec(self) -> Dose | None:
        """The dose as data; an older per-kg ``dose`` range reads as a per-kg :class:`Dose`."""
        if self.dosing is not None:
            return self.dosing
        if self.dose is not None:
            if self.dose.unit == "cells/kg":  # shown in millions, as cell-therapy protocols write it
                step = self.dose.group_step / 1e6 if self.dose.group_step is not None else None
                return Dose(basis="per_kg", unit="× 10^6 cells/kg", per_unit=1e6, min=self.dose.min / 1e6, max=self.dose.max / 1e6,
                            group_step=step, reason="per-kg dose range of the protocol file")
            return Dose(basis="per_kg", unit=self.dose.unit, min=self.dose.min, max=self.dose.max, group_step=self.dose.group_step,
                        reason="per-kg dose range of the protocol file")
        return None


# --- eligibility ---------------------------------------------------------------------

CRITERION_ID = re.compile(r"^(I|E)([1-9][0-9]*)$")


class Criterion(_Model):
    """One numbered criterion: its verbatim text and its computable form.

    ``encoding: needs_review`` marks a criterion imported from free text that no person
    has encoded yet; the screen reports it as ``needs_review`` for everyone.
    """

    id: str
    role: Role = Field(description="inclusion (must be met) or exclusion (must not be met)")
    text: str = Field(min_length=1)
    computable: Expression | None = None
    encoding: Literal["encoded", "needs_review"] = "encoded"
    reading: str | None = None

    @field_validator("id")
    @classmethod
    def _id_form(cls, v: str) -> str:
        if not CRITERION_ID.match(v):
            raise ValueError(f"criterion id {v!r} must be I<n> (inclusion) or E<n> (exclusion), e.g. 'I1' or 'E2'")
        return v

    @model_validator(mode="after")
    def _role_matches_id(self) -> Criterion:
        expected = "inclusion" if self.id.startswith("I") else "exclusion"
        if self.role != expected:
            raise ValueError(f"criterion {self.id} is numbered as an {expected} but its role says {self.role};"
                             f" number inclusions I1, I2, … and exclusions E1, E2, …")
        return self

    @model_validator(mode="after")
    def _encoded_has_form(self) -> Criterion:
        if self.encoding == "encoded" and self.computable is None:
            raise ValueError(
                f"criterion {self.id} is marked encoded but has no 'computable' form;"
                " add one (an 'attestation' if only a person can answer) or set encoding: needs_review"
            )
        return self

    @property
    def is_inclusion(self) -> bool:
        return self.role == "inclusion"

    @property
    def number(self) -> int:
        return int(self.id[1:])


class Eligibility(_Model):
    sex: Literal["ALL", "FEMALE", "MALE"]
    minimum_age: str | None = Field(default=None, pattern=r"^\d+ (Years|Months|Weeks|Days)$")
    maximum_age: str | None = Field(default=None, pattern=r"^\d+ (Years|Months|Weeks|Days)$")
    healthy_volunteers: bool = False
    std_ages: list[Literal["CHILD", "ADULT", "OLDER_ADULT"]] = []
    criteria: list[Criterion] = Field(min_length=1)
    #: how a FHIR chart that holds no record at all of a kind (no medication, no Condition, …) is read:
    #: ``absent`` (the design's convention: no record counts as none; the worksheet names what the chart
    #: lacks) or ``unknown`` (the parts that read that kind are unknown until the record is seen)
    silent_chart: Literal["absent", "unknown"] = "absent"

    @model_validator(mode="after")
    def _ids_unique_and_complete(self) -> Eligibility:
        seen: set[str] = set()
        for i, c in enumerate(self.criteria):
            if c.id in seen:
                raise ValueError(f"criteria[{i}].id: duplicate id {c.id!r}; give each criterion its own number")
            seen.add(c.id)
        for prefix, name in (("I", "inclusion"), ("E", "exclusion")):
            numbers = sorted(c.number for c in self.criteria if c.id[0] == prefix)
            for expected, got in enumerate(numbers, start=1):
                if expected != got:
                    raise ValueError(
                        f"missing {name} criterion '{prefix}{expected}' (numbers run {numbers});"
                        " number criteria from 1 without gaps"
                    )
        return self

    @property
    def inclusions(self) -> list[Criterion]:
        return [c for c in self.criteria if c.is_inclusion]

    @property
    def exclusions(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.is_inclusion]

    @property
    def roles(self) -> dict[str, Role]:
        return {c.id: c.role for c in self.criteria}

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(f"no criterion {criterion_id!r}; known ids: {', '.join(c.id for c in self.criteria)}")


# --- outcomes and locations ----------------------------------------------------------


class InfusionTimeFrame(_Model):
    """Which events of each infusion an outcome counts: those with onset from the infusion (attributed to the
    most recent infusion on or before onset) up to ``days`` after the first infusion (``anchor:
    first_infusion``: one time frame for the participant, so a later infusion has fewer days of it) or after
    that infusion itself (``anchor: each_infusion``: every infusion the same days). Events after it are
    listed as outside the time frame, never dropped silently."""

    anchor: Literal["first_infusion", "each_infusion"]
    days: int = Field(ge=1)
    reason: str


class Outcome(_Model):
    measure: str
    time_frame: str
    description: str | None = None
    time_frame_days: int | None = Field(default=None, ge=1)
    infusion_time_frame: InfusionTimeFrame | None = None


class Outcomes(_Model):
    primary: list[Outcome] = Field(min_length=1)
    secondary: list[Outcome] = []


class Location(_Model):
    facility: str
    city: str
    state: str | None = None
    zip: str | None = None
    country: str
    status: str | None = None
    contact_line: str | None = None
    #: the site's telephone and e-mail for people asking about the study, as the public study page gives them. A registry
    #: record often has no central contact; the protocol team fills these (None: the page gives the contact line only).
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9(][0-9 ()./-]{6,30}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
    #: the site's clock (IANA name): calendar dates of events, SAE deadlines and pauses are
    #: the site's dates. Not in the registry record; set it for each site.
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Paris") from None
        return value


# --- the public face: self-referral questions ----------------------------------------


class QuestionConflict(_Model):
    """Two answers that cannot both be true; the message is shown beside this question."""

    question: str
    answer: str
    when: str = Field(description="this question's answer that conflicts")
    message: str = Field(min_length=1)


class PatientQuestion(_Model):
    """One plain-language question a person can answer about themselves, derived from the
    criteria in ``criteria``.

    ``kind: yes_no`` offers yes / no / not sure; ``excludes_when`` is the answer that makes the
    person probably not eligible, and ``reason`` says why in plain words. ``kind: age`` asks the
    age in years; ``min_age`` (inclusive) and ``below_age`` (exclusive) bound who may take part.
    ``not_applicable`` adds a "does not apply to me" choice (e.g. pregnancy for a man).
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    criteria: list[str] = Field(min_length=1)
    kind: Literal["yes_no", "age"] = "yes_no"
    text: str = Field(min_length=1)
    help: str | None = None
    excludes_when: Literal["yes", "no"] | None = None
    min_age: int | None = Field(default=None, ge=0, le=120)
    below_age: int | None = Field(default=None, ge=1, le=121)
    not_applicable: str | None = Field(default=None, description="label of a 'does not apply to me' choice")
    reason: str = Field(min_length=1, description="why this answer makes the person probably not eligible, in plain words")
    conflicts: list[QuestionConflict] = []

    @model_validator(mode="after")
    def _kind_has_its_fields(self) -> PatientQuestion:
        if self.kind == "yes_no" and self.excludes_when is None:
            raise ValueError(f"question {self.id}: a yes_no question needs excludes_when: yes or excludes_when: no")
        if self.kind == "age" and self.min_age is None and self.below_age is None:
            raise ValueError(f"question {self.id}: an age question needs min_age, below_age or both")
        if self.min_age is not None and self.below_age is not None and self.min_age >= self.below_age:
            raise ValueError(f"question {self.id}: min_age ({self.min_age}) must be below below_age ({self.below_age})")
        return self


class SelfReferral(_Model):
    """The public self-referral questionnaire: optional; a protocol without it has a study page
    but no questionnaire. ``contact_line`` and the questions are the protocol team's words."""

    intro: str | None = None
    questions: list[PatientQuestion] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_unique(self) -> SelfReferral:
        ids = [q.id for q in self.questions]
        for i, qid in enumerate(ids):
            if qid in ids[:i]:
                raise ValueError(f"questions[{i}].id: duplicate question id {qid!r}")
        for i, q in enumerate(self.questions):
            for j, c in enumerate(q.conflicts):
                if c.question not in ids:
                    raise ValueError(f"questions[{i}].conflicts[{j}].question: {c.question!r} is not a question id;"
                                     f" known: {', '.join(ids)}")
        return self


# --- running the trial: schedule and safety -------------------------------------------


class Visit(_Model):
    """A scheduled visit: target day relative to the first infusion (day 0) and its
    window, with the forms due at it."""

    code: str = Field(pattern=r"^[A-Z0-9_]+$")
    name: str
    day: int
    window_before: int = Field(ge=0)
    window_after: int = Field(ge=0)
    forms: list[str] = []
    infusion: int | None = Field(default=None, ge=1, description="the infusion given at this visit (1, 2, ...)")


class Schedule(_Model):
    visits: list[Visit] = Field(min_length=1)
    reason: str | None = None

    @model_validator(mode="after")
    def _codes_unique_days_ordered(self) -> Schedule:
        codes = [v.code for v in self.visits]
        for i, code in enumerate(codes):
            if code in codes[:i]:
                raise ValueError(f"visits[{i}].code: duplicate visit code {code!r}")
        days = [v.day for v in self.visits]
        if days != sorted(days):
            raise ValueError(f"visits must be listed in order of day; got days {days}")
        return self


Relatedness = Literal["unrelated", "unlikely", "possibly", "probably", "definitely"]


class StoppingRule(_Model):
    """A fixed rule: when ``participants_at_least`` distinct participants have an event
    matching the filters, the ``action`` is taken until the DSMB decides."""

    id: str
    description: str
    min_grade: int = Field(ge=1, le=5)
    min_relatedness: Relatedness | None = None
    terms: list[str] = []
    participants_at_least: int = Field(default=1, ge=1)
    action: Literal["pause_enrolment_and_dosing", "pause_dosing", "stop_trial"] = "pause_enrolment_and_dosing"
    #: only events with onset within this many hours of an infusion count (AE onsets are dates: see
    #: trialdesk.safety.expectedness.within_hours_of_infusion for the reading)
    within_hours_of_infusion: int | None = Field(default=None, ge=1)
    #: only serious adverse events count (21 CFR 312.32 criteria, as the investigator recorded them)
    serious_only: bool = False
    #: only dose-limiting toxicities count, as the protocol's ``dose_finding.dlt`` defines them
    dlt_only: bool = False
    reason: str


class BayesianMonitor(_Model):
    """Beta-binomial toxicity monitor: with a Beta(a, b) prior on the rate of dose-limiting
    toxicity, pause when P(rate > threshold | data) exceeds ``posterior_probability``."""

    prior_a: float = Field(gt=0)
    prior_b: float = Field(gt=0)
    threshold_rate: float = Field(gt=0, lt=1)
    posterior_probability: float = Field(gt=0, lt=1)
    min_grade: int = Field(ge=1, le=5)
    min_relatedness: Relatedness = "possibly"
    #: a participant counts in the denominator once this many days have passed since the first
    #: infusion (the rule's observation window), or earlier when they have a qualifying event
    observation_days: int = Field(default=0, ge=0)
    reason: str

    @property
    def prior_participants(self) -> float:
        """What the prior is worth: a Beta(a, b) prior counts as a + b participants already observed."""
        return self.prior_a + self.prior_b


class ReportingRule(_Model):
    """A deadline for reporting a serious adverse event, counted from when the site
    learned of it."""

    id: str
    recipient: str
    due_hours: int | None = Field(default=None, ge=1)
    due_calendar_days: int | None = Field(default=None, ge=1)
    applies_to: Literal["all_serious", "unexpected_fatal_or_life_threatening_suspected", "unexpected_serious_suspected", "follow_up"]
    #: for a follow_up rule: the rules whose submitted report it follows up (empty: any first report)
    follows: list[str] = []
    reason: str

    @model_validator(mode="after")
    def _one_deadline(self) -> ReportingRule:
        if (self.due_hours is None) == (self.due_calendar_days is None):
            raise ValueError(f"reporting rule {self.id}: give exactly one of due_hours or due_calendar_days")
        return self


class ReferenceSafetyEntry(_Model):
    """One adverse reaction the reference safety information (the investigator's brochure) lists:
    an event of this CTCAE term is *expected* up to ``highest_expected_grade`` and, when a setting
    is given, only within ``within_hours_of_infusion`` of an infusion (21 CFR 312.32(a): unexpected
    is "not listed ... at the specificity or severity that has been observed")."""

    term: str
    highest_expected_grade: int = Field(ge=1, le=5)
    within_hours_of_infusion: int | None = Field(default=None, ge=1)
    #: the rate of the serious suspected reaction the RSI lists (fraction of participants), for the
    #: aggregate report of 21 CFR 312.32(c)(1)(iv); None: no rate listed
    listed_rate: float | None = Field(default=None, gt=0, lt=1)
    reason: str
    citation: str


class AggregateReportRule(_Model):
    """21 CFR 312.32(c)(1)(iv): a clinically important increase in the rate of a serious suspected
    adverse reaction over the rate listed in the reference safety information. For each RSI entry
    with a ``listed_rate`` (of ``terms`` when given), the rule fires when the participants with a
    serious suspected reaction of that term, among the participants infused, are so many that the
    one-sided exact binomial probability of at least that many at the listed rate is below ``alpha``
    (and at least ``participants_at_least`` of them). When it fires, the reports of ``reports``
    (ids of ``sae_reporting`` rules) are due, counted from the instant it fired."""

    id: str
    description: str
    terms: list[str] = []
    alpha: float = Field(gt=0, lt=1)
    participants_at_least: int = Field(default=2, ge=1)
    reports: list[str] = Field(min_length=1)
    reason: str


class Safety(_Model):
    ae_follow_up_days: int = Field(ge=1)
    reference_safety_information: list[ReferenceSafetyEntry] = []
    #: the document the reference safety information comes from (e.g. the investigator's brochure's version)
    reference_safety_document: str | None = None
    stopping_rules: list[StoppingRule] = []
    bayesian_monitor: BayesianMonitor | None = None
    sae_reporting: list[ReportingRule] = []
    aggregate_reports: list[AggregateReportRule] = []

    @model_validator(mode="after")
    def _references(self) -> Safety:
        ids = {r.id for r in self.sae_reporting}
        for r in self.sae_reporting:
            for f in r.follows:
                if f not in ids:
                    raise ValueError(f"sae_reporting {r.id}.follows: {f!r} is not a reporting rule id; known: {', '.join(sorted(ids))}")
        terms = [e.term.casefold() for e in self.reference_safety_information]
        if len(terms) != len(set(terms)):
            raise ValueError("reference_safety_information: a term is listed twice; give each term once")
        for a in self.aggregate_reports:
            for rid in a.reports:
                if rid not in ids:
                    known = ", ".join(sorted(ids))
                    raise ValueError(f"aggregate_reports {a.id}.reports: {rid!r} is not a reporting rule id; known: {known}")
            for t in a.terms:
                if t.casefold() not in terms:
                    raise ValueError(f"aggregate_reports {a.id}.terms: {t!r} is not in the reference_safety_information")
        return self


class Enrolment(_Model):
    target: int = Field(ge=1)
    stagger_days: int = Field(default=0, ge=0)
    screening_to_first_infusion_days: int = Field(
        default=0, ge=0, description="where criteria count back from the first infusion, it is assumed this many days after screening"
    )
    reason: str | None = None


# --- results disclosure (42 CFR 11.48(a)(5)-(6)) ---------------------------------------


class ResultsPointOfContact(_Model):
    """Who answers scientific questions about the posted results (moreInfoModule.pointOfContact)."""

    title: str = Field(min_length=1, description="a person's name or official title")
    organization: str = Field(min_length=1)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, min_length=7)
    phone_ext: str | None = None


class CertainAgreement(_Model):
    """Agreements restricting the PI's right to discuss or publish the results (moreInfoModule.certainAgreement)."""

    pi_sponsor_employee: bool
    restrictive_agreement: bool | None = None
    restriction_type: Literal["LTE60", "GT60", "OTHER"] | None = None
    other_details: str | None = None
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> CertainAgreement:
        if not self.pi_sponsor_employee and self.restrictive_agreement is None:
            raise ValueError("restrictive_agreement: say whether an agreement restricts the PI (the PI is not a sponsor employee)")
        if self.restrictive_agreement and self.restriction_type is None:
            raise ValueError("restriction_type: a restrictive agreement needs its type (LTE60, GT60 or OTHER)")
        if self.restriction_type == "OTHER" and not self.other_details:
            raise ValueError("other_details: describe the agreement when restriction_type is OTHER")
        return self


class StudyDocument(_Model):
    """A document uploaded with the results (documentSection.largeDocumentModule.largeDocs)."""

    type: Literal["protocol", "sap", "protocol_sap", "icf"]
    date: dt.date = Field(description="the date on the document's cover page (version date)")
    filename: str = Field(pattern=r"^[^/\\]+\.pdf$")
    label: str | None = None
    upload_date: dt.date | None = None


class ResultsDisclosure(_Model):
    point_of_contact: ResultsPointOfContact
    certain_agreement: CertainAgreement
    documents: list[StudyDocument] = []
    no_sap: bool = Field(default=False, description="there was no statistical analysis plan apart from the protocol")
    limitations_and_caveats: str | None = None
    reason: str | None = None


# --- dose finding: cohorts, DLT definition, escalation rule -----------------------------


class DltDefinition(_Model):
    """Which adverse events are dose-limiting toxicities: of these ``terms`` (any term when
    empty), at least ``min_grade``, at least ``min_relatedness``, (serious ones only when
    ``serious_only``), with onset within ``window_days`` of the infusion (day 0 = infusion day)."""

    terms: list[str] = []
    min_grade: int = Field(ge=1, le=5)
    min_relatedness: Relatedness = "possibly"
    serious_only: bool = False
    window_days: int = Field(ge=1)
    reason: str = Field(min_length=1)


class Cohort(_Model):
    """A cohort: ``size`` participants at one dose level. The first ``sentinel`` participant(s)
    are dosed alone and the rest wait ``sentinel_gap_days`` after them; later participants of the
    cohort are ``within_cohort_gap_days`` apart."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    dose_level: str
    size: int = Field(ge=1)
    sentinel: int = Field(default=0, ge=0)
    sentinel_gap_days: int = Field(default=0, ge=0)
    within_cohort_gap_days: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _sentinel_fits(self) -> Cohort:
        if self.sentinel >= self.size and self.sentinel > 0:
            raise ValueError(f"cohort {self.id}: {self.sentinel} sentinel participant(s) leave no one else in a cohort of {self.size}")
        return self


class EscalationRule(_Model):
    """How the next dose is chosen once a cohort's DLT window has closed.

    ``3+3``: the conventional rule (0/3 escalate, 1/3 expand to 6, 1/6 escalate, 2 or more de-escalate).
    ``boin``: the Bayesian optimal interval design (Liu & Yuan 2015) for ``target_toxicity``, with
    the sub-therapeutic and overly toxic rates ``phi1``/``phi2`` (0.6 and 1.4 × target by default),
    eliminating a dose when P(toxicity rate > target | data) > ``elimination_cutoff`` (Beta(1, 1) prior)."""

    design: Literal["3+3", "boin"]
    target_toxicity: float | None = Field(default=None, gt=0, lt=1)
    phi1: float | None = Field(default=None, gt=0, lt=1)
    phi2: float | None = Field(default=None, gt=0, lt=1)
    elimination_cutoff: float = Field(default=0.95, gt=0.5, lt=1)
    max_participants: int | None = Field(default=None, ge=1)
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _boin_has_target(self) -> EscalationRule:
        if self.design == "boin":
            if self.target_toxicity is None:
                raise ValueError("a BOIN design needs target_toxicity (e.g. 0.3)")
            lo, hi = self.boin_phi1, self.boin_phi2
            if not lo < self.target_toxicity < hi:
                raise ValueError(f"BOIN needs phi1 < target_toxicity < phi2; got {lo} < {self.target_toxicity} < {hi}")
        return self

    @property
    def boin_phi1(self) -> float:
        return self.phi1 if self.phi1 is not None else 0.6 * (self.target_toxicity or 0)

    @property
    def boin_phi2(self) -> float:
        return self.phi2 if self.phi2 is not None else 1.4 * (self.target_toxicity or 0)


class DoseFinding(_Model):
    """The dose-finding part of a protocol: cohorts in the order they open, the DLT definition and
    the escalation rule. Each cohort after the first opens only with the DSMB's signed decision."""

    cohorts: list[Cohort] = Field(min_length=1)
    dlt: DltDefinition
    escalation: EscalationRule
    reason: str | None = None

    @model_validator(mode="after")
    def _ids_unique(self) -> DoseFinding:
        ids = [c.id for c in self.cohorts]
        for i, c_id in enumerate(ids):
            if c_id in ids[:i]:
                raise ValueError(f"cohorts[{i}].id: cohort {c_id!r} appears twice")
        return self

    def cohort(self, cohort_id: str) -> Cohort:
        for c in self.cohorts:
            if c.id == cohort_id:
                return c
        raise KeyError(cohort_id)


# --- outcome measures as data --------------------------------------------------------------


class EventFilter(_Model):
    """Which adverse events an outcome measure counts; every condition given must hold."""

    serious: bool | None = Field(default=None, description="true: serious only; false: non-serious only")
    related: bool | None = Field(default=None, description="true: at least possibly related")
    treatment_emergent: bool = Field(default=True, description="onset on or after the first infusion")
    dlt: bool = Field(default=False, description="only events meeting the protocol's DLT definition")
    min_grade: int | None = Field(default=None, ge=1, le=5)
    terms: list[str] = []


class OutcomeWindow(_Model):
    """Counted from infusion ``from_infusion`` (1 = the first), for ``days`` days (day 0 = infusion day),
    or, with ``each_infusion``, a window after every infusion."""

    from_infusion: int = Field(default=1, ge=1)
    each_infusion: bool = False
    days: int = Field(ge=1)


class OutcomeMeasure(_Model):
    """An outcome measure as data: what is counted, which events, the window and the groups."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    title: str = Field(min_length=1)
    counts: Literal["events", "participants"]
    events: EventFilter = EventFilter()
    window: OutcomeWindow
    group_by: Literal["none", "cohort", "dose_level"] = "none"
    primary: bool = False
    reason: str | None = None


# --- the protocol ---------------------------------------------------------------------


class Protocol(_Model):
    """A trial protocol. ``id`` is the short name used on the command line."""

    schema_version: Literal[1] = 1
    id: str = Field(pattern=r"^[a-z0-9_-]+$")
    version: str
    identification: Identification
    status: Status
    sponsorship: Sponsorship
    overall_officials: list[Official] = []
    description: Description
    conditions: list[str] = Field(min_length=1)
    keywords: list[str] = []
    design: Design
    arms: list[Arm] = Field(min_length=1)
    interventions: list[Intervention] = Field(min_length=1)
    eligibility: Eligibility
    outcomes: Outcomes
    locations: list[Location] = []
    enrolment: Enrolment
    schedule: Schedule
    safety: Safety
    self_referral: SelfReferral | None = None
    results_disclosure: ResultsDisclosure | None = None
    dose_finding: DoseFinding | None = None
    outcome_measures: list[OutcomeMeasure] = []
    #: the shared value-set library files (``trialdesk/terminology/value_sets/<name>.yaml``) this protocol draws on,
    #: by name (``ctd_ild``, ``serology``...); a protocol sees only these and its own folder's ``value_sets/``
    value_set_libraries: list[str] = []

    @model_validator(mode="after")
    def _dose_finding_levels(self) -> Protocol:
        if self.dose_finding is None:
            return self
        spec = self.study_intervention.dose_spec
        levels = [lv.id for lv in spec.levels] if spec is not None else []
        if not levels:
            raise ValueError("dose_finding needs the study intervention's dosing to list dose levels (dosing.levels)")
        for i, c in enumerate(self.dose_finding.cohorts):
            if c.dose_level not in levels:
                raise ValueError(f"dose_finding.cohorts[{i}].dose_level: {c.dose_level!r} is not a dose level; known: {', '.join(levels)}")
        return self

    @model_validator(mode="after")
    def _outcome_measures(self) -> Protocol:
        ids = [m.id for m in self.outcome_measures]
        for i, m in enumerate(self.outcome_measures):
            if m.id in ids[:i]:
                raise ValueError(f"outcome_measures[{i}].id: outcome measure {m.id!r} appears twice")
            if m.group_by == "cohort" and self.dose_finding is None:
                raise ValueError(f"outcome_measures[{i}].group_by: grouping by cohort needs a dose_finding section with cohorts")
            if m.events.dlt and self.dose_finding is None:
                raise ValueError(f"outcome_measures[{i}].events.dlt: counting DLTs needs a dose_finding section with a dlt definition")
        return self

    @model_validator(mode="after")
    def _dlt_stopping_rules(self) -> Protocol:
        for i, r in enumerate(self.safety.stopping_rules):
            if r.dlt_only and self.dose_finding is None:
                raise ValueError(f"safety.stopping_rules[{i}].dlt_only: counting DLTs needs a dose_finding section with a dlt definition")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        names = {i.name for i in self.interventions}
        for a_i, arm in enumerate(self.arms):
            for n in arm.intervention_names:
                if n not in names:
                    raise ValueError(f"arms[{a_i}].intervention_names: {n!r} is not an intervention's name")
        if self.enrolment.target != self.design.enrollment.count:
            raise ValueError(
                f"enrolment.target ({self.enrolment.target}) differs from design.enrollment.count"
                f" ({self.design.enrollment.count}); make them agree"
            )
        plan = self.infusion_plan
        if plan is not None:
            infused = sorted(v.infusion for v in self.schedule.visits if v.infusion is not None)
            if infused != list(range(1, plan.count + 1)):
                raise ValueError(
                    f"schedule has infusion visits {infused} but the infusion plan gives {plan.count};"
                    " mark one visit per infusion with 'infusion: n'"
                )
        if self.self_referral is not None:
            known = {c.id for c in self.eligibility.criteria}
            for i, q in enumerate(self.self_referral.questions):
                for cid in q.criteria:
                    if cid not in known:
                        raise ValueError(f"self_referral.questions[{i}].criteria: {cid!r} is not a criterion id;"
                                         f" known: {', '.join(sorted(known))}")
        return self

    @property
    def study_intervention(self) -> Intervention:
        """The intervention that carries a dose (the investigational product)."""
        for i in self.interventions:
            if i.dose is not None or i.dosing is not None:
                return i
        return self.interventions[0]

    @property
    def infusion_plan(self) -> InfusionPlan | None:
        return self.study_intervention.infusions

    def value_sets_used(self) -> set[str]:
        out: set[str] = set()
        for c in self.eligibility.criteria:
            if c.computable is not None:
                out |= value_sets_used(c.computable)
        return out

    def site_time_zone(self) -> str | None:
        """The first location's time zone, if the protocol file gives one."""
        return next((loc.time_zone for loc in self.locations if loc.time_zone), None)

    def attestation_items(self) -> list[tuple[str, str, str]]:
        """(criterion id, attestation id, question) for every item a person must sign."""
        out: list[tuple[str, str, str]] = []
        for c in self.eligibility.criteria:
            if c.computable is not None:
                out.extend((c.id, a.id, a.question) for a in attestations(c.computable))
        return out
