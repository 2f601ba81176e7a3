"""Each participant's visits (generated from the protocol's schedule by the core) and the
case report forms entered at them (defined as data in ``trialdesk/trial/forms.yaml``)."""

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

    FORM = "visit"

    class Meta:
        ordering = ["participant", "day"]
        constraints = [models.UniqueConstraint(fields=["participant", "code"], name="one_visit_per_code")]


class FormEntry(Voidable, ParticipantRecord):
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="entries")
    form = models.CharField(max_length=40)
    data = models.JSONField(default=dict)

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
