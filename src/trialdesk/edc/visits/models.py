"""Each participant's visits (generated from the protocol's schedule by the core) and the
case report forms entered at them (defined as data in the protocol folder's ``forms.yaml``, else ``trialdesk/protocol/forms.yaml``)."""

from __future__ import annotations

from typing import Any

from django.db import models

from trialdesk.edc.participants.models import Participant
from trialdesk.edc.records import ParticipantRecord, Voidable


class Visit(ParticipantRecord):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="visits")
    code = models.CharField(max_length=20)
    name = models.CharField(max_length=100)
    day = models.IntegerField()
    target = models.DateField()
    earliest = models.DateField()
    latest = models.DateField()
    infusion_number = models.PositiveSmallIntegerField(null=True, blank=True)
    forms = models.JSONField(default=list)
    done_on = models.DateField(null=True, blank=True)
    out_of_window = models.BooleanField(default=False)
    not_done_reason = models.TextField(blank=True)
    #: a visit the protocol's schedule does not have, added for a reason (a symptom, a repeat test): its window is its
    #: date, it is never "missed" and its forms are the ones chosen for it
    unscheduled = models.BooleanField(default=False)
    unscheduled_reason = models.TextField("reason for the unscheduled visit", blank=True)

    FORM = "visit"

    class Meta:
        ordering = ["participant", "day"]
        constraints = [models.UniqueConstraint(fields=["participant", "code"], name="one_visit_per_code")]


class FormEntry(Voidable, ParticipantRecord):
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="entries")
    form = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    not_done_reason = models.TextField("not done, because", blank=True)

    FORM = "crf"

    def owner(self) -> Any:
        return self.visit.participant

    def data_values(self, form: Any) -> dict[str, Any]:
        """The stored values typed again (dates as dates), for the checks that compare them."""
        import datetime as dt

        types = {f.name: f.type for f in form.fields}
        return {k: dt.date.fromisoformat(v) if types.get(k) == "date" and isinstance(v, str) else v for k, v in self.data.items()}

    class Meta:
        ordering = ["visit", "form"]
        constraints = [models.UniqueConstraint(fields=["visit", "form"], condition=models.Q(error_reason=""),
                                               name="one_entry_per_form_per_visit")]


ROUTES = [("oral", "Oral"), ("intravenous", "Intravenous"), ("subcutaneous", "Subcutaneous"), ("intramuscular", "Intramuscular"),
          ("inhaled", "Inhaled"), ("topical", "Topical"), ("other", "Other")]


class ConcomitantMedication(Voidable, ParticipantRecord):
    """A medication the participant takes besides the investigational product (rules: trialdesk.trial.records)."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="medications")
    medication = models.CharField("medication (as written)", max_length=200)
    rxnorm_code = models.CharField("RxNorm code", max_length=16, blank=True)
    indication = models.CharField(max_length=200, blank=True)
    dose = models.FloatField(null=True, blank=True)
    dose_unit = models.CharField("dose unit", max_length=20, blank=True)
    route = models.CharField(max_length=20, choices=ROUTES, blank=True)
    frequency = models.CharField(max_length=60, blank=True)
    start_date = models.DateField("start date", null=True, blank=True)
    end_date = models.DateField("end date", null=True, blank=True)
    ongoing = models.BooleanField(default=False)

    FORM = "concomitant_medication"

    class Meta:
        ordering = ["participant", "start_date", "pk"]

    @property
    def record_id(self) -> str:
        return f"CM-{self.pk}"


class MedicalHistoryItem(Voidable, ParticipantRecord):
    """A condition in the participant's medical history."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="medical_history")
    term = models.CharField("condition (as written)", max_length=200)
    icd10cm_code = models.CharField("ICD-10-CM code", max_length=10, blank=True)
    start_date = models.DateField("start date", null=True, blank=True)
    end_date = models.DateField("end date", null=True, blank=True)
    ongoing = models.BooleanField(default=False)

    FORM = "medical_history"

    class Meta:
        ordering = ["participant", "start_date", "pk"]

    @property
    def record_id(self) -> str:
        return f"MH-{self.pk}"
