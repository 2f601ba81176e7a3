"""Electronic signatures (21 CFR 11.50, 11.70, 11.200).

A signature shows the signer's printed name, the date and time and its meaning; it is
linked to the record it signs by a SHA-256 of the signed data, so it cannot be moved to
another record, and any later change to the data voids it (the record then says so).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Signature(models.Model):
    model = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    printed_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=200)
    signed_at = models.DateTimeField()
    data_hash = models.CharField(max_length=64)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["signed_at"]
        indexes = [models.Index(fields=["model", "object_id"])]

    @property
    def valid(self) -> bool:
        return self.voided_at is None

    def manifestation(self) -> str:
        """What a reader of the signed record sees (11.50)."""
        return f"{self.printed_name} — {self.meaning} — {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"
