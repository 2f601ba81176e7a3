"""The screening log and the investigator's eligibility sign-off."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from trialdesk.edc.records import TrialRecord

SOURCES = [("manual", "By hand"), ("prescreen", "Pre-screen candidate list"), ("fhir", "FHIR record")]
OUTCOMES = [("pending", "Pending"), ("eligible", "Eligible"), ("screen_failed", "Screen failed"), ("enrolled", "Enrolled"),
            ("rescreened", "Re-screened")]


class ScreeningEntry(TrialRecord):
    number = models.CharField(max_length=16, unique=True)
    given_name = models.CharField(max_length=100, blank=True)
    family_name = models.CharField(max_length=100, blank=True)
    mrn = models.CharField("MRN", max_length=40, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=10, choices=[("female", "Female"), ("male", "Male"), ("unknown", "Unknown")], default="unknown")
    screened_on = models.DateField()
    source = models.CharField(max_length=16, choices=SOURCES)
    source_ref = models.CharField(max_length=200, blank=True, help_text="pre-screen person id, FHIR patient id or file")
    snapshot = models.JSONField(help_text="the eligibility worksheet as the engine produced it")
    protocol_id = models.CharField(max_length=40)
    protocol_version = models.CharField(max_length=20)
    data_as_of = models.DateField()
    outcome = models.CharField(max_length=16, choices=OUTCOMES, default="pending")
    failed_criteria = models.JSONField(default=list, blank=True)
    fail_note = models.TextField(blank=True)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="rescreens")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    FORM = "screening"

    class Meta:
        ordering = ["-screened_on", "-number"]
        verbose_name_plural = "screening entries"

    def __str__(self) -> str:
        return self.number

    def audit_screening(self) -> str:
        return self.number

    def audit_subject(self) -> str:
        p = getattr(self, "participant", None)
        return p.subject_id if p is not None else ""

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip() or "(no name recorded)"

    @property
    def engine_overall(self) -> str:
        return str(self.snapshot.get("overall", "needs_review"))

    def signed_dependants(self) -> list[Any]:
        sign_off = EligibilitySignoff.objects.filter(screening=self).first()
        return [self] + ([sign_off] if sign_off is not None else [])


class EligibilitySignoff(TrialRecord):
    screening = models.OneToOneField(ScreeningEntry, on_delete=models.PROTECT, related_name="signoff")
    answers = models.JSONField(help_text="attestation id -> yes (true) / no (false)")
    decisions = models.JSONField(default=dict, help_text="criterion id -> met / not_met, for criteria the data left open")
    statuses = models.JSONField(help_text="the final status of every criterion")
    overall = models.CharField(max_length=16)
    failed_criteria = models.JSONField(default=list)
    note = models.TextField(blank=True)
    investigator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    FORM = "eligibility"

    def audit_screening(self) -> str:
        return self.screening.number

    def audit_subject(self) -> str:
        return self.screening.audit_subject()

    def signed_content(self) -> dict[str, Any]:
        """What the investigator's signature covers: the worksheet, the person screened, every answer and decision."""
        s = ScreeningEntry.objects.get(pk=self.screening_id)
        return {"screening": s.number, "name": s.name, "mrn": s.mrn, "birth_date": s.birth_date, "sex": s.sex,
                "worksheet": s.snapshot, "protocol_version": s.protocol_version, "data_as_of": s.data_as_of,
                "answers": self.answers, "decisions": self.decisions, "statuses": self.statuses, "overall": self.overall}

    def current_signature(self) -> Any:
        from trialdesk.edc.signatures.service import current_signature

        return current_signature(self)

    @property
    def signed(self) -> bool:
        return self.current_signature() is not None
