"""Queries (open → answered → closed, never deleted) and source data verification marks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from trialdesk.edc.participants.models import Participant
from trialdesk.edc.records import ParticipantRecord, TrialRecord, Voidable
from trialdesk.trial.deviations import CATEGORIES

QUERY_STATUSES = [("open", "Open"), ("answered", "Answered"), ("closed", "Closed")]


class Query(ParticipantRecord):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="queries")
    target = models.CharField(max_length=100, help_text="the form and field queried, e.g. 'infusion 1: weight_kg'")
    text = models.TextField()
    origin = models.CharField(max_length=16, choices=[("monitor", "Monitor"), ("edit_check", "Edit check"), ("data_manager",
            "Data manager")])
    status = models.CharField(max_length=10, choices=QUERY_STATUSES, default="open")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    FORM = "query"
    IN_CASEBOOK = False

    class Meta:
        ordering = ["status", "-created_at"]
        verbose_name_plural = "queries"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("queries are never deleted; close it instead")


class SourceVerification(ParticipantRecord):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="verifications")
    model = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    record_version = models.PositiveIntegerField(help_text="the version of the record that was verified")
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
