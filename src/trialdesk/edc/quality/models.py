"""Queries (open → answered → closed, never deleted) and source data verification marks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from trialdesk.edc.participants.models import Participant
from trialdesk.edc.records import ParticipantRecord, TrialRecord, Voidable
from trialdesk.trial.deviations import CATEGORIES

QUERY_STATUSES = [("open", "Open"), ("answered", "Answered"), ("closed", "Closed"), ("withdrawn", "Withdrawn")]


class Query(ParticipantRecord):
    """A question about one data point: the participant, and (raised from a form) the visit, the form and the field.
    Open → answered by the site → closed by whoever raised it; or withdrawn, with the reason, by whoever raised it."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="queries")
    visit = models.ForeignKey("visits.Visit", null=True, blank=True, on_delete=models.PROTECT, related_name="queries")
    form = models.CharField("form", max_length=40, blank=True)
    field = models.CharField("field", max_length=60, blank=True)
    target = models.CharField("location as typed", max_length=100, blank=True,
                              help_text="queries raised before they were attached to a data point kept the text typed then")
    text = models.TextField()
    origin = models.CharField(max_length=16, choices=[("monitor", "Monitor"), ("edit_check", "Edit check"), ("data_manager",
            "Data manager")])
    status = models.CharField(max_length=10, choices=QUERY_STATUSES, default="open")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    answered_at = models.DateTimeField("answered at", null=True, blank=True)
    closed_at = models.DateTimeField("closed at", null=True, blank=True)
    withdrawn_reason = models.TextField("withdrawn, because", blank=True)

    FORM = "query"
    IN_CASEBOOK = False

    class Meta:
        ordering = ["status", "-created_at"]
        verbose_name_plural = "queries"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("queries are never deleted; close it instead")

    @property
    def query_id(self) -> str:
        return f"Q-{self.pk}"

    @property
    def is_open(self) -> bool:
        """Waiting for someone (the site's answer, or the raiser's closing)."""
        return self.status in ("open", "answered")

    def days_open(self, now: Any = None) -> int:
        """Ageing: whole days from raising to closing or withdrawing (or to now, while it is open)."""
        from django.utils import timezone

        end = self.closed_at if not self.is_open and self.closed_at else (now or timezone.now())
        return (timezone.localtime(end).date() - timezone.localtime(self.created_at).date()).days

    def location(self) -> str:
        """Where the query points, in words."""
        if self.visit_id is None and not self.form:
            return self.target or "the participant"
        parts = [self.visit.name if self.visit_id else "", _form_title(self.form), _field_label(self.form, self.field)]
        return " · ".join(p for p in parts if p)


def _form_title(form_id: str) -> str:
    if not form_id:
        return ""
    from trialdesk.edc.visits.crf import catalogue

    cat = catalogue()
    return cat.form(form_id).title if form_id in cat.ids else form_id.replace("_", " ")


def _field_label(form_id: str, name: str) -> str:
    """A form's field as the form labels it (a laboratory limit as its analyte's limit)."""
    if not name:
        return ""
    from trialdesk.edc.visits.crf import catalogue

    cat = catalogue()
    if form_id in cat.ids:
        labels = {f.name: f.label for f in cat.form(form_id).fields}
        base, _, limit = name.rpartition("_")
        if name in labels:
            return labels[name]
        if limit in ("lln", "uln") and base in labels:
            return f"{labels[base]}: {'lower' if limit == 'lln' else 'upper'} limit of normal"
    return name.replace("_", " ")


class SourceVerification(ParticipantRecord):
    """A monitor's mark that a value agrees with the source. On a visit form it marks one field, with the value that was
    verified: a later change of that value leaves the mark behind (the field reads "changed since verified"), a save
    with the same value does not. On another record (an infusion, an AE) it marks the whole record at its version."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="verifications")
    model = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    record_version = models.PositiveIntegerField(help_text="the version of the record that was verified")
    field = models.CharField("field verified", max_length=60, blank=True)
    value = models.TextField("value verified", blank=True)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)

    FORM = "sdv"
    IN_CASEBOOK = False


DEVIATION_SOURCES = [("automatic", "Automatic"), ("manual", "Entered by site staff")]


class Deviation(Voidable, TrialRecord):
    """An entry of the protocol-deviation log: automatic (a visit or an assessment out of its window, with the reason
    given when it was entered) or entered by site staff with its category and reason (categories:
    :data:`trialdesk.trial.deviations.CATEGORIES`)."""

    participant = models.ForeignKey(Participant, null=True, blank=True, on_delete=models.PROTECT, related_name="deviations")
    date = models.DateField("date of the deviation")
    category = models.CharField(max_length=60, choices=[(k, v) for k, v in CATEGORIES.items()])
    description = models.TextField()
    source = models.CharField(max_length=10, choices=DEVIATION_SOURCES)
    reason = models.TextField(blank=True)
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    FORM = "protocol_deviation"

    class Meta:
        ordering = ["-date", "-pk"]

    @property
    def deviation_id(self) -> str:
        return f"PD-{self.pk}"

    def audit_subject(self) -> str:
        return self.participant.subject_id if self.participant else ""

    def audit_screening(self) -> str:
        return self.participant.screening.number if self.participant else ""
