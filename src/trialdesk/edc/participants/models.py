"""Consent, enrolled participants, and pauses by stopping rules."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from trialdesk.edc.records import TrialRecord
from trialdesk.edc.screening.models import ScreeningEntry
from trialdesk.trial.consent import Consent as CoreConsent
from trialdesk.trial.pause import Pause as CorePause

STATUSES = [("on_study", "On study"), ("completed", "Completed"), ("withdrawn", "Withdrawn"), ("off_study", "Off study")]


class Consent(TrialRecord):
    screening = models.ForeignKey(ScreeningEntry, on_delete=models.PROTECT, related_name="consents")
    icf_version = models.CharField("ICF version", max_length=60)
    signed_at = models.DateTimeField("signed (date and time)")
    obtained_by = models.CharField(max_length=200)
    copy_given = models.BooleanField("copy given to the participant", default=False)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)

    FORM = "consent"

    class Meta:
        ordering = ["-signed_at"]

    def audit_screening(self) -> str:
        return self.screening.number

    def audit_subject(self) -> str:
        return self.screening.audit_subject()

    def casebook(self) -> Any:
        return getattr(self.screening, "participant", None)

    def core(self) -> CoreConsent:
        from django.utils import timezone

        return CoreConsent(self.icf_version, self.signed_at, self.obtained_by, self.copy_given, self.withdrawn_at,
                           self.withdrawal_reason or None, site_zone=timezone.get_default_timezone())


class Participant(TrialRecord):
    subject_id = models.CharField(max_length=32, unique=True)
    screening = models.OneToOneField(ScreeningEntry, on_delete=models.PROTECT, related_name="participant")
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="+")
    enrolled_on = models.DateField()
    planned_first_infusion = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=STATUSES, default="on_study")
    off_study_on = models.DateField(null=True, blank=True)
    off_study_reason = models.TextField(blank=True)
    locked = models.BooleanField(default=False)
    locked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    locked_at = models.DateTimeField(null=True, blank=True)

    FORM = "enrolment"
    AUDIT_EXCLUDE = ("version", "created_at", "updated_at")

    class Meta:
        ordering = ["subject_id"]

    def __str__(self) -> str:
        return self.subject_id

    def audit_subject(self) -> str:
        return self.subject_id

    def audit_screening(self) -> str:
        return self.screening.number

    def casebook(self) -> Any:
        # the lock itself is changed through this record; it is checked for the other forms
        return None

    def signed_content(self) -> dict[str, Any]:
        """What the principal investigator's casebook signature covers (trialdesk.edc.casebook)."""
        from trialdesk.edc.casebook.service import content

        return content(self)

    def current_consent(self) -> Consent:
        return Consent.objects.get(pk=self.consent_id)

    @property
    def sex(self) -> str:
        return self.screening.sex


class Pause(TrialRecord):
    """A stopping rule's pause, in force until the DSMB lifts it."""

    rule_id = models.CharField(max_length=16)
    action = models.CharField(max_length=32, choices=[("pause_enrolment_and_dosing", "Pause enrolment and dosing"),
                                                      ("pause_dosing", "Pause dosing"), ("stop_trial", "Stop the trial")])
    since = models.DateField()
    description = models.TextField(blank=True)
    lifted_on = models.DateField(null=True, blank=True)
    lift_note = models.TextField(blank=True)

    FORM = "pause"

    def core(self) -> CorePause:
        return CorePause(self.rule_id, self.action, self.since, self.description)  # type: ignore[arg-type]

    @classmethod
    def in_force(cls) -> list[CorePause]:
        return [p.core() for p in cls.objects.filter(lifted_on__isnull=True).order_by("since")]
