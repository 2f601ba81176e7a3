from __future__ import annotations

from django.db import models

from trialdesk.edc.participants.models import Participant
from trialdesk.edc.records import ParticipantRecord, Voidable
from trialdesk.trial.dose import infusion_dose_text
from trialdesk.trial.dosing import weight_text


class Infusion(Voidable, ParticipantRecord):
    """One infusion of the investigational product, with its chain of identity (lot, donor)."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="infusions")
    number = models.PositiveSmallIntegerField()
    date = models.DateField()
    started_at = models.TimeField("start time")
    stopped_at = models.TimeField("stop time", null=True, blank=True)
    weight_kg = models.FloatField("weight (kg)")
    total_cells = models.FloatField("total cells infused")
    dose_per_kg = models.FloatField("dose (cells/kg)", help_text="computed: total cells / weight")
    lot = models.CharField("product lot", max_length=60)
    donor_id = models.CharField("donor id", max_length=60)
    premedication = models.TextField(blank=True)
    vitals = models.JSONField(default=dict, help_text="before / during / after: systolic, diastolic, pulse, temperature, SpO2")
    interrupted = models.BooleanField(default=False)
    interruptions = models.TextField(blank=True, help_text="when, why, and for how long")

    FORM = "infusion"

    class Meta:
        ordering = ["participant", "number"]
        # an infusion entered in error leaves its number to the one entered in its place
        constraints = [models.UniqueConstraint(fields=["participant", "number"], condition=models.Q(error_reason=""),
                                               name="one_record_per_infusion_number")]

    @property
    def weight_text(self) -> str:
        return weight_text(self.weight_kg)

    @property
    def dose_text(self) -> str:
        """The dose as the protocol states doses: '0.75 × 10^6 cells/kg' per kg, '20 × 10^6 cells' in total."""
        from trialdesk.edc.web import protocol

        return infusion_dose_text(protocol().study_intervention.dose_spec, self.total_cells, self.weight_kg)


class CohortAssignment(Voidable, ParticipantRecord):
    """The coordinator's assignment of a participant to a dose cohort (a protocol with dose finding), made before
    the first infusion; the cohort gate reads it (rules: :mod:`trialdesk.trial.cohort_gate`). One in force per
    participant; one chosen in error is marked so (before the first infusion) and a new one made."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="cohort_assignments")
    cohort = models.CharField("cohort", max_length=32)
    assigned_on = models.DateField("assigned on")

    FORM = "cohort_assignment"

    class Meta:
        ordering = ["participant"]
        constraints = [models.UniqueConstraint(fields=["participant"], condition=models.Q(error_reason=""),
                                               name="one_cohort_assignment_in_force")]

    def __str__(self) -> str:
        return f"{self.participant.subject_id}: cohort {self.cohort}"

    @classmethod
    def in_force(cls) -> dict[str, str]:
        """Subject id -> cohort id, for every participant assigned."""
        return dict(cls.objects.values_list("participant__subject_id", "cohort"))
