"""What the trial records about its participants, as plain data.

These are the Django-free shapes that the safety rules, the analyses and the exports
read. The EDC persists its own models and hands the core a :class:`TrialData` snapshot
(a data cut), so every rule and every report has exactly one implementation and can be
tested without a database.

Dates are calendar dates at the site; instants (``learned_at``, infusion times) are
timezone-aware.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Relatedness = Literal["unrelated", "unlikely", "possibly", "probably", "definitely"]
#: the 5-point scale in order; "related" means possibly or stronger
RELATEDNESS_ORDER: tuple[Relatedness, ...] = ("unrelated", "unlikely", "possibly", "probably", "definitely")

SeriousnessCriterion = Literal[
    "death", "life_threatening", "hospitalisation", "disability", "congenital_anomaly", "important_medical_event",
]
Outcome = Literal["recovered", "recovering", "not_recovered", "recovered_with_sequelae", "fatal", "unknown"]
ParticipantStatus = Literal["enrolled", "on_study", "completed", "withdrawn", "off_study"]


def is_related(r: Relatedness) -> bool:
    return RELATEDNESS_ORDER.index(r) >= RELATEDNESS_ORDER.index("possibly")


def at_least(r: Relatedness, floor: Relatedness) -> bool:
    return RELATEDNESS_ORDER.index(r) >= RELATEDNESS_ORDER.index(floor)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScreeningEntry(_Record):
    """One person screened (the screening log), identified by a screening number only."""

    screening_id: str
    screened_on: dt.date
    #: pending: awaiting the investigator's eligibility sign-off (no screening decision yet, see trialdesk.trial.screening_log);
    #: eligible: signed eligible, not (yet) enrolled
    outcome: Literal["enrolled", "screen_failed", "eligible", "pending", "withdrew_before_enrolment"]
    failed_criteria: list[str] = []
    reason: str | None = None


class Participant(_Record):
    """An enrolled participant, de-identified: subject id, age and sex, no name or dates of birth."""

    subject_id: str = Field(pattern=r"^[A-Za-z0-9-]+$")
    screening_id: str | None = None
    age_at_enrolment: int = Field(ge=0, le=120)
    sex: Literal["female", "male", "unknown"]
    #: the demographics form's code (forms.yaml dm_race / dm_ethnicity, e.g. ``black_or_african_american``);
    #: not recorded is ``unknown_or_not_reported``
    race: str = "unknown_or_not_reported"
    ethnicity: str = "unknown_or_not_reported"
    consented_on: dt.date
    enrolled_on: dt.date
    status: ParticipantStatus = "on_study"
    off_study_on: dt.date | None = None
    off_study_reason: str | None = None
    #: the dose cohort the coordinator assigned the participant to (a protocol with dose finding); None: none recorded
    cohort: str | None = None

    @model_validator(mode="after")
    def _order(self) -> Participant:
        if self.enrolled_on < self.consented_on:
            raise ValueError(f"{self.subject_id}: enrolled_on {self.enrolled_on} is before consented_on {self.consented_on}")
        if self.off_study_on is not None and self.off_study_on < self.enrolled_on:
            raise ValueError(f"{self.subject_id}: off_study_on {self.off_study_on} is before enrolled_on {self.enrolled_on}")
        return self


class Infusion(_Record):
    """One infusion of the investigational product."""

    subject_id: str
    number: int = Field(ge=1, description="1 for the first infusion, 2 for the second, ...")
    date: dt.date
    started_at: dt.datetime | None = None
    stopped_at: dt.datetime | None = None
    weight_kg: float = Field(gt=0)
    total_cells: float = Field(gt=0)
    lot: str
    donor_id: str
    interrupted: bool = False

    @property
    def dose_per_kg(self) -> float:
        return self.total_cells / self.weight_kg


class AdverseEvent(_Record):
    """An adverse event graded with CTCAE v5.0."""

    id: str
    subject_id: str
    term: str
    #: the investigator's own words for the event, as typed before choosing the CTCAE term (SDTM AETERM); None: not kept
    verbatim_term: str | None = None
    meddra_code: int
    soc: str
    grade: int = Field(ge=1, le=5)
    onset: dt.date
    resolved: dt.date | None = None
    description: str = ""
    serious: bool = False
    seriousness: list[SeriousnessCriterion] = []
    relatedness: Relatedness
    #: the sponsor-investigator's expectedness assessment against the reference safety information
    #: (21 CFR 312.32(a)); None: not yet assessed (never pre-filled; see trialdesk.safety.expectedness)
    expected: bool | None = None
    expectedness_assessed_by: str | None = None
    outcome: Outcome = "unknown"
    action_taken: str = "none"
    learned_at: dt.datetime | None = Field(default=None, description="when the site learned of the event (starts SAE clocks)")
    suggested_from: str | None = Field(default=None, description="the lab or vital sign that suggested it, when it did")

    @model_validator(mode="after")
    def _consistent(self) -> AdverseEvent:
        if self.resolved is not None and self.resolved < self.onset:
            raise ValueError(f"AE {self.id}: resolved {self.resolved} is before onset {self.onset}")
        if self.serious and not self.seriousness:
            raise ValueError(f"AE {self.id}: a serious event needs at least one seriousness criterion (21 CFR 312.32)")
        if not self.serious and self.seriousness:
            raise ValueError(f"AE {self.id}: seriousness criteria given but serious is false")
        if self.grade == 5 and self.outcome != "fatal":
            raise ValueError(f"AE {self.id}: grade 5 is death; outcome must be 'fatal'")
        return self

    @property
    def related(self) -> bool:
        return is_related(self.relatedness)


class LabResult(_Record):
    subject_id: str
    visit: str
    date: dt.date
    loinc: str
    test: str
    value: float
    unit: str
    range_low: float | None = None
    range_high: float | None = None


class VitalSign(_Record):
    subject_id: str
    visit: str
    date: dt.date
    test: Literal["SYSBP", "DIABP", "PULSE", "RESP", "TEMP", "SPO2", "WEIGHT"]
    value: float
    unit: str
    timepoint: str | None = None
    #: SPO2 only: measured at rest (True), on exertion (False), or not recorded (None)
    at_rest: bool | None = None
    #: SPO2 only: supplemental oxygen flow at the reading, L/min (0: room air; None: not recorded)
    oxygen_l_min: float | None = Field(default=None, ge=0)


FunctionTestCode = Literal["FVC", "FVCPP", "FEV1", "DLCOPP", "SIXMWD", "SIXMWSPO2", "BORG"]


class FunctionTest(_Record):
    """A lung-function (pulmonary_function form: FVC, FEV1, DLCO) or six-minute-walk (six_minute_walk form) result."""

    subject_id: str
    visit: str
    date: dt.date
    test: FunctionTestCode
    value: float
    unit: str


class VisitRecord(_Record):
    subject_id: str
    code: str
    date: dt.date | None = None
    status: Literal["done", "missed", "scheduled"] = "done"
    #: a visit the schedule does not have (its code is the participant's own, U1, U2...)
    unscheduled: bool = False


class ConcomitantMedication(_Record):
    """A medication the participant takes besides the investigational product (CM form)."""

    id: str
    subject_id: str
    medication: str = Field(min_length=1, description="as the investigator wrote it (verbatim)")
    rxnorm_code: str | None = None
    indication: str | None = None
    dose: float | None = None
    dose_unit: str | None = None
    route: str | None = None
    frequency: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    ongoing: bool = False

    @model_validator(mode="after")
    def _dates(self) -> ConcomitantMedication:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"CM {self.id}: end_date {self.end_date} is before start_date {self.start_date}")
        if self.ongoing and self.end_date is not None:
            raise ValueError(f"CM {self.id}: an ongoing medication has no end_date")
        return self


class MedicalHistoryItem(_Record):
    """A condition in the participant's medical history (MH form)."""

    id: str
    subject_id: str
    term: str = Field(min_length=1, description="as the investigator wrote it (verbatim)")
    icd10cm_code: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    ongoing: bool = False

    @model_validator(mode="after")
    def _dates(self) -> MedicalHistoryItem:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"MH {self.id}: end_date {self.end_date} is before start_date {self.start_date}")
        return self


class ProtocolDeviation(_Record):
    """An entry of the protocol-deviation log: automatic (an out-of-window visit, a late SAE report)
    or entered by site staff with its category and reason."""

    id: str
    subject_id: str | None = None
    date: dt.date
    category: str = Field(min_length=1, description="e.g. visit out of window, late SAE report, eligibility, consent, dosing")
    description: str = Field(min_length=1)
    source: Literal["automatic", "manual"]
    reason: str | None = None


class SafetyReportSubmission(_Record):
    """A report submitted under one of the protocol's ``sae_reporting`` rules (or ``<aggregate id>/<rule id>``)."""

    ae_id: str
    rule_id: str
    submitted_at: dt.datetime


class FollowUpInformation(_Record):
    """New information about an adverse event, received at a known instant (starts a follow-up clock)."""

    ae_id: str
    received_at: dt.datetime


class TrialData(_Record):
    """A data cut: everything recorded up to ``cutoff``."""

    protocol_id: str
    cutoff: dt.date
    screening: list[ScreeningEntry] = []
    participants: list[Participant] = []
    infusions: list[Infusion] = []
    adverse_events: list[AdverseEvent] = []
    labs: list[LabResult] = []
    vitals: list[VitalSign] = []
    visits: list[VisitRecord] = []
    concomitant_medications: list[ConcomitantMedication] = []
    medical_history: list[MedicalHistoryItem] = []
    deviations: list[ProtocolDeviation] = []
    function_tests: list[FunctionTest] = []
    safety_reports: list[SafetyReportSubmission] = []
    follow_up_information: list[FollowUpInformation] = []

    @model_validator(mode="after")
    def _known_subjects(self) -> TrialData:
        ids = {p.subject_id for p in self.participants}
        for kind, rows in (("infusion", self.infusions), ("adverse event", self.adverse_events)):
            for r in rows:
                if r.subject_id not in ids:
                    raise ValueError(f"{kind} for {r.subject_id!r}, who is not an enrolled participant")
        return self

    @classmethod
    def from_file(cls, path: Path) -> TrialData:
        """A data cut read from its JSON file; ``ValueError`` names the file and, for bad content, each field."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{path}: cannot read ({exc.strerror}); check the path") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ValueError("\n".join(f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())) from None

    def cohort_assignments(self) -> dict[str, str]:
        """Subject id -> the cohort recorded for them, for every participant with one."""
        return {p.subject_id: p.cohort for p in self.participants if p.cohort is not None}

    def infusions_of(self, subject_id: str) -> list[Infusion]:
        return sorted((i for i in self.infusions if i.subject_id == subject_id), key=lambda i: i.number)
