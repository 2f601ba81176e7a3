"""The base of every trial-data model: a version column for optimistic locking, and the
hooks the audit trail, the casebook lock and e-signatures use. Trial data is written only
through :mod:`trialdesk.edc.audit.trail`, which audits every create, change and delete."""

from __future__ import annotations

from typing import Any

from django.db import models


class TrialRecord(models.Model):
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    #: fields not shown in the audit (bookkeeping)
    AUDIT_EXCLUDE: tuple[str, ...] = ("version", "created_at", "updated_at")
    #: the form's name in the audit trail and on screen
    FORM = "record"

    class Meta:
        abstract = True

    def audit_subject(self) -> str:
        """The subject id this record belongs to ('' before enrolment)."""
        return ""

    def audit_screening(self) -> str:
        """The screening number this record belongs to."""
        return ""

    def casebook(self) -> Any:
        """The participant whose casebook holds this record, if any (for the lock)."""
        return None

    def signed_dependants(self) -> list[Any]:
        """Records whose signatures cover this record's data (voided when it changes)."""
        return [self]


class InForce(models.Manager):  # type: ignore[type-arg]
    """The records not entered in error: what every count, report, rule and the data cut read."""

    def get_queryset(self) -> models.QuerySet[Any]:
        return super().get_queryset().filter(error_reason="")


class Voidable(models.Model):
    """A record that can be marked *entered in error* (with the reason) by the role that owns it: it stays in the
    database and the audit trail, shown struck out where it was, and leaves every count, report, rule and data cut
    (``objects`` does not return it; ``with_voided`` does). Unmarked, ``error_reason`` is empty, so rows stored before
    this existed need no audit entry of their own."""

    error_reason = models.TextField("entered in error, because", blank=True)

    objects = InForce()
    with_voided = models.Manager()  # type: ignore[var-annotated]

    class Meta:
        abstract = True

    @property
    def entered_in_error(self) -> bool:
        return bool(self.error_reason)


class ParticipantRecord(TrialRecord):
    """A record that belongs to one participant: audited under their subject id and screening
    number, and (unless ``IN_CASEBOOK`` is false) held by their casebook's lock. A record
    reached through another one (an AE's follow-up, a visit's form) names the participant in
    :meth:`owner`."""

    #: whether locking the participant's casebook freezes this record
    IN_CASEBOOK = True

    class Meta:
        abstract = True

    def owner(self) -> Any:
        return self.participant  # type: ignore[attr-defined]

    def audit_subject(self) -> str:
        return str(self.owner().subject_id)

    def audit_screening(self) -> str:
        return str(self.owner().screening.number)

    def casebook(self) -> Any:
        return self.owner() if self.IN_CASEBOOK else None
