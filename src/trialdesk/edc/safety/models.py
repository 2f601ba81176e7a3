"""The sponsor-investigator's expectedness assessment of an adverse event (21 CFR 312.32(a)).

Each assessment is a new row (the latest is in force); a change is a new assessment with its reason,
and every row is audited. An assessment is made for the term, grade and onset the AE had at that
moment: when any of them changes, the assessment no longer holds and the AE is "not yet assessed"
again (its IND reports show as pending the assessment) until someone assesses it anew.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from trialdesk.edc.adverse_events.models import AdverseEvent
from trialdesk.edc.records import ParticipantRecord


class ExpectednessAssessment(ParticipantRecord):
    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="expectedness_assessments")
    expected = models.BooleanField(help_text="listed in the reference safety information at the specificity and severity observed")
    reason = models.TextField("reason", help_text="why; required when the assessment differs from the suggestion or changes an earlier one")
    suggestion = models.TextField("what the reference safety information said", help_text="the suggestion shown when it was made")
    assessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assessed_at = models.DateTimeField()
    for_term = models.CharField(max_length=200)
    for_grade = models.PositiveSmallIntegerField()
    for_onset = models.DateField()

    FORM = "expectedness"

    class Meta:
        ordering = ["assessed_at", "pk"]

    def owner(self) -> Any:
        return self.adverse_event.participant

    def holds_for(self, ae: AdverseEvent) -> bool:
        """Whether this assessment was made for the AE as it is now (same term, grade and onset)."""
        return (self.for_term, self.for_grade, self.for_onset) == (ae.term, ae.grade, ae.onset)

    def assessor(self) -> str:
        user = self.assessed_by
        role = getattr(user, "role", "") or ""
        name = user.get_full_name() or user.get_username()
        return f"{name} ({role})" if role else name
