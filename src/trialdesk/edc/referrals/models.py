"""A self-referral: a person asked the study team to contact them. It holds the minimum to do
so (name, phone and/or email, an optional message) and their questionnaire answers with the
preliminary answer they were shown; it is not a medical record and not a screening entry
until a coordinator screens the person."""

from __future__ import annotations

from django.db import models

from trialdesk.edc.records import TrialRecord

STATUSES = [("new", "New"), ("contacted", "Contacted"), ("screened", "Screened"), ("closed", "Closed (not pursued)")]
VERDICTS = [("may_be_eligible", "May be eligible"), ("probably_not_eligible", "Probably not eligible")]


class Referral(TrialRecord):
    number = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(max_length=200, blank=True)
    message = models.TextField(blank=True, help_text="the person's own words, kept as plain text")
    answers = models.JSONField(help_text="question id -> answer, as the person gave them")
    verdict = models.CharField(max_length=24, choices=VERDICTS)
    reasons = models.JSONField(default=list, help_text="the plain-language reasons shown to the person")
    to_check = models.JSONField(default=list, help_text="questions answered 'not sure'")
    protocol_id = models.CharField(max_length=40)
    protocol_version = models.CharField(max_length=20)
    consent_to_contact = models.BooleanField(help_text="the person ticked the consent to be contacted")
    consent_text = models.TextField(help_text="the consent sentence as shown to the person")
    fingerprint = models.CharField(max_length=64, db_index=True, help_text="hash of protocol, name and contact: finds repeats")
    submission = models.CharField(max_length=32, unique=True, help_text="one confirm step; a second press of Confirm is a repeat")
    status = models.CharField(max_length=16, choices=STATUSES, default="new", help_text="where the coordinators are with this person")

    FORM = "referral"
    AUDIT_EXCLUDE = (*TrialRecord.AUDIT_EXCLUDE, "fingerprint", "submission")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(consent_to_contact=True), name="referral_needs_consent")]

    def __str__(self) -> str:
        return self.number

    def audit_screening(self) -> str:
        return self.number
