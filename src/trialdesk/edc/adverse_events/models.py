"""Adverse events as the site records them, their follow-ups and SAE reports, the data
suggestions a coordinator dismissed, death reports and the DSMB's signed decisions. Every rule about them is the core's
(:mod:`trialdesk.safety.adverse_events`); these models only persist what passed."""

from __future__ import annotations

from typing import Any

from django.db import models

from trialdesk.edc.participants.models import Participant
from trialdesk.edc.records import ParticipantRecord, TrialRecord, Voidable
from trialdesk.trial.death import DeathReport as CoreDeathReport
from trialdesk.trial.dsmb_decision import Decision as CoreDecision
from trialdesk.trial.records import AdverseEvent as CoreAdverseEvent

RELATEDNESS = [("unrelated", "Unrelated"), ("unlikely", "Unlikely"), ("possibly", "Possibly"), ("probably", "Probably"),
               ("definitely", "Definitely")]
#: 21 CFR 312.32(a)
SERIOUSNESS = [("death", "Death"), ("life_threatening", "Life-threatening"), ("hospitalisation", "Hospitalisation or its prolongation"),
               ("disability", "Persistent or significant incapacity"), ("congenital_anomaly", "Congenital anomaly / birth defect"),
               ("important_medical_event", "Important medical event")]
OUTCOMES = [("recovering", "Recovering / resolving"), ("recovered", "Recovered / resolved"),
            ("recovered_with_sequelae", "Recovered with sequelae"), ("not_recovered", "Not recovered"), ("fatal", "Fatal"),
            ("unknown", "Unknown")]
ACTIONS = [("none", "None"), ("infusion_interrupted", "Infusion interrupted"), ("infusion_stopped", "Infusion stopped"),
           ("infusion_withheld", "Next infusion withheld"), ("participant_withdrawn", "Participant withdrawn"),
           ("treatment_given", "Treatment given for the event")]


class AdverseEvent(Voidable, ParticipantRecord):
    """One adverse event, CTCAE v5.0 graded. ``meddra_code``, ``soc`` and ``expected`` are
    filled by the core from the term; they are never typed."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="adverse_events")
    #: the investigator's own words for the event, before coding it to a CTCAE term (SDTM AETERM); blank: not given
    verbatim_term = models.CharField("event as reported", max_length=200, blank=True)
    term = models.CharField("CTCAE term", max_length=200)
    meddra_code = models.CharField("MedDRA LLT code", max_length=16)
    soc = models.CharField("system organ class", max_length=200)
    grade = models.PositiveSmallIntegerField()
    description = models.TextField("verbatim description", blank=True)
    onset = models.DateField()
    resolved = models.DateField(null=True, blank=True)
    serious = models.BooleanField(default=False)
    seriousness = models.JSONField("seriousness criteria", default=list, blank=True)
    relatedness = models.CharField("relatedness to the study product", max_length=16, choices=RELATEDNESS)
    expected = models.BooleanField(default=False, help_text="computed: the term is in the protocol's expected events")
    outcome = models.CharField(max_length=32, choices=OUTCOMES, default="unknown")
    action_taken = models.CharField(max_length=32, choices=ACTIONS, default="none")
    learned_at = models.DateTimeField("site learned of it", null=True, blank=True)
    suggested_from = models.CharField(max_length=300, blank=True)

    FORM = "adverse_event"

    class Meta:
        ordering = ["-onset", "-pk"]

    def __str__(self) -> str:
        return f"{self.ae_id} {self.term} grade {self.grade}"

    @property
    def ae_id(self) -> str:
        return f"AE-{self.pk}"

    def core(self) -> CoreAdverseEvent:
        return CoreAdverseEvent(
            id=self.ae_id, subject_id=self.participant.subject_id, term=self.term, verbatim_term=self.verbatim_term or None,
            meddra_code=int(self.meddra_code), soc=self.soc,
            grade=self.grade, onset=self.onset, resolved=self.resolved, description=self.description, serious=self.serious,
            seriousness=list(self.seriousness), relatedness=self.relatedness,  # type: ignore[arg-type]
            # expectedness is the sponsor-investigator's assessment (trialdesk.edc.safety), applied by the data cut;
            # the ``expected`` column is no longer written
            expected=None,
            outcome=self.outcome, action_taken=self.action_taken, learned_at=self.learned_at,  # type: ignore[arg-type]
            suggested_from=self.suggested_from or None)

    def seriousness_labels(self) -> list[str]:
        labels = dict(SERIOUSNESS)
        return [labels.get(c, c) for c in self.seriousness]


class FollowUp(ParticipantRecord):
    """New information about an event, received at a known instant (it starts an SAE follow-up clock)."""

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="follow_ups")
    received_at = models.DateTimeField()
    information = models.TextField()

    FORM = "ae_follow_up"

    def owner(self) -> Any:
        return self.adverse_event.participant

    class Meta:
        ordering = ["received_at"]


class SaeReport(ParticipantRecord):
    """A report under one of the protocol's ``sae_reporting`` rules, as submitted."""

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="reports")
    rule_id = models.CharField(max_length=16)
    submitted_at = models.DateTimeField()

    FORM = "sae_report"
    IN_CASEBOOK = False

    def owner(self) -> Any:
        return self.adverse_event.participant

    class Meta:
        ordering = ["submitted_at"]


class DismissedSuggestion(ParticipantRecord):
    """An AE suggested by a lab value or vital sign that the coordinator judged not to be one, and why."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="dismissed_suggestions")
    term = models.CharField(max_length=200)
    onset = models.DateField()
    grade = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=300)
    reason = models.TextField()

    FORM = "ae_suggestion"
    IN_CASEBOOK = False

    class Meta:
        ordering = ["-onset"]
        constraints = [models.UniqueConstraint(fields=["participant", "term", "onset"], name="one_dismissal_per_suggestion")]


AUTOPSY = [("yes", "Yes"), ("no", "No"), ("unknown", "Unknown")]


class DeathReport(ParticipantRecord):
    """A participant's death, linked to the grade 5 adverse event it reports (rules: :mod:`trialdesk.trial.death`)."""

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="death_report")
    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="death_reports")
    date_of_death = models.DateField()
    causes = models.TextField("cause(s) of death", help_text="one per line, immediate cause first")
    autopsy = models.CharField("autopsy performed", max_length=8, choices=AUTOPSY)
    relatedness = models.CharField("relation to the study product", max_length=16, choices=RELATEDNESS)
    narrative = models.TextField()

    FORM = "death_report"

    def cause_list(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.causes.splitlines() if c.strip())

    def core(self) -> CoreDeathReport:
        return CoreDeathReport(self.participant.subject_id, self.date_of_death, self.cause_list(), self.autopsy,  # type: ignore[arg-type]
                               self.relatedness, self.narrative, self.adverse_event.ae_id)  # type: ignore[arg-type]


DECISION_KINDS = [("continue", "Continue the trial unchanged"), ("continue_with_modifications", "Continue with modifications"),
                  ("pause", "Pause enrolment and dosing"), ("stop", "Stop the trial")]


class DsmbDecision(TrialRecord):
    """A DSMB member's signed decision after reviewing a safety report (rules: :mod:`trialdesk.trial.dsmb_decision`)."""

    kind = models.CharField("decision", max_length=32, choices=DECISION_KINDS)
    decided_on = models.DateField()
    report_cutoff = models.DateField("data cut-off of the report reviewed")
    rationale = models.TextField()
    modifications = models.TextField(blank=True)

    FORM = "dsmb_decision"

    class Meta:
        ordering = ["-decided_on", "-pk"]

    def signed_content(self) -> dict[str, Any]:
        return {"kind": self.kind, "decided_on": self.decided_on, "report_cutoff": self.report_cutoff, "rationale": self.rationale,
                "modifications": self.modifications}

    def current_signature(self) -> Any:
        from trialdesk.edc.signatures.service import current_signature

        return current_signature(self)

    def core(self) -> CoreDecision:
        sig = self.current_signature()
        return CoreDecision(self.kind, self.decided_on, self.report_cutoff, self.rationale, self.modifications,  # type: ignore[arg-type]
                            sig.manifestation() if sig else "")
