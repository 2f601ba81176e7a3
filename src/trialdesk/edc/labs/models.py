"""Reference ranges of the site's laboratories, one row per laboratory, analyte and effective date (rules:
:mod:`trialdesk.trial.lab_ranges`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from trialdesk.edc.records import TrialRecord
from trialdesk.trial.lab_ranges import ReferenceRange as CoreRange


class ReferenceRange(TrialRecord):
    site = models.CharField("site", max_length=200)
    laboratory = models.CharField("laboratory", max_length=120)
    analyte = models.CharField("analyte", max_length=40, help_text="a field of the laboratory form")
    unit = models.CharField("unit", max_length=20)
    lower = models.FloatField("lower limit of normal", null=True, blank=True)
    upper = models.FloatField("upper limit of normal", null=True, blank=True)
    effective_from = models.DateField("in force from")
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    FORM = "reference_range"

    class Meta:
        ordering = ["laboratory", "analyte", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["laboratory", "analyte", "effective_from"], name="one_range_per_lab_analyte_date")]

    def core(self) -> CoreRange:
        return CoreRange(self.laboratory, self.analyte, self.unit, self.lower, self.upper, self.effective_from)
